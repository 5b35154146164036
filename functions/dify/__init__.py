"""Dify's service API over the agent or workflow a key is bound to (the chat and completion
messages: ``functions.chat.app``; workflow runs: ``functions.workflows.stream``)."""
