"""Coze's OpenAPI over Stratus (the chat itself: ``functions.chat.app``)."""
