"""Pipelines: definitions, executor, steps, FOCUS mapping, data-quality checks, SQL sandbox."""
