"""The local embedder chosen by measurement: the same all-MiniLM-L6-v2 weights three ways.

- `torch`: sentence-transformers on torch (the embedder before issue #16);
- `onnx-fp32`: the graph exported at setup (`tzurot.memory.minilm_export`), ONNX Runtime;
- `onnx-int8`: the same graph with MatMul weights quantised per channel (memory's default).

For each: CPU milliseconds per text on one thread (process CPU time, so a busy machine
changes it less than wall time), one short text per call and 64 per call; the RSS of a
fresh process that imports memory's service and embeds a batch (what the embedder adds
to the service); and retrieval quality on the memory-quality bench (recall@10 and MRR,
vector-only and hybrid), and on LoCoMo when `TZUROT_BENCH_LOCOMO_DATA` is set.
`python -m bench.embedders [--quick] [--locomo]`.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from bench import memory_quality
from bench.results import Figure
from tzurot.memory.embedding import Embedder, MiniLMEmbedder
from tzurot.memory.minilm_onnx import OnnxMiniLMEmbedder

SHORT = "Alice: I adopted a cat named Miso last spring."
BATCH = [f"User {i}: I went hiking near the lake on day {i} and saw a heron." for i in range(64)]
CANDIDATES = ("torch", "onnx-fp32", "onnx-int8")


def make(name: str) -> Any:
    if name == "torch":
        import torch  # noqa: PLC0415 - the comparison only

        torch.set_num_threads(1)
        return MiniLMEmbedder()
    return OnnxMiniLMEmbedder(precision="fp32" if name == "onnx-fp32" else "int8", threads=1)


def cpu_ms(call: Callable[[], object], repeat: int) -> float:
    call()
    started = time.process_time()
    for _ in range(repeat):
        call()
    return (time.process_time() - started) * 1000 / repeat


_RSS_PROBE = """
import json, sys
from bench.embedders import BATCH, make
import tzurot.memory.app  # what the service imports anyway
embedder = make(sys.argv[1])
embedder.embed_sync(BATCH)
status = dict(line.split(":", 1) for line in open("/proc/self/status"))
print(json.dumps({k: int(status[k].split()[0]) / 1024 for k in ("VmRSS", "VmHWM")}))
"""


def rss_mib(name: str) -> dict[str, float]:
    done = subprocess.run(  # noqa: S603 - our own interpreter, our own probe
        [sys.executable, "-c", _RSS_PROBE, name],
        capture_output=True,
        text=True,
        check=True,
        cwd=Path(__file__).parent.parent,
    )
    result: dict[str, float] = json.loads(done.stdout.strip().splitlines()[-1])
    return result


def quality(embedder: Embedder, locomo: bool) -> dict[str, float]:
    report = asyncio.run(memory_quality.evaluate(memory_quality.SAMPLE, embedder))
    found = {
        f"{method} {metric}": report[method]["all"][metric]
        for method in ("vector", "hybrid")
        for metric in ("recall@10", "mrr")
    }
    data = os.environ.get("TZUROT_BENCH_LOCOMO_DATA", "")
    if locomo and data and Path(data).exists():
        from bench import locomo as locomo_bench  # noqa: PLC0415 - bm25s, only when asked

        rows, timings = asyncio.run(locomo_bench.evaluate(Path(data), embedder))
        for method, by_row in rows.items():
            found[f"LoCoMo {method} recall@10"] = by_row["1-4"]["recall@10"]
        found["LoCoMo formation exchanges/s"] = timings.get("formation_exchanges_per_s", 0)
    return found


def measure(name: str, *, quick: bool, locomo: bool) -> dict[str, Any]:
    embedder = make(name)
    embedder.load()
    single = cpu_ms(lambda: embedder.embed_sync([SHORT]), 30 if quick else 200)
    batched = cpu_ms(lambda: embedder.embed_sync(BATCH), 3 if quick else 10) / len(BATCH)
    return {
        "single_ms": round(single, 2),
        "batch64_ms_per_text": round(batched, 2),
        **{f"{k} MiB": round(v, 1) for k, v in rss_mib(name).items()},
        **quality(embedder, locomo),
    }


def run(quick: bool, *, locomo: bool = False) -> list[Figure]:
    figures = []
    for name in CANDIDATES:
        found = measure(name, quick=quick, locomo=locomo)
        print(f"embedder {name}: {found}", flush=True)
        figures.append(
            Figure(
                name=f"embedder {name}, CPU per short text",
                unit="ms",
                samples=1,
                p50=found["single_ms"],
                p99=found["single_ms"],
                mean=found["batch64_ms_per_text"],
                extra=found,
            )
        )
    return figures


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.embedders")
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--locomo", action="store_true", help="LoCoMo too (slow)")
    parser.add_argument("--only", nargs="+", choices=CANDIDATES)
    args = parser.parse_args()
    for name in args.only or CANDIDATES:
        print(name, json.dumps(measure(name, quick=args.quick, locomo=args.locomo)), flush=True)


if __name__ == "__main__":
    main()
