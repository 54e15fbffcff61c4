"""Alerts: the outbox, the rules that fill it, and the sender that delivers it (email, webhooks)."""
