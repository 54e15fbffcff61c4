"""OpenAI: organization costs and completions usage (Admin API) into FOCUS."""
