"""Workflows: runs of a workflow version, interpreted by one Step Functions state machine."""
