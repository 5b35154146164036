"""Chat on the local runtime (``python -m infra.local`` as a subprocess, real HTTP, an SSE
client), against a scripted OpenAI-compatible model server running in this process
(``tests.support.fake_openai``), with a quick-answer agent over a knowledge base of 10,000
segments (hybrid retrieval, top_k 5, query rewrite off).

``chat-overhead``: what the platform adds to a turn before the user sees text. 200 sequential
turns (after 20 warm-up turns), each a new conversation with a different question. The client
takes t0 before sending ``POST /api/v1/chat`` and t1 when the first ``message.delta`` arrives;
the model server measures its own time to first token (from the request, read in full, to
the first chunk carrying text, written and flushed). Overhead = (t1 - t0) - model TTFT.
Goal: p50 <= 60 ms, p95 <= 120 ms locally.

``chat-concurrency``: 50 clients (asyncio tasks) each running 4 streaming chats back to back,
the model answering 50 chunks 10 ms apart so the streams overlap: errors (non-200, error
events, missing ``done``, wrong content; goal 0), the first-delta overhead, the wall time
and the runtime process's peak RSS (VmHWM) before and after.

The two runs share one runtime, tenant and knowledge base when both are selected. The
knowledge base is created over HTTP, then filled the fast way (as ``benchmarks/retrieval.py``
does): documents and segments written as the owner, vectors (the bundled local model's,
cached under .build/bench/chat/) indexed through ``PostgresVectorStore`` as the application
role, the HNSW index built once; a ``POST .../retrieve`` over HTTP checks the result.

The client, the model server and the runtime share this machine's cores: the figures include
that contention (most under concurrency).
"""

from __future__ import annotations

import asyncio
import atexit
import hashlib
import json
import os
import random
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

from benchmarks.local_latency import runtime_env
from tests.support.fake_openai import ChatScript, Exchange, FakeOpenAI, RecordedRequest

SEGMENTS = 10_000
SEGMENTS_PER_DOCUMENT = 100
DIMENSIONS = 384  # the bundled local model (the knowledge base's default embedding model)
TOP_K = 5
WARMUP_TURNS = 20
MEASURED_TURNS = 200
QUICK_ANSWER_CHUNKS = 8  # chat-overhead: a short answer, no delay between chunks
CONCURRENT_CLIENTS = 50
CHATS_PER_CLIENT = 4
CONCURRENT_WARMUP_TURNS = 10
STREAM_CHUNKS = 50
STREAM_CHUNK_DELAY_S = 0.01
QUESTIONS = WARMUP_TURNS + MEASURED_TURNS + CONCURRENT_WARMUP_TURNS + CONCURRENT_CLIENTS * CHATS_PER_CLIENT + 20
CACHE = Path(__file__).resolve().parents[1] / ".build" / "bench" / "chat"
DATASET_VERSION = 1
ROOT = Path(__file__).resolve().parents[1]


def _out(line: str = "") -> None:
    sys.stdout.write(line + "\n")
    sys.stdout.flush()


def _percentile(samples: list[float], pct: float) -> float:
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, round(pct / 100 * (len(ordered) - 1)))]


# --- the model server ----------------------------------------------------------------------------


def answer_chunks(question: str, chunks: int) -> list[str]:
    """The scripted answer to ``question``: distinct per question, so a mixed-up stream shows."""
    tag = hashlib.sha256(question.encode()).hexdigest()[:8]
    return [f"{tag}-{i} " for i in range(chunks)]


def _last_user_message(body: dict[str, Any]) -> str:
    for message in reversed(body.get("messages") or []):
        if message.get("role") == "user":
            content = message.get("content")
            if isinstance(content, list):  # content parts
                return "".join(str(part.get("text", "")) for part in content if isinstance(part, dict))
            return str(content or "")
    return ""


class TimedFakeOpenAI(FakeOpenAI):
    """Answers every streamed chat with ``answer_chunks(question)`` (``chunks`` pieces,
    ``chunk_delay_s`` apart) and records its own time to first token per question: from the
    request (read in full) to the first chunk carrying text, written and flushed. (The first
    chunk of an OpenAI stream only opens the assistant message, with empty content.)"""

    def __init__(self) -> None:
        super().__init__()
        self.chunks = QUICK_ANSWER_CHUNKS
        self.chunk_delay_s = 0.0
        self._ttft_ms: dict[str, float] = {}

    def take_ttft_ms(self, question: str) -> float | None:
        with self._lock:
            return self._ttft_ms.pop(question, None)

    def _record(self, request: RecordedRequest) -> None:
        # Nothing to keep: hundreds of prompts would only grow the list.
        pass

    def respond(self, exchange: Exchange, request: RecordedRequest) -> None:
        received = time.perf_counter()
        body = request.body if isinstance(request.body, dict) else {}
        if request.path != self.CHAT_PATH or request.method != "POST" or not body.get("stream"):
            super().respond(exchange, request)
            return
        question = _last_user_message(body)
        write = exchange.chunk
        written = 0

        def chunk(data: bytes) -> None:
            nonlocal written
            write(data)
            written += 1
            if written == 2:
                elapsed_ms = (time.perf_counter() - received) * 1000
                with self._lock:
                    self._ttft_ms[question] = elapsed_ms

        exchange.chunk = chunk  # type: ignore[method-assign]
        script = ChatScript(text=answer_chunks(question, self.chunks), chunk_delay_s=self.chunk_delay_s,
                            usage=(600, self.chunks))
        self._chat(exchange, body, script)


# --- the dataset -----------------------------------------------------------------------------------


def _dataset() -> tuple[list[str], Any, list[str]]:
    """(segment texts, their vectors, questions): sentences on 40 topics (retrieval's
    generator), embedded once with the bundled local model and cached."""
    import numpy as np

    from benchmarks.retrieval import TOPICS, _sentence

    rng = random.Random(20260301)
    names = list(TOPICS)
    texts = [_sentence(rng, names[rng.randrange(len(names))], rng.randint(8, 16), 0.55) for _ in range(SEGMENTS)]
    questions: list[str] = []
    seen: set[str] = set()
    while len(questions) < QUESTIONS:
        question = _sentence(rng, rng.choice(names), rng.randint(4, 8), 0.75).rstrip(".") + "?"
        if question not in seen:
            seen.add(question)
            questions.append(question)

    CACHE.mkdir(parents=True, exist_ok=True)
    vectors_path = CACHE / f"segments-v{DATASET_VERSION}.npy"
    digest_path = CACHE / f"segments-v{DATASET_VERSION}.sha256"
    digest = hashlib.sha256("\n".join(texts).encode()).hexdigest()
    if vectors_path.exists() and digest_path.exists() and digest_path.read_text() == digest:
        return texts, np.load(vectors_path), questions

    from shared.models.local_embedding import embed_texts

    _out(f"embedding {SEGMENTS:,} segments with the local model (cached afterwards) ...")
    started = time.perf_counter()
    chunks = []
    for start in range(0, SEGMENTS, 2048):
        vectors, _ = embed_texts(texts[start:start + 2048])
        chunks.append(np.asarray(vectors, dtype=np.float32))
    segment_vectors = np.concatenate(chunks)
    _out(f"embedded in {time.perf_counter() - started:.0f} s")
    np.save(vectors_path, segment_vectors)
    digest_path.write_text(digest)
    return texts, segment_vectors, questions


# --- the platform ----------------------------------------------------------------------------------


def _start_runtime(state_dir: Path, log: Path) -> tuple[subprocess.Popen[bytes], dict[str, str]]:
    env = runtime_env(state_dir)
    # The fake provider listens on loopback: the egress policy refuses it unless listed.
    env["STRATUS_EGRESS_ALLOW"] = "127.0.0.1"
    with log.open("ab") as out:
        proc = subprocess.Popen([sys.executable, "-m", "infra.local"], cwd=ROOT, env=env,
                                stdout=out, stderr=subprocess.STDOUT)
    local_json = state_dir / "local.json"
    deadline = time.monotonic() + 180
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"the local runtime exited ({proc.returncode}):\n{log.read_text()[-4000:]}")
        if local_json.exists():
            info = json.loads(local_json.read_text())
            try:
                if httpx.get(f"{info['url']}/health", timeout=5).status_code == 200:
                    return proc, info
            except httpx.HTTPError:
                pass
        time.sleep(0.2)
    proc.kill()
    raise RuntimeError(f"the local runtime did not start within 180 s:\n{log.read_text()[-4000:]}")


def _database_urls(pg_dir: Path) -> tuple[str, str]:
    """The runtime's embedded PostgreSQL (its postmaster.pid names the socket directory and
    port; local connections are trusted): (owner URL, application-role URL)."""
    from psycopg.conninfo import make_conninfo

    from shared.db.database import APP_ROLE

    lines = (pg_dir / "postmaster.pid").read_text().splitlines()
    port, socket_dir = lines[3].strip(), lines[4].strip()
    admin = make_conninfo("", host=socket_dir, port=port, dbname="stratus", user="postgres")
    return admin, make_conninfo("", host=socket_dir, port=port, dbname="stratus", user=APP_ROLE)


def _load_segments(admin_url: str, app_url: str, tenant_id: uuid.UUID, kb_id: uuid.UUID, texts: list[str],
                   vectors: Any) -> None:
    """Documents and segments as ingestion writes them (owner), then the vector store's upsert
    (application role, row-level security on) and one HNSW build."""
    import psycopg

    from shared.db.database import SingleConnectionDatabase
    from shared.knowledge.vectorstore.pgvector import PostgresVectorStore
    from shared.knowledge.vectorstore.ports import IndexedSegment

    documents = [uuid.uuid4() for _ in range(SEGMENTS // SEGMENTS_PER_DOCUMENT)]
    segment_ids = [uuid.uuid4() for _ in range(SEGMENTS)]
    with psycopg.connect(admin_url, autocommit=True) as conn:
        row = conn.execute("SELECT chunking FROM knowledge_bases WHERE id = %s", (kb_id,)).fetchone()
        assert row is not None
        chunking = json.dumps(row[0])
        with conn.cursor() as cur:
            cur.executemany("""INSERT INTO documents (id, tenant_id, knowledge_base_id, name, content_type, size,
                                                      source, s3_key, chunking, status, segments_total,
                                                      segments_done, tokens, indexed_at)
                               VALUES (%s, %s, %s, %s, 'text/plain', 1000, 'text', %s, %s::jsonb, 'indexed',
                                       %s, %s, 1500, now())""",
                            [(d, tenant_id, kb_id, f"handbook-{n:03d}.txt", f"bench/{d}", chunking,
                              SEGMENTS_PER_DOCUMENT, SEGMENTS_PER_DOCUMENT) for n, d in enumerate(documents)])
            with cur.copy("COPY segments (id, tenant_id, knowledge_base_id, document_id, position, text, tokens, "
                          "content_hash, index_status) FROM STDIN") as copy:
                for i, (sid, text) in enumerate(zip(segment_ids, texts, strict=True)):
                    copy.write_row((sid, tenant_id, kb_id, documents[i // SEGMENTS_PER_DOCUMENT],
                                    i % SEGMENTS_PER_DOCUMENT, text, len(text.split()),
                                    hashlib.sha256(text.encode()).hexdigest(), "indexed"))
    db = SingleConnectionDatabase(app_url)
    try:
        store = PostgresVectorStore(db)
        for start in range(0, SEGMENTS, 2000):
            store.upsert(tenant_id, kb_id, DIMENSIONS, [
                IndexedSegment(segment_ids[i], documents[i // SEGMENTS_PER_DOCUMENT], texts[i], vectors[i])
                for i in range(start, min(start + 2000, SEGMENTS))])
        store.ensure_index(DIMENSIONS)
    finally:
        db.close()
    with psycopg.connect(admin_url, autocommit=True) as conn:
        for table in ("segment_index", "segments", "documents"):
            conn.execute(f"VACUUM (ANALYZE) {table}")


@dataclass
class _Platform:
    tmp: tempfile.TemporaryDirectory[str]
    proc: subprocess.Popen[bytes]
    url: str
    headers: dict[str, str]
    agent_id: str
    fake: TimedFakeOpenAI
    questions: list[str]
    log: Path
    pg_dir: Path
    setup_notes: list[str] = field(default_factory=list)
    _next_question: int = 0

    def take_questions(self, n: int) -> list[str]:
        if self._next_question + n > len(self.questions):
            raise RuntimeError("out of distinct questions: raise QUESTIONS")
        taken = self.questions[self._next_question:self._next_question + n]
        self._next_question += n
        return taken

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGINT)  # as a user stops it: embedded PostgreSQL stops too
            try:
                self.proc.wait(60)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(10)
        self.fake.stop()
        self.tmp.cleanup()

    @classmethod
    def start(cls) -> _Platform:
        texts, vectors, questions = _dataset()
        fake = TimedFakeOpenAI().start()
        tmp = tempfile.TemporaryDirectory(prefix="stratus-bench-chat-")
        state = Path(tmp.name) / "state"
        log = Path(tmp.name) / "runtime.log"
        started = time.perf_counter()
        try:
            proc, info = _start_runtime(state, log)
        except BaseException:
            fake.stop()
            tmp.cleanup()
            raise
        notes = [f"runtime up in {time.perf_counter() - started:.1f} s"]
        platform: _Platform | None = None
        try:
            with httpx.Client(base_url=info["url"], timeout=120) as http:
                def post(path: str, body: dict[str, Any], headers: dict[str, str], expect: int = 201) -> Any:
                    response = http.post(path, json=body, headers=headers)
                    assert response.status_code == expect, f"{path}: {response.status_code} {response.text}"
                    return response.json()["data"]

                tenant = post("/api/v1/tenants", {"name": "bench-chat"},
                              {"Authorization": f"Bearer {info['admin_token']}"})
                headers = {"Authorization": f"Bearer {tenant['owner_token']}"}
                tenant_id = uuid.UUID(http.get("/api/v1/tenants/current", headers=headers).json()["data"]["id"])
                post("/api/v1/models", {"name": "bench", "protocol": "openai", "provider_model": "gpt-bench",
                                        "base_url": fake.base_url, "api_key": "sk-bench-" + "x" * 24,
                                        "test": False}, headers)
                kb = post("/api/v1/knowledge-bases", {"name": "handbook"}, headers)
                assert kb["dimensions"] == DIMENSIONS, kb
                loaded = time.perf_counter()
                admin_url, app_url = _database_urls(state / "pg")
                _load_segments(admin_url, app_url, tenant_id, uuid.UUID(kb["id"]), texts, vectors)
                notes.append(f"{SEGMENTS:,} segments ({SEGMENTS // SEGMENTS_PER_DOCUMENT} documents) loaded and "
                             f"indexed in {time.perf_counter() - loaded:.1f} s")
                check = post(f"/api/v1/knowledge-bases/{kb['id']}/retrieve",
                             {"query": questions[-1], "mode": "hybrid", "top_k": TOP_K}, headers, expect=200)
                items = check["items"]
                semantic = sum("semantic" in item["scores"] for item in items)
                full_text = sum("full_text" in item["scores"] for item in items)
                assert len(items) == TOP_K and semantic, check
                kb_out = http.get(f"/api/v1/knowledge-bases/{kb['id']}", headers=headers).json()["data"]
                assert kb_out["segment_count"] == SEGMENTS, kb_out
                notes.append(f"retrieve check over HTTP: {len(items)} hits ({semantic} from the vector search, "
                             f"{full_text} from full text); the knowledge base reports "
                             f"{kb_out['segment_count']:,} segments")
                agent = post("/api/v1/agents", {"name": "Handbook helper", "config": {
                    "mode": "quick-answer", "model": {"name": "bench"}, "query_rewrite": False,
                    "knowledge": {"knowledge_base_ids": [kb["id"]],
                                  "retrieval": {"mode": "hybrid", "top_k": TOP_K}}}}, headers)
                post(f"/api/v1/agents/{agent['id']}/publish", {}, headers)
            platform = cls(tmp, proc, info["url"], headers, agent["id"], fake, questions[:-1], log, state / "pg",
                           notes)
            return platform
        finally:
            if platform is None:
                sys.stderr.write("runtime log (last lines):\n" + "\n".join(
                    [line for line in log.read_text(errors="replace").splitlines() if "token" not in line][-30:])
                    + "\n")
                proc.send_signal(signal.SIGINT)
                proc.wait(60)
                fake.stop()
                tmp.cleanup()


_platform: _Platform | None = None


def _shared_platform() -> _Platform:
    global _platform
    if _platform is None:
        _out("-- setting up: local runtime, tenant, model server, knowledge base, agent")
        _platform = _Platform.start()
        atexit.register(close)
        for note in _platform.setup_notes:
            _out(f"   {note}")
    return _platform


def close() -> None:
    """Stop the runtime the chat runs share (``python -m benchmarks`` calls it at the end)."""
    global _platform
    if _platform is not None:
        platform, _platform = _platform, None
        platform.stop()


# --- one turn --------------------------------------------------------------------------------------


@dataclass
class Turn:
    question: str
    first_delta_ms: float | None = None  # client: POST sent -> first message.delta
    done_ms: float | None = None  # client: POST sent -> done
    model_ttft_ms: float | None = None  # model server: request -> first text chunk
    latency: dict[str, Any] = field(default_factory=dict)  # message.complete's latency
    error: str | None = None  # kind of error, None: a good turn
    detail: str = ""

    @property
    def overhead_ms(self) -> float | None:
        if self.error or self.first_delta_ms is None or self.model_ttft_ms is None:
            return None
        return self.first_delta_ms - self.model_ttft_ms


def _check(turn: Turn, events: list[tuple[str, Any]], chunks: int) -> None:
    names = [name for name, _ in events]
    if "error" in names:
        turn.error, turn.detail = "error event", str(events[names.index("error")][1])[:300]
        return
    if not names or names[-1] != "done":
        turn.error, turn.detail = "missing done", ",".join(names[-5:])
        return
    if names[:2] != ["message.start", "retrieval.references"] or names[-2] != "message.complete":
        turn.error, turn.detail = "wrong content", "events: " + ",".join([*names[:3], "...", *names[-3:]])
        return
    expected = "".join(answer_chunks(turn.question, chunks))
    said = "".join(data["text"] for name, data in events if name == "message.delta")
    complete = events[-2][1]
    references = events[1][1]["references"]
    if said != expected or complete.get("content") != expected or complete.get("status") != "completed":
        turn.error, turn.detail = "wrong content", f"said {said[:60]!r}, status {complete.get('status')}"
    elif len(references) != TOP_K:
        turn.error, turn.detail = "wrong content", f"{len(references)} references"
    else:
        turn.latency = complete.get("latency") or {}


def _chat_body(platform: _Platform, question: str, user: str) -> dict[str, Any]:
    return {"agent_id": platform.agent_id, "message": question, "user": user}


class _Recorder:
    """What the sync and async clients do alike with one turn's response."""

    def __init__(self, question: str) -> None:
        self.turn = Turn(question)
        self.events: list[tuple[str, Any]] = []
        self.t0 = time.perf_counter()

    def refused(self, status: int, body: bytes) -> Turn:
        self.turn.error, self.turn.detail = f"HTTP {status}", body.decode(errors="replace")[:300]
        return self.turn

    def event(self, name: str, data: Any) -> None:
        if name == "heartbeat":
            return
        if name == "message.delta" and self.turn.first_delta_ms is None:
            self.turn.first_delta_ms = (time.perf_counter() - self.t0) * 1000
        self.events.append((name, data))

    def failed(self, exc: Exception) -> Turn:
        self.turn.error, self.turn.detail = "exception", f"{type(exc).__name__}: {exc}"[:300]
        return self.turn

    def finish(self, platform: _Platform, chunks: int) -> Turn:
        self.turn.done_ms = (time.perf_counter() - self.t0) * 1000
        _check(self.turn, self.events, chunks)
        self.turn.model_ttft_ms = platform.fake.take_ttft_ms(self.turn.question)
        return self.turn


def _sync_turn(http: httpx.Client, platform: _Platform, question: str, user: str, chunks: int) -> Turn:
    from httpx_sse import connect_sse

    record = _Recorder(question)
    try:
        with connect_sse(http, "POST", "/api/v1/chat", json=_chat_body(platform, question, user),
                         headers=platform.headers) as source:
            if source.response.status_code != 200:
                return record.refused(source.response.status_code, source.response.read())
            for event in source.iter_sse():
                record.event(event.event, event.json() if event.event != "heartbeat" else None)
    except (httpx.HTTPError, ValueError) as exc:
        return record.failed(exc)
    return record.finish(platform, chunks)


async def _async_turn(http: httpx.AsyncClient, platform: _Platform, question: str, user: str, chunks: int) -> Turn:
    from httpx_sse import aconnect_sse

    record = _Recorder(question)
    try:
        async with aconnect_sse(http, "POST", "/api/v1/chat", json=_chat_body(platform, question, user),
                                headers=platform.headers) as source:
            if source.response.status_code != 200:
                return record.refused(source.response.status_code, await source.response.aread())
            async for event in source.aiter_sse():
                record.event(event.event, event.json() if event.event != "heartbeat" else None)
    except (httpx.HTTPError, ValueError) as exc:
        return record.failed(exc)
    return record.finish(platform, chunks)


# --- reporting helpers -----------------------------------------------------------------------------


def _stats(samples: list[float]) -> str:
    if not samples:
        return "no samples"
    return (f"p50 {statistics.median(samples):6.1f} ms  p95 {_percentile(samples, 95):6.1f} ms  "
            f"p99 {_percentile(samples, 99):6.1f} ms  mean {statistics.fmean(samples):6.1f} ms")


def _median_of(turns: list[Turn], value: Callable[[Turn], float | None]) -> float:
    samples = [v for v in (value(t) for t in turns) if v is not None]
    return statistics.median(samples) if samples else float("nan")


def _latency(turn: Turn, key: str) -> float | None:
    value = turn.latency.get(key)
    return float(value) if isinstance(value, int | float) else None


def _breakdown(turns: list[Turn]) -> list[str]:
    """Where the first-delta time goes (medians; the platform's figures are whole ms, truncated)."""
    good = [t for t in turns if t.overhead_ms is not None and "first_token_ms" in t.latency]

    def diff(a: Callable[[Turn], float | None], b: Callable[[Turn], float | None]) -> Callable[[Turn], float | None]:
        def value(t: Turn) -> float | None:
            x, y = a(t), b(t)
            return None if x is None or y is None else x - y
        return value

    first = lambda t: _latency(t, "first_token_ms")  # noqa: E731
    model_first = lambda t: _latency(t, "model_first_token_ms")  # noqa: E731
    rows = [
        ("retrieval_ms (query embedding, semantic + full-text search, segments)",
         lambda t: _latency(t, "retrieval_ms")),
        ("first_token_ms - model_first_token_ms (turn start -> model call: agent, conversation, "
         "history, retrieval, prompt, events)", diff(first, model_first)),
        ("model_first_token_ms - model server TTFT (gateway: quota, model, credentials, provider "
         "call; HTTP to the model; first chunks parsed)", diff(model_first, lambda t: t.model_ttft_ms)),
        ("client first delta - first_token_ms (HTTP in, auth, rate limit, body; event to the client)",
         diff(lambda t: t.first_delta_ms, first)),
    ]
    return [f"  {_median_of(good, fn):7.1f} ms  {label}" for label, fn in rows]


def _show_errors(platform: _Platform, turns: list[Turn]) -> None:
    failed = [t for t in turns if t.error]
    for turn in failed[:3]:
        _out(f"  e.g. {turn.error}: {turn.detail}")
    if failed:
        tail = [line for line in platform.log.read_text(errors="replace").splitlines()
                if line.strip() and "token" not in line][-15:]
        _out("  runtime log (last lines):" + "".join(f"\n    {line}" for line in tail))


def _errors(turns: list[Turn]) -> tuple[int, str]:
    kinds = Counter(t.error for t in turns if t.error)
    total = sum(kinds.values())
    text = ", ".join(f"{kind} {n}" for kind, n in sorted(kinds.items())) if kinds else "none"
    return total, text


# --- CPU accounting ---------------------------------------------------------------------------------

_TICK_S = 1 / os.sysconf("SC_CLK_TCK")


def _stat_cpu_s(pid: int, *, waited_children: bool = False) -> float:
    """User + system CPU seconds of a process (and of its children it has waited for)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    # After the command: state ppid ... utime(12) stime(13) cutime(14) cstime(15), 1-based 14..17.
    ticks = int(fields[11]) + int(fields[12])
    if waited_children:
        ticks += int(fields[13]) + int(fields[14])
    return ticks * _TICK_S


def _children(pid: int) -> list[int]:
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                ppid = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
            except (OSError, IndexError, ValueError):
                continue
            if ppid == pid:
                found.append(int(entry.name))
    return found


class _CpuMeter:
    """CPU seconds spent during a run by the runtime's Python process, by its PostgreSQL
    (the postmaster and its backends) and by this process (the clients and the model server)."""

    def __init__(self, platform: _Platform) -> None:
        self._runtime = platform.proc.pid
        lines = (platform.pg_dir / "postmaster.pid").read_text().splitlines()
        self._postmaster = int(lines[0])
        self.runtime_s = self.postgres_s = self.client_s = self.wall_s = 0.0

    def _sample(self) -> tuple[float, float, float, float]:
        postgres = _stat_cpu_s(self._postmaster, waited_children=True)
        postgres += sum(_stat_cpu_s(child) for child in _children(self._postmaster))
        own = os.times()
        return (_stat_cpu_s(self._runtime), postgres, own.user + own.system, time.perf_counter())

    def __enter__(self) -> _CpuMeter:
        self._before = self._sample()
        return self

    def __exit__(self, *exc: object) -> None:
        after = self._sample()
        self.runtime_s, self.postgres_s, self.client_s, self.wall_s = (
            a - b for a, b in zip(after, self._before, strict=True))

    def line(self, turns: int) -> str:
        return (f"CPU during the run ({self.wall_s:.1f} s wall x {os.cpu_count()} cores): runtime process "
                f"{self.runtime_s:.1f} s ({self.runtime_s / turns * 1000:.1f} ms a turn), PostgreSQL "
                f"{self.postgres_s:.1f} s ({self.postgres_s / turns * 1000:.1f} ms a turn), this process (clients "
                f"and model server) {self.client_s:.1f} s")


# --- chat-overhead ---------------------------------------------------------------------------------


def run_overhead() -> None:
    _out(f"== Chat: platform overhead per quick-answer turn (local runtime over HTTP + SSE; knowledge base of "
         f"{SEGMENTS:,} segments, hybrid top_k {TOP_K}, query rewrite off) ==")
    platform = _shared_platform()
    platform.fake.chunks, platform.fake.chunk_delay_s = QUICK_ANSWER_CHUNKS, 0.0
    load_before = os.getloadavg()[0]
    with httpx.Client(base_url=platform.url, timeout=120) as http:  # one kept-alive connection
        for n, question in enumerate(platform.take_questions(WARMUP_TURNS)):
            _sync_turn(http, platform, question, f"warm-{n}", QUICK_ANSWER_CHUNKS)
        with _CpuMeter(platform) as cpu:
            turns = [_sync_turn(http, platform, question, f"user-{n}", QUICK_ANSWER_CHUNKS)
                     for n, question in enumerate(platform.take_questions(MEASURED_TURNS))]
        elapsed = cpu.wall_s
    overhead = [t.overhead_ms for t in turns if t.overhead_ms is not None]
    errors, kinds = _errors(turns)
    _out(f"{MEASURED_TURNS} sequential turns after {WARMUP_TURNS} warm-up turns, each a new conversation and a "
         f"different question; answer {QUICK_ANSWER_CHUNKS} chunks, no delay; {elapsed:.1f} s; load average "
         f"{load_before:.1f} before, {os.getloadavg()[0]:.1f} after ({os.cpu_count()} cores)")
    _out(f"errors: {errors} ({kinds})")
    _out(f"overhead = client time to first message.delta - model server's time to first token "
         f"({len(overhead)} turns):")
    _out(f"  overhead               {_stats(overhead)}")
    _out(f"  client first delta     {_stats([t.first_delta_ms for t in turns if t.first_delta_ms is not None])}")
    _out(f"  model server TTFT      {_stats([t.model_ttft_ms for t in turns if t.model_ttft_ms is not None])}")
    _out("breakdown (medians; message.complete's latency is in whole ms):")
    for line in _breakdown(turns):
        _out(line)
    ok = bool(overhead) and statistics.median(overhead) <= 60 and _percentile(overhead, 95) <= 120
    _out(cpu.line(MEASURED_TURNS))
    _out(f"goal overhead p50 <= 60 ms, p95 <= 120 ms: {'met' if ok and not errors else 'NOT met'}")
    _show_errors(platform, turns)


# --- chat-concurrency ------------------------------------------------------------------------------


def _proc_status(pid: int) -> dict[str, int]:
    """VmHWM, VmRSS (kB) and Threads of a process."""
    out: dict[str, int] = {}
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            name, _, value = line.partition(":")
            if name in ("VmHWM", "VmRSS", "Threads"):
                out[name] = int(value.split()[0])
    except OSError:
        pass
    return out


class _Sampler:
    """The runtime's thread count and RSS, every 100 ms, while the concurrent chats run."""

    def __init__(self, pid: int) -> None:
        self.pid = pid
        self.max_threads = 0
        self.max_rss_kb = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.wait(0.1):
            status = _proc_status(self.pid)
            self.max_threads = max(self.max_threads, status.get("Threads", 0))
            self.max_rss_kb = max(self.max_rss_kb, status.get("VmRSS", 0))

    def __enter__(self) -> _Sampler:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()


async def _concurrent(platform: _Platform, questions: list[str]) -> list[Turn]:
    limits = httpx.Limits(max_connections=CONCURRENT_CLIENTS * 2, max_keepalive_connections=CONCURRENT_CLIENTS * 2)
    async with httpx.AsyncClient(base_url=platform.url, timeout=120, limits=limits) as http:
        async def client(n: int) -> list[Turn]:
            mine = questions[n * CHATS_PER_CLIENT:(n + 1) * CHATS_PER_CLIENT]
            return [await _async_turn(http, platform, question, f"client-{n}", STREAM_CHUNKS) for question in mine]

        per_client = await asyncio.gather(*(client(n) for n in range(CONCURRENT_CLIENTS)))
    return [turn for turns in per_client for turn in turns]


def run_concurrency() -> None:
    total = CONCURRENT_CLIENTS * CHATS_PER_CLIENT
    _out(f"== Chat: {CONCURRENT_CLIENTS} concurrent streaming chats against the local runtime ({CHATS_PER_CLIENT} "
         f"back to back each, {total} in all; answer {STREAM_CHUNKS} chunks {STREAM_CHUNK_DELAY_S * 1000:.0f} ms "
         f"apart; knowledge base of {SEGMENTS:,} segments, hybrid top_k {TOP_K}) ==")
    platform = _shared_platform()
    platform.fake.chunks, platform.fake.chunk_delay_s = STREAM_CHUNKS, STREAM_CHUNK_DELAY_S
    with httpx.Client(base_url=platform.url, timeout=120) as http:
        for n, question in enumerate(platform.take_questions(CONCURRENT_WARMUP_TURNS)):
            _sync_turn(http, platform, question, f"warm-c{n}", STREAM_CHUNKS)
    pid = platform.proc.pid
    before = _proc_status(pid)
    load_before = os.getloadavg()[0]
    questions = platform.take_questions(total)
    with _Sampler(pid) as sampler, _CpuMeter(platform) as cpu:
        turns = asyncio.run(_concurrent(platform, questions))
    elapsed = cpu.wall_s
    after = _proc_status(pid)
    errors, kinds = _errors(turns)
    overhead = [t.overhead_ms for t in turns if t.overhead_ms is not None]
    done = [t.done_ms for t in turns if t.done_ms is not None and not t.error]
    _out(f"wall time {elapsed:.1f} s ({total / elapsed:.1f} chats/s); load average {load_before:.1f} before, "
         f"{os.getloadavg()[0]:.1f} after ({os.cpu_count()} cores)")
    _out(f"errors: {errors} of {total} ({kinds})   goal 0: {'met' if not errors else 'NOT met'}")
    _show_errors(platform, turns)
    _out(f"  first-delta overhead   {_stats(overhead)}")
    _out(f"  client first delta     {_stats([t.first_delta_ms for t in turns if t.first_delta_ms is not None])}")
    _out(f"  model server TTFT      {_stats([t.model_ttft_ms for t in turns if t.model_ttft_ms is not None])}")
    model_alone_ms = STREAM_CHUNKS * STREAM_CHUNK_DELAY_S * 1000
    _out(f"  whole stream (to done) {_stats(done)}  (the model alone: ~{model_alone_ms:.0f} ms)")
    _out("breakdown of the first delta (medians):")
    for line in _breakdown(turns):
        _out(line)
    _out(cpu.line(total))
    mb = 1024
    _out(f"runtime process (pid {pid}) peak RSS (VmHWM): {before.get('VmHWM', 0) / mb:.0f} MB before, "
         f"{after.get('VmHWM', 0) / mb:.0f} MB after; RSS {before.get('VmRSS', 0) / mb:.0f} MB before, "
         f"{after.get('VmRSS', 0) / mb:.0f} MB after; threads {before.get('Threads', 0)} before, "
         f"up to {sampler.max_threads} during, {after.get('Threads', 0)} after")
