"""``make bench``: every capability's figures, printed (benchmarks are not timed tests)."""

from __future__ import annotations

import sys

from benchmarks import (
    agent_loop,
    chat,
    chatflow,
    cold_import,
    dify_facade,
    gateway_overhead,
    ingestion_e2e,
    ingestion_parse,
    local_embedding,
    local_latency,
    openai_facade,
    retrieval,
    workflow_stream,
    workflows,
)


def main() -> int:
    only = set(sys.argv[1:])
    for name, bench in (("cold-import", cold_import.run), ("local-latency", local_latency.run),
                        ("gateway-overhead", gateway_overhead.run),
                        ("local-embedding", local_embedding.run), ("ingestion-parse", ingestion_parse.run),
                        ("ingestion-e2e", ingestion_e2e.run), ("retrieval", retrieval.run),
                        ("chat-overhead", chat.run_overhead), ("chat-concurrency", chat.run_concurrency),
                        ("chatflow-overhead", chatflow.run_overhead), ("agent-loop", agent_loop.run),
                        ("openai-overhead", openai_facade.run), ("dify-overhead", dify_facade.run),
                        ("workflows", workflows.run), ("workflow-stream", workflow_stream.run)):
        if not only or name in only:
            bench()
    # The chat runs share one local runtime: stopped once both had their turn.
    chat.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
