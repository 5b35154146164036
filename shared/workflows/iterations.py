"""The files of a long iteration's Distributed Map (docs/adr/0038-long-iterations-distributed-map.md),
in the payloads bucket under the run (``workflow-runs/<tenant>/<run>/iterations/<node>/``):

- ``items/<chunk>.json``: the items themselves, :data:`CHUNK_ITEMS` per object (item ``i`` is
  in chunk ``i // CHUNK_ITEMS``), written once by the step; an item task reads the chunks its
  batch covers, so neither the state machine's state nor a child execution's input ever holds
  an item;
- ``batches.json``: the Map's item reader file, a JSON array of small objects
  ``{"batch", "start", "end"}`` (item indexes ``start`` to ``end - 1``): what each child
  execution receives, with the run's ids;
- ``iteration.json``: how many items and batches there are and when they were written;
- ``results/<batch>.json``: what a batch's items answered (each item's output or the child that
  failed it, every child's run, the tokens), written by its item task; the join reads them all;
- ``stop.json``: under ``terminated``, an item failed; batches not yet started do not run.

Every write is idempotent (a redelivered task writes the same key again), and the bucket's
lifecycle expires them with the run's other payloads.
"""

from __future__ import annotations

import json
import time
from collections.abc import Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

from shared.workflows.ports import RunRef

# Items per items/<chunk>.json object: an item task reads at most a chunk or two.
CHUNK_ITEMS = 100
# Parallel S3 requests of one write or read of many objects (the step's 120 s bound).
_PARALLEL_REQUESTS = 16


@dataclass(frozen=True)
class WrittenItems:
    """Where the item reader's file is and how many batches (child executions) it holds."""

    bucket: str
    key: str
    batches: int


@dataclass(frozen=True)
class Batches:
    items: int
    batches: list[tuple[int, int]]
    # Epoch milliseconds when the items were written (the node's elapsed time counts from it).
    written_at_ms: int


def prefix(run: RunRef, node_id: str) -> str:
    return f"workflow-runs/{run.tenant_id}/{run.run_id}/iterations/{node_id}/"


def _encoded(value: Any) -> bytes:
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"), default=str).encode()


class S3IterationFiles:
    """:class:`~shared.workflows.ports.IterationFiles` over the payloads bucket (boto3's client)."""

    def __init__(self, client: Any, bucket: str) -> None:
        self._client = client
        self._bucket = bucket

    def _put(self, key: str, value: Any) -> None:
        self._client.put_object(Bucket=self._bucket, Key=key, Body=_encoded(value), ContentType="application/json")

    def _get(self, key: str) -> Any | None:
        try:
            body = self._client.get_object(Bucket=self._bucket, Key=key)["Body"].read()
        except self._client.exceptions.NoSuchKey:
            return None
        return json.loads(body)

    def write(self, run: RunRef, node_id: str, items: Sequence[Any], batch_items: int) -> WrittenItems:
        base = prefix(run, node_id)
        chunks = [(f"{base}items/{start // CHUNK_ITEMS}.json", list(items[start:start + CHUNK_ITEMS]))
                  for start in range(0, len(items), CHUNK_ITEMS)]
        with ThreadPoolExecutor(max_workers=_PARALLEL_REQUESTS) as pool:
            list(pool.map(lambda chunk: self._put(*chunk), chunks))
        batches = [{"batch": number, "start": start, "end": min(start + batch_items, len(items))}
                   for number, start in enumerate(range(0, len(items), batch_items))]
        self._put(f"{base}iteration.json", {"items": len(items), "batch_items": batch_items,
                                             "batches": len(batches), "written_at_ms": int(time.time() * 1000)})
        # Written last: the reader's file names only items that are already there.
        self._put(f"{base}batches.json", batches)
        return WrittenItems(self._bucket, f"{base}batches.json", len(batches))

    def items(self, run: RunRef, node_id: str, start: int, end: int) -> list[Any]:
        base = prefix(run, node_id)
        out: list[Any] = []
        for chunk in range(start // CHUNK_ITEMS, (end - 1) // CHUNK_ITEMS + 1):
            values = self._get(f"{base}items/{chunk}.json")
            if values is None:
                raise LookupError(f"the items of iteration {node_id} (chunk {chunk}) are missing from run {run.run_id}")
            first = chunk * CHUNK_ITEMS
            out.extend(values[max(start - first, 0):max(end - first, 0)])
        return out

    def batches(self, run: RunRef, node_id: str) -> Batches:
        base = prefix(run, node_id)
        meta, batches = self._get(f"{base}iteration.json"), self._get(f"{base}batches.json")
        if meta is None or batches is None:
            raise LookupError(f"the batches of iteration {node_id} are missing from run {run.run_id}")
        return Batches(int(meta["items"]), [(int(b["start"]), int(b["end"])) for b in batches],
                       int(meta["written_at_ms"]))

    def put_result(self, run: RunRef, node_id: str, batch: int, result: Mapping[str, Any]) -> None:
        self._put(f"{prefix(run, node_id)}results/{batch}.json", dict(result))

    def result(self, run: RunRef, node_id: str, batch: int) -> dict[str, Any] | None:
        value = self._get(f"{prefix(run, node_id)}results/{batch}.json")
        return dict(value) if value is not None else None

    def results(self, run: RunRef, node_id: str, batches: int) -> list[dict[str, Any] | None]:
        with ThreadPoolExecutor(max_workers=_PARALLEL_REQUESTS) as pool:
            return list(pool.map(lambda batch: self.result(run, node_id, batch), range(batches)))

    def stop(self, run: RunRef, node_id: str) -> None:
        self._put(f"{prefix(run, node_id)}stop.json", {"stopped": True})

    def stopped(self, run: RunRef, node_id: str) -> bool:
        return self._get(f"{prefix(run, node_id)}stop.json") is not None
