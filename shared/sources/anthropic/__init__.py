"""Anthropic: organization cost report and messages usage (Admin API) into FOCUS."""
