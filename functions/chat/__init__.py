"""Chat turns: the streaming function (function URL) and the reaper."""
