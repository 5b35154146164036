"""The code sandbox the workflow ``code`` node runs on (docs/workflows-code-sandbox.md,
docs/adr/0032-code-sandbox.md): the user's Python never runs in the platform's process.

Import-light on purpose: ``ports`` and ``outputs`` use only the standard library; the runners
(``local``, ``remote``) import what they need when they run.
"""
