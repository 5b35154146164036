"""The bundled embedding model (all-MiniLM-L6-v2 int8 on onnxruntime) on this machine:
load time, throughput at batch 32, and the process's peak RSS growth.

Measured in a fresh interpreter so the memory figures are the model's alone (ru_maxrss is
the peak resident set of the process, native allocations included; tracemalloc would only
see Python objects). 2,000 segments of 60-120 words, generated deterministically.

Goal: >= 200 segments/s on 2 cores; peak RSS growth well under Lambda's 1,024 MB setting.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys

SEGMENTS = 2000
BATCH = 32

_PROBE = r"""
import json, random, resource, sys, time

def rss_mb():
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux

from shared.models import local_embedding as le
from shared.models.types import Credentials, Timeouts

WORDS = ("the of and to in is was for on that with as by at from this are be it an which "
         "system data model query result customer invoice payment service request latency "
         "document retrieval index vector search cluster region storage network policy "
         "account tenant budget forecast quarter revenue growth market product release "
         "engineer incident review metric threshold alert deploy rollback cache memory "
         "river mountain garden history music science language museum harbour winter").split()
rng = random.Random(20240601)
segments = []
for _ in range({segments}):
    words = [rng.choice(WORDS) for _ in range(rng.randint(60, 120))]
    segments.append(" ".join(words).capitalize() + ".")

base_rss = rss_mb()
t = time.perf_counter()
le.tokenizer()
tokenizer_s = time.perf_counter() - t
t = time.perf_counter()
le.load()
load_s = time.perf_counter() - t + tokenizer_s
loaded_rss = rss_mb()

provider = le.LocalEmbeddingProvider()
creds, timeouts = Credentials(), Timeouts(read_s=600)
provider.embed(le.MODEL_NAME, segments[:{batch}], creds, timeouts)  # warm-up (first-run allocations)

t = time.perf_counter()
counts = le.count_tokens(segments)
count_s = time.perf_counter() - t

t = time.perf_counter()
tokens = 0
for start in range(0, len(segments), {batch}):
    vectors, n = provider.embed(le.MODEL_NAME, segments[start:start + {batch}], creds, timeouts)
    tokens += n
per_call_s = time.perf_counter() - t

t = time.perf_counter()
vectors, _ = provider.embed(le.MODEL_NAME, segments, creds, timeouts)
one_call_s = time.perf_counter() - t
segments_rss = rss_mb()

short = [" ".join(rng.choice(WORDS) for _ in range(rng.randint(6, 14))) for _ in range({segments})]
t = time.perf_counter()
for start in range(0, len(short), {batch}):
    provider.embed(le.MODEL_NAME, short[start:start + {batch}], creds, timeouts)
short_s = time.perf_counter() - t

# The worst case for memory: every text at the 256-wordpiece limit.
longest = [" ".join(rng.choice(WORDS) for _ in range(300)) for _ in range(64)]
t = time.perf_counter()
provider.embed(le.MODEL_NAME, longest, creds, timeouts)
longest_s = time.perf_counter() - t

print(json.dumps({{
    "load_s": load_s, "tokenizer_s": tokenizer_s, "base_rss": base_rss, "loaded_rss": loaded_rss,
    "segments_rss": segments_rss, "peak_rss": rss_mb(), "short_s": short_s, "longest_s": longest_s,
    "per_call_s": per_call_s, "one_call_s": one_call_s, "count_s": count_s, "tokens": tokens,
    "mean_tokens": sum(counts) / len(counts), "truncated": sum(c > le.MAX_SEQ_LENGTH for c in counts),
    "threads": le._cpu_threads(),
}}))
"""


def run() -> None:
    print(f"== Local embedding model: {SEGMENTS} segments of 60-120 words, batch {BATCH} (fresh interpreter) ==")
    env = {**os.environ, "PYTHONDONTWRITEBYTECODE": "0"}
    out = subprocess.run([sys.executable, "-c", _PROBE.format(segments=SEGMENTS, batch=BATCH)],
                         capture_output=True, text=True, check=True, env=env)
    r = json.loads(out.stdout.strip().splitlines()[-1])
    print(f"threads {r['threads']}; mean {r['mean_tokens']:.0f} wordpieces per segment "
          f"({r['truncated']} truncated)")
    print(f"load (tokenizer + ONNX session)   {r['load_s'] * 1000:8.0f} ms  (tokenizer alone "
          f"{r['tokenizer_s'] * 1000:.0f} ms)")
    print(f"count_tokens, all segments        {r['count_s'] * 1000:8.0f} ms  "
          f"({SEGMENTS / r['count_s']:,.0f} segments/s)")
    print(f"embed, calls of {BATCH}               {SEGMENTS / r['per_call_s']:8.0f} segments/s  "
          f"({r['tokens'] / r['per_call_s']:,.0f} tokens/s)")
    print(f"embed, one call of {SEGMENTS}         {SEGMENTS / r['one_call_s']:8.0f} segments/s  "
          "(sorted by length, internal batches of <= 32)")
    print(f"embed, calls of {BATCH}, 6-14 words   {SEGMENTS / r['short_s']:8.0f} segments/s")
    print(f"embed, 64 texts at 256 wordpieces {64 / r['longest_s']:8.0f} segments/s")
    base = r["base_rss"]
    print(f"peak RSS (ru_maxrss): {base:.0f} MB after import; growth +{r['loaded_rss'] - base:.0f} MB loaded, "
          f"+{r['segments_rss'] - base:.0f} MB after the 60-120-word segments, "
          f"+{r['peak_rss'] - base:.0f} MB after texts at the 256 limit")
