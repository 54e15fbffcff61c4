"""Benchmarks reuse the integration fixtures: a real emulator and the real function apps."""

from tests.integration.conftest import platform

__all__ = ["platform"]
