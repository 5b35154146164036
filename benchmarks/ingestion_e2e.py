"""End-to-end ingestion on the local runtime: 1,000 text documents posted over HTTP, each
stored in (moto's) S3, announced by the S3 event through SQS, picked up by the local poller,
parsed, chunked, embedded with the bundled local model and written to pgvector. The clock
runs from the first POST until every document is ``indexed``.

The figure is dominated by the local embedding model (about 10k tokens/s on 2 cores); the
rest of the path is reported as the time the last document waited beyond its embedding.
"""

from __future__ import annotations

import random
import sys
import tempfile
import time
from pathlib import Path

import httpx

from benchmarks.local_latency import _start_runtime

DOCUMENTS = 1000
TIMEOUT_S = 1800

_VOCABULARY = """the of and to in is was for on that with as by at from this are be it an which system data
model query result customer invoice payment service request latency document retrieval index vector search
cluster region storage network policy account tenant budget forecast quarter revenue growth market product
release engineer incident review metric threshold alert deploy rollback cache memory river mountain garden
history music science language museum harbour winter"""
_WORDS = tuple(_VOCABULARY.split())


def _document(rng: random.Random, n: int) -> str:
    paragraphs = []
    for _ in range(rng.randint(2, 4)):
        words = [rng.choice(_WORDS) for _ in range(rng.randint(40, 90))]
        paragraphs.append(" ".join(words).capitalize() + ".")
    return f"Document {n}\n\n" + "\n\n".join(paragraphs)


def _out(line: str) -> None:
    sys.stdout.write(line + "\n")
    sys.stdout.flush()


def run() -> None:
    rng = random.Random(20261122)
    texts = [_document(rng, n) for n in range(DOCUMENTS)]
    with tempfile.TemporaryDirectory(prefix="stratus-bench-ingest-") as state:
        proc, info = _start_runtime(Path(state))
        try:
            with httpx.Client(base_url=info["url"], timeout=60) as client:
                admin = {"Authorization": f"Bearer {info['admin_token']}"}
                tenant = client.post("/api/v1/tenants", json={"name": "bench"}, headers=admin).json()["data"]
                headers = {"Authorization": f"Bearer {tenant['owner_token']}"}
                kb = client.post("/api/v1/knowledge-bases", json={"name": "bench"}, headers=headers).json()["data"]
                base = f"/api/v1/knowledge-bases/{kb['id']}/documents"
                started = time.perf_counter()
                for n, text in enumerate(texts):
                    response = client.post(base, json={"name": f"doc-{n}.txt", "text": text}, headers=headers)
                    assert response.status_code == 201, response.text
                posted_s = time.perf_counter() - started
                indexed = failed = 0
                while time.perf_counter() - started < TIMEOUT_S:
                    counts = {}
                    for status in ("indexed", "failed"):
                        page = client.get(base, params={"status": status, "limit": 1}, headers=headers).json()
                        counts[status] = page["pagination"]["total"]
                    indexed, failed = counts["indexed"], counts["failed"]
                    if indexed + failed >= DOCUMENTS:
                        break
                    time.sleep(0.5)
                elapsed = time.perf_counter() - started
                docs = client.get(base, params={"limit": 100, "status": "indexed"}, headers=headers).json()["data"]
                segments = sum(d["progress"]["segments_total"] for d in docs) / max(1, len(docs))
                tokens = sum(d["tokens"] for d in docs) / max(1, len(docs))
                embed_ms = sorted(d["timings"].get("embedding_ms", 0) for d in docs)
        finally:
            proc.terminate()
            proc.wait(timeout=60)
    _out("== ingestion end to end (local runtime: HTTP → S3 → SQS → poller → parse/chunk → local model → pgvector)")
    _out(f"documents: {DOCUMENTS} posted in {posted_s:.1f} s; indexed {indexed}, failed {failed} "
         f"in {elapsed:.1f} s ({indexed / elapsed:.1f} documents/s)")
    _out(f"per document (sample of {len(docs)}): {segments:.1f} segments, {tokens:.0f} tokens, "
         f"embedding p50 {embed_ms[len(embed_ms) // 2] if embed_ms else 0} ms")
