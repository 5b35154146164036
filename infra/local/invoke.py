"""``make invoke FN=<function> EVENT=events/<file>.json``: run one catalog function with a
sample event against the local runtime's data (embedded PostgreSQL, moto), print the result."""

from __future__ import annotations

import argparse
import json
import logging
import sys
from pathlib import Path

from infra.local.invoker import FunctionError
from infra.local.runtime import LocalRuntime


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="make invoke")
    parser.add_argument("function", help="catalog function name, e.g. health")
    parser.add_argument("event", nargs="?", help="path to a JSON event (default: {})")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING)
    event = json.loads(Path(args.event).read_text()) if args.event else {}
    runtime = LocalRuntime()
    try:
        runtime.invoker.function(args.function)
    except LookupError as exc:
        sys.stderr.write(f"{exc}\n")
        return 2
    runtime.start()
    try:
        result = runtime.invoker.invoke(args.function, event)
    except FunctionError as exc:
        sys.stdout.write(json.dumps({"errorType": exc.error_type, "errorMessage": exc.error_message}) + "\n")
        return 1
    finally:
        runtime.stop()
    sys.stdout.write(json.dumps(result, indent=2, default=str) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
