"""Token counting for chunking: the local model's own WordPiece tokenizer, and the chunk-size
check against a model's input limit."""

from __future__ import annotations

from importlib import resources

import pytest
import yaml

from shared.knowledge.errors import InvalidChunking
from shared.knowledge.tokens import is_exact, max_chunk_size, token_counter, validate_chunking
from shared.knowledge.types import ChunkingConfig
from shared.models import local_embedding
from shared.models.spec import Capability, CatalogFile, ModelSpec, Protocol


def _catalog(name: str) -> ModelSpec:
    for entry in resources.files("shared.models.catalog").iterdir():
        if entry.name.endswith(".yaml"):
            for spec in CatalogFile.model_validate(yaml.safe_load(entry.read_text())).models:
                if spec.name == name:
                    return spec
    raise LookupError(name)


LOCAL = _catalog("all-minilm-l6-v2")
OPENAI = _catalog("text-embedding-3-small")
TITAN = _catalog("titan-embed-text-v2")


def test_counts_are_the_local_models_without_special_tokens() -> None:
    counter = token_counter(LOCAL)
    texts = ["Hello, world!", "unaffable", "", "知识库检索", "x" * 300]
    expected = [n - local_embedding.SPECIAL_TOKENS_PER_TEXT for n in local_embedding.count_tokens(texts)]
    assert counter.count(texts) == expected
    assert counter.count(["Hello, world!"]) == [4]
    assert counter.count([]) == []


def test_spans_are_character_offsets_of_each_token() -> None:
    counter = token_counter(LOCAL)
    text = "Héllo, wörld 知识"
    spans = counter.spans(text)
    assert [text[a:b] for a, b in spans] == ["Héllo", ",", "wörld", "知", "识"]
    assert counter.spans("   ") == []
    # One token per span: the count and the spans always agree.
    long = "unaffable tokenization of 東京タワー and emoji 😀 " * 5
    assert len(counter.spans(long)) == counter.count([long])[0]


def test_one_counter_per_container_for_every_model() -> None:
    # No offline tokenizer exists for the providers' models: WordPiece is their estimate.
    assert token_counter(LOCAL) is token_counter(OPENAI) is token_counter(TITAN)
    assert is_exact(LOCAL)
    assert not is_exact(OPENAI)


def test_local_limit_leaves_room_for_cls_and_sep() -> None:
    assert LOCAL.max_input_tokens == 256
    assert max_chunk_size(LOCAL) == 254
    assert max_chunk_size(OPENAI) == OPENAI.max_input_tokens


def test_chunk_size_within_the_model_limit_passes() -> None:
    validate_chunking(ChunkingConfig(chunk_size=254, chunk_overlap=20), LOCAL)
    validate_chunking(ChunkingConfig(chunk_size=8000, chunk_overlap=200), OPENAI)
    # Parents are returned, not embedded: their size is not the model's business.
    validate_chunking(ChunkingConfig(strategy="parent_child", chunk_size=200, parent_size=4000), LOCAL)


def test_chunk_size_over_the_model_limit_is_a_422_naming_the_field() -> None:
    with pytest.raises(InvalidChunking) as caught:
        validate_chunking(ChunkingConfig(chunk_size=255, chunk_overlap=20), LOCAL)
    error = caught.value
    assert error.status == 422
    assert error.code == "knowledge_invalid_chunking"
    [field] = error.details["fields"]
    assert field["field"] == "body.chunking.chunk_size"
    assert field["max"] == 254
    assert "254" in error.message and "all-minilm-l6-v2" in error.message

    # A tenant's OpenAI-compatible embedding model with a small window: no special tokens added.
    small = ModelSpec(name="bge-small", display_name="bge", protocol=Protocol.OPENAI, provider_model="bge-small-en",
                      capabilities=[Capability.EMBEDDING], dimensions=384, max_input_tokens=512)
    validate_chunking(ChunkingConfig(chunk_size=512, chunk_overlap=0), small)
    with pytest.raises(InvalidChunking) as caught:
        validate_chunking(ChunkingConfig(chunk_size=513, chunk_overlap=0), small, field="chunking.chunk_size")
    assert caught.value.details["fields"][0]["field"] == "chunking.chunk_size"
