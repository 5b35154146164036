"""Cold import of each HTTP and streaming function's module in a fresh interpreter, as a ratio to
importing the dependencies its catalog layers declare, measured in the same run.

Goal: ratio <= 1.15 for every function; no function imports openai, anthropic,
opensearch-py or boto3 unless its catalog entry declares the layer that carries them.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys

from functions.catalog import LAYERS, http_functions, streaming_functions

# Import time only grows with noise (other processes, cache misses): the fastest of
# several runs is the stable estimate.
RUNS = 5
HEAVY = ("openai", "anthropic", "opensearchpy", "boto3", "botocore")

_PROBE = """
import json, sys, time
t = time.perf_counter()
for name in {modules!r}:
    __import__(name)
elapsed = time.perf_counter() - t
print(json.dumps({{"s": elapsed, "heavy": sorted(m for m in {heavy!r} if m in sys.modules)}}))
"""


def _lambda_like_env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("POWERTOOLS_", "DATABASE_", "REDIS_"))}
    # As deployed: tracing on (Powertools imports the X-Ray SDK only when it traces).
    env.update(STRATUS_RUNTIME="lambda", POWERTOOLS_SERVICE_NAME="stratus", AWS_DEFAULT_REGION="us-east-1",
               PYTHONDONTWRITEBYTECODE="0")
    return env


def _time(modules: list[str]) -> tuple[float, list[str]]:
    out = subprocess.run([sys.executable, "-c", _PROBE.format(modules=modules, heavy=HEAVY)],
                         capture_output=True, text=True, check=True, env=_lambda_like_env())
    result = json.loads(out.stdout.strip().splitlines()[-1])
    return float(result["s"]), list(result["heavy"])


def run() -> None:
    print("== Cold import: handler module vs its declared dependencies (fresh interpreter, fastest of "
          f"{RUNS}) ==")
    print(f"{'function':<22} {'deps ms':>8} {'handler ms':>10} {'ratio':>6}  heavy SDKs imported")
    worst = 0.0
    offenders = []
    # Streaming functions too: their module is the ASGI app the Web Adapter's server imports.
    for fn in [*http_functions(), *streaming_functions()]:
        baseline = [m for layer in fn.layers for m in LAYERS[layer].baseline_imports]
        # Warm the OS file cache once so neither side pays first-read disk I/O.
        _time([*baseline, fn.module])
        deps: list[float] = []
        handler: list[float] = []
        heavy: list[str] = []
        baseline_heavy: list[str] = []
        for _ in range(RUNS):
            seconds, baseline_heavy = _time(baseline)
            deps.append(seconds)
            seconds, heavy = _time([fn.module])
            handler.append(seconds)
        d, h = min(deps), min(handler)
        ratio = h / d
        worst = max(worst, ratio)
        # A heavy SDK is fine only if the declared dependencies bring it anyway.
        unexpected = sorted(set(heavy) - set(baseline_heavy))
        if unexpected:
            offenders.append((fn.name, unexpected))
        print(f"{fn.name:<22} {d * 1000:8.1f} {h * 1000:10.1f} {ratio:6.2f}  {', '.join(heavy) or '-'}")
    print(f"worst ratio {worst:.2f} (goal <= 1.15); "
          f"undeclared heavy SDK imports: {offenders or 'none'}")
