"""Native FOCUS exports (Google FOCUS export, AWS/Azure FOCUS files) passed into focus_cost."""
