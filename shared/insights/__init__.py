"""What tenants do with their cost data: the cost API, budgets, forecasts and budget alerts."""
