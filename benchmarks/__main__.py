"""``make bench``: every capability's figures, printed (benchmarks are not timed tests)."""

from __future__ import annotations

import sys

from benchmarks import cold_import, gateway_overhead, local_embedding, local_latency


def main() -> int:
    only = set(sys.argv[1:])
    for name, bench in (("cold-import", cold_import.run), ("local-latency", local_latency.run),
                        ("gateway-overhead", gateway_overhead.run),
                        ("local-embedding", local_embedding.run)):
        if not only or name in only:
            bench()
    return 0


if __name__ == "__main__":
    sys.exit(main())
