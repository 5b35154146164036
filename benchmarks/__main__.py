"""``make bench``: every capability's figures, printed (benchmarks are not timed tests)."""

from __future__ import annotations

import sys

from benchmarks import (
    cold_import,
    gateway_overhead,
    ingestion_e2e,
    ingestion_parse,
    local_embedding,
    local_latency,
    retrieval,
)


def main() -> int:
    only = set(sys.argv[1:])
    for name, bench in (("cold-import", cold_import.run), ("local-latency", local_latency.run),
                        ("gateway-overhead", gateway_overhead.run),
                        ("local-embedding", local_embedding.run), ("ingestion-parse", ingestion_parse.run),
                        ("ingestion-e2e", ingestion_e2e.run), ("retrieval", retrieval.run)):
        if not only or name in only:
            bench()
    return 0


if __name__ == "__main__":
    sys.exit(main())
