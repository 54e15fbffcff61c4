"""HTTP entry points, one module per Cloud Function; each stays thin and calls `shared/`."""
