"""Cost sources: one package per provider (reader, raw schema, FOCUS mapping, reconciliation)."""
