"""Conversations and messages of the HTTP API."""
