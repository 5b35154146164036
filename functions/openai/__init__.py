"""OpenAI's API over Stratus's agents (the chat completions themselves: ``functions.chat.app``)."""
