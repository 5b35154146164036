"""The code sandbox function: run one code node's ``main`` in a fresh interpreter under its
limits, then empty the scratch directory, whatever happened. Invoked directly by the workflow
tasks (shared/workflows/sandbox/remote.py), never over HTTP.

Answers ``{"outputs", "stdout", "stdout_truncated", "cpu_ms", "elapsed_ms"}`` or
``{"error": {"code", "message", "details", "stdout"}}``: the code's failures are answers, not
function errors, so Lambda's own failures (timeout, out of memory) stay distinguishable.
"""

from __future__ import annotations

import json
from typing import Any

from shared.handler import powertools_handler
from shared.observability import logger
from shared.workflows.sandbox.ports import CodeError, CodeOutputTooLarge, CodeRequest

# Lambda refuses a synchronous answer over 6 MB (6,291,456 bytes); the runtime writes it as
# JSON with non-ASCII characters escaped, which can be up to six times the code's own bytes.
RESPONSE_BYTES = 6 * 1024 * 1024 - 16 * 1024


def _run_code(event: Any, context: Any) -> dict[str, Any]:
    from shared.config import get_settings
    from shared.workflows.sandbox.local import SubprocessCodeRunner, empty_directory

    wipe_dir = get_settings().workflow_code_wipe_dir
    try:
        request = CodeRequest.from_wire(event)
        run = SubprocessCodeRunner(scratch_dir=wipe_dir).execute(request)
        answer: dict[str, Any] = {"outputs": run.outputs, "stdout": run.stdout,
                                  "stdout_truncated": run.stdout_truncated, "cpu_ms": run.cpu_ms,
                                  "elapsed_ms": run.elapsed_ms}
    except CodeError as exc:
        logger.info("code run failed", extra={"code": exc.code})
        answer = {"error": exc.to_wire()}
    finally:
        if wipe_dir:
            # /tmp outlives the invocation in a warm container: the next run (another tenant's,
            # perhaps) must find nothing of this one.
            empty_directory(wipe_dir)
    size = len(json.dumps(answer))
    if size > RESPONSE_BYTES:
        limit = request.limits.output_bytes
        answer = {"error": CodeOutputTooLarge(
            f"main's result takes {size} bytes once escaped for Lambda's answer, over its 6 MB; return less "
            "(non-ASCII text and control characters take up to six bytes each there)",
            bytes=size, limit_bytes=limit).to_wire()}
    return answer


handler = powertools_handler(_run_code)
