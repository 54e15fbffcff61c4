"""Google Cloud billing export -> FOCUS 1.2: reader (extract), mapping .sql, checks."""
