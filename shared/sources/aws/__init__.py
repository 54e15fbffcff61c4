"""AWS Data Exports (CUR 2.0, FOCUS 1.0 and 1.2): access.py now; reader and mappings next."""
