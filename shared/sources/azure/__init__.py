"""Azure Cost Management FocusCost exports: access.py now; reader and mappings next."""
