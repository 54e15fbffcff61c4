"""Tenancy: onboarding, lifecycle, API keys, plans, quota reads and Stripe events."""
