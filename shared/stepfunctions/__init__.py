"""Step Functions definitions built from one set of ASL builders and shared retry policies."""
