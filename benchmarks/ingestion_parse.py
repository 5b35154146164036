"""Document parsing + chunking, without embedding: throughput and peak memory.

- pages/s of parse + chunk (default chunking: recursive, 200 tokens, overlap 20, counted by
  the local model's WordPiece tokenizer) on a generated 300-page PDF and a 5 MB markdown file.
  A PDF page is a page; markdown has none, so a page is 3,000 characters of parsed text (the
  usual estimate of a printed page). Parse alone is reported too. Fastest of RUNS runs.
- peak RSS (ru_maxrss of the measuring process) while parsing and chunking a 5 MB and a 50 MB
  markdown file, consuming every chunk and keeping none, as ingestion does.

Each measurement runs in a fresh interpreter, so one does not pollute the next (ru_maxrss
never goes down). Inputs are generated deterministically (tests/support/documents.py) under
.build/bench/ and reused by later runs.

Goal: >= 100 pages/s (2 cores); RSS grows < 30 MB from the 5 MB file to the 50 MB one.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from tests.support.documents import make_markdown, make_pdf

ROOT = Path(__file__).resolve().parents[1]
BENCH_DIR = ROOT / ".build" / "bench"
PDF_PAGES = 300
MARKDOWN_BYTES = 5_000_000
LARGE_MARKDOWN_BYTES = 50_000_000
CHARS_PER_PAGE = 3000
RUNS = 3
PAGES_PER_S_GOAL = 100
RSS_GROWTH_GOAL_MB = 30
# Bump when the generators change, so stale inputs are not reused.
INPUT_VERSION = 1

_PROBE = r"""
import json, resource, sys, time
from pathlib import Path

def rss_mb():
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux

from shared.knowledge.chunking import chunk_blocks
from shared.knowledge.parsing import parse
from shared.knowledge.tokens import token_counter
from shared.knowledge.types import ChunkingConfig
from shared.models.spec import Capability, ModelSpec, Protocol

path, fmt, mode, strategy = Path(sys.argv[1]), sys.argv[2], sys.argv[3], sys.argv[4]
spec = ModelSpec(name="all-minilm-l6-v2", display_name="local", protocol=Protocol.LOCAL,
                 provider_model="all-minilm-l6-v2-int8", capabilities=[Capability.EMBEDDING],
                 dimensions=384, max_input_tokens=256)
counter = token_counter(spec)
counter.count(["warm up"])  # tokenizer loaded: not part of the figures
if fmt == "pdf":
    import pypdfium2  # noqa: F401  (native library loaded before the clock starts)
config = ChunkingConfig(strategy=strategy)
result = {"loaded_rss": rss_mb()}
try:  # reset the high-water mark to the current RSS: the peak is then ingestion's own
    with open("/proc/self/clear_refs", "w") as handle:
        handle.write("5")
    result["reset"] = True
except OSError:
    result["reset"] = False
result["base_rss"] = rss_mb()
if mode == "time":
    started = time.perf_counter()
    blocks = parse(path, fmt)
    sum(1 for _ in blocks)
    result["parse_s"] = time.perf_counter() - started
started = time.perf_counter()
parsed = parse(path, fmt)
chunks = tokens = 0
for chunk in chunk_blocks(parsed, config, counter):
    chunks += 1
    tokens += chunk.tokens
result.update(seconds=time.perf_counter() - started, chunks=chunks, tokens=tokens, pages=parsed.pages,
              characters=parsed.characters, peak_rss=rss_mb())
print(json.dumps(result))
"""


def _out(line: str = "") -> None:
    sys.stdout.write(line + "\n")
    sys.stdout.flush()


def _probe(path: Path, fmt: str, mode: str, strategy: str = "recursive") -> dict[str, float]:
    env = {**os.environ, "PYTHONDONTWRITEBYTECODE": "0"}
    out = subprocess.run([sys.executable, "-c", _PROBE, str(path), fmt, mode, strategy], capture_output=True,
                         text=True, check=True, env=env, cwd=ROOT)
    result: dict[str, float] = json.loads(out.stdout.strip().splitlines()[-1])
    return result


def _inputs() -> tuple[Path, Path, Path]:
    BENCH_DIR.mkdir(parents=True, exist_ok=True)
    pdf = BENCH_DIR / f"generated-{PDF_PAGES}p-v{INPUT_VERSION}.pdf"
    small = BENCH_DIR / f"generated-{MARKDOWN_BYTES // 1_000_000}mb-v{INPUT_VERSION}.md"
    large = BENCH_DIR / f"generated-{LARGE_MARKDOWN_BYTES // 1_000_000}mb-v{INPUT_VERSION}.md"
    if not pdf.exists():
        _out(f"generating {pdf.name} (fpdf2, once) ...")
        make_pdf(pdf.with_suffix(".tmp"), PDF_PAGES).rename(pdf)
    for path, size in ((small, MARKDOWN_BYTES), (large, LARGE_MARKDOWN_BYTES)):
        if not path.exists():
            make_markdown(path.with_suffix(".tmp"), size).rename(path)
    return pdf, small, large


def _fastest(path: Path, fmt: str, strategy: str = "recursive", runs_: int = RUNS) -> dict[str, float]:
    runs = [_probe(path, fmt, "time", strategy) for _ in range(runs_)]
    best = min(runs, key=lambda r: r["seconds"])
    best["parse_s"] = min(r["parse_s"] for r in runs)
    return best


def run() -> None:
    _out("== Ingestion: parse + chunk, no embedding (fresh interpreter per measurement) ==")
    pdf, small, large = _inputs()
    rates: list[float] = []

    r = _fastest(pdf, "pdf")
    rate = r["pages"] / r["seconds"]
    rates.append(rate)
    _out(f"PDF, {r['pages']:.0f} pages ({pdf.stat().st_size / 1e6:.1f} MB, {r['characters'] / 1e6:.2f} M chars): "
         f"parse {r['pages'] / r['parse_s']:6.0f} pages/s; parse + chunk {rate:6.0f} pages/s "
         f"({r['seconds']:.2f} s, {r['chunks']:.0f} chunks, {r['tokens'] / r['seconds']:,.0f} tokens/s)")

    for strategy in ("recursive", "fixed", "parent_child"):  # the other strategies: one run, for scale
        r = _fastest(small, "md", strategy, RUNS if strategy == "recursive" else 1)
        pages = r["characters"] / CHARS_PER_PAGE
        rate = pages / r["seconds"]
        if strategy == "recursive":
            rates.append(rate)
        _out(f"Markdown {small.stat().st_size / 1e6:.1f} MB ({pages:,.0f} pages of {CHARS_PER_PAGE:,} chars), "
             f"{strategy:<12}: parse {pages / r['parse_s']:6.0f} pages/s; parse + chunk {rate:6.0f} pages/s "
             f"({r['seconds']:.2f} s, {r['chunks']:.0f} chunks)")

    small_rss = _probe(small, "md", "rss")
    large_rss = _probe(large, "md", "rss")
    growth = large_rss["peak_rss"] - small_rss["peak_rss"]
    for label, path, r in (("5 MB", small, small_rss), ("50 MB", large, large_rss)):
        since = "its start" if r["reset"] else "process start (high-water mark not resettable here)"
        _out(f"peak RSS, markdown {label:>5} ({path.stat().st_size / 1e6:5.1f} MB): {r['peak_rss']:6.1f} MB; "
             f"+{r['peak_rss'] - r['base_rss']:.1f} MB over the process with tokenizer loaded "
             f"({r['base_rss']:.1f} MB), peak since {since}; {r['chunks']:.0f} chunks in {r['seconds']:.1f} s")
    worst = min(rates)
    _out(f"pages/s: {worst:.0f} at worst (goal >= {PAGES_PER_S_GOAL}: "
         f"{'met' if worst >= PAGES_PER_S_GOAL else 'MISSED'}); RSS growth 5 MB -> 50 MB: {growth:+.1f} MB "
         f"(goal < {RSS_GROWTH_GOAL_MB} MB: {'met' if growth < RSS_GROWTH_GOAL_MB else 'MISSED'})")
