"""Platform plumbing: settings, errors, logs, warehouse, secrets, identifiers, schemas, audit."""
