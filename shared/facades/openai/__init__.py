"""OpenAI's chat completions and models API over Stratus's agents (docs/compatible-apis.md)."""
