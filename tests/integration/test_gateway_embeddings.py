"""Embedding through the gateway: batches within the model's limits, a failed batch is
resumed alone, dimension mismatches are caught, usage is recorded per batch."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from typing import Any

import pytest
from starlette.testclient import TestClient

from shared.models.errors import InvalidModelRequest
from shared.models.gateway import EmbeddingInterrupted
from shared.models.wiring import model_gateway
from tests.integration.conftest import bearer
from tests.support.fake_openai import EmbeddingScript, FakeOpenAI, RawReply

Sql = Callable[..., list[tuple[Any, ...]]]


@pytest.fixture
def embedder(client: TestClient, new_tenant: Callable[..., Any], openai_fake: FakeOpenAI,
             kms: str) -> uuid.UUID:
    tenant = new_tenant()
    response = client.post("/api/v1/models", json={
        "name": "emb", "protocol": "openai", "provider_model": "embed-small", "base_url": openai_fake.base_url,
        "api_key": "sk-embed-000000", "capabilities": ["embedding"], "dimensions": 8, "max_batch_size": 2},
        headers=bearer(tenant["owner_token"]))
    assert response.status_code == 201, response.text
    openai_fake.reset()
    return uuid.UUID(tenant["tenant"]["id"])


def test_batches_respect_the_model_limit(embedder: uuid.UUID, openai_fake: FakeOpenAI,
                                         admin_sql: Sql) -> None:
    seen: list[int] = []
    openai_fake.enqueue(*[EmbeddingScript(dimensions=8, reverse_order=True) for _ in range(3)])
    result = model_gateway().embed(embedder, [f"text {i}" for i in range(5)], "emb",
                                   on_batch=lambda index, vectors: seen.append(index))
    assert len(result.vectors) == 5 and all(len(v) == 8 for v in result.vectors)
    assert [len(r.body["input"]) for r in openai_fake.requests_to(FakeOpenAI.EMBEDDINGS_PATH)] == [2, 2, 1]
    assert seen == [0, 1, 2]
    # Ordered as given even when the provider lists them out of order.
    assert [v[0] for v in result.vectors] == [float(len(f"text {i}")) for i in range(5)]
    rows = admin_sql("SELECT count(*) FROM usage_records WHERE tenant_id = %s AND call_type = 'embedding'",
                     (embedder,))
    assert rows[0][0] == 4  # the credential test on save, then one per batch


def test_failed_batch_resumes_alone(embedder: uuid.UUID, openai_fake: FakeOpenAI) -> None:
    texts = [f"doc {i}" for i in range(6)]
    done: dict[int, list[list[float]]] = {}
    openai_fake.enqueue(EmbeddingScript(dimensions=8),
                        RawReply(400, {"error": {"message": "bad", "type": "invalid_request_error"}},
                                 path=FakeOpenAI.EMBEDDINGS_PATH))
    with pytest.raises(EmbeddingInterrupted) as err:
        model_gateway().embed(embedder, texts, "emb", on_batch=lambda i, v: done.__setitem__(i, v))
    assert err.value.completed_batches == 1 and list(done) == [0]
    assert isinstance(err.value.cause_error, InvalidModelRequest)
    openai_fake.reset()
    model_gateway().embed(embedder, texts, "emb", start_batch=err.value.completed_batches,
                          on_batch=lambda i, v: done.__setitem__(i, v))
    assert sorted(done) == [0, 1, 2]
    # Only the failed batch and the rest were sent again, never the first.
    assert [r.body["input"] for r in openai_fake.requests_to(FakeOpenAI.EMBEDDINGS_PATH)] == [texts[2:4], texts[4:6]]


def test_dimension_mismatch_is_reported(embedder: uuid.UUID, openai_fake: FakeOpenAI) -> None:
    openai_fake.enqueue(EmbeddingScript(dimensions=4))
    with pytest.raises(EmbeddingInterrupted) as err:
        model_gateway().embed(embedder, ["a", "b"], "emb")
    assert err.value.cause_error.code == "model_dimension_mismatch"
    assert err.value.completed_batches == 0
