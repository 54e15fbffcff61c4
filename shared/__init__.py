"""Convergence's shared library: domain logic and the adapters behind its ports."""
