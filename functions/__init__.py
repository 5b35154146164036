"""One module per use case, each exposing ``handler(event, context)``."""
