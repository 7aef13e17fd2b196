"""`python -m bench [--quick] [--only NAME ...]`: run the figures, print a table, write JSON.

Each figure module has `run(quick: bool) -> list[Figure]`; add a module to FIGURES to add
its figures to `make bench`.
"""

from __future__ import annotations

import argparse
import importlib
import time
from types import ModuleType

from bench.machine import reference_loop_seconds
from bench.results import Figure, goal_lines, table, write

FIGURES = [
    "goals",  # issue 16: CPU and round trips per turn, embedder, formation, first turn
    "overhead",  # 1 and 3: turn through the mesh vs the in-process floor; first token
    "throughput",  # 2: sustained messages per second with p99 < 100 ms
    "keyvault",  # 4: Decrypt over mTLS, rewrap rate
    "memory_speed",  # 5: memory insert/search latency, HNSW recall@10 vs exact
    "memory_large_scope",  # 5: a 100k-memory scope through HNSW against exact (full run only)
    "memory_quality",  # 5: retrieval quality on a LoCoMo-format file
    "locomo",  # 5: LoCoMo evidence retrieval through the product path (data from an env var)
    "edge",  # the Envoy edge's cost on a unary admin call (gRPC and JSON)
    "cold_start",  # 6: `tzurot up` to all services healthy
    "cli_start",  # issue 14: `tzurot --help`, `tzurot chat -m`; first turn after start vs steady
    "rss",  # 7: RSS of each service, idle and after load
    "skills_loop",  # issue 18: the tool loop's overhead per step against the fake provider
    "voice",  # issue 17: answer text posted → voice message posted, minus the fake vendor
    "sse",  # issue 16: CPU to read a 500-chunk streamed answer (SDK models vs JSON)
]


def _module(name: str) -> ModuleType:
    return importlib.import_module(f"bench.{name}")


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench")
    parser.add_argument("--quick", action="store_true", help="fewer samples, same figures")
    parser.add_argument("--only", nargs="+", choices=FIGURES, help="run only these modules")
    args = parser.parse_args()
    speed = reference_loop_seconds()
    print(f"machine: a 10M-addition Python loop takes {speed:.2f} s of CPU", flush=True)
    figures: list[Figure] = []
    for name in args.only or FIGURES:
        started = time.perf_counter()
        figures += _module(name).run(args.quick)
        print(f"[{name}: {time.perf_counter() - started:.0f} s]", flush=True)
    print(table(figures))
    goals = goal_lines(figures)
    if goals:
        print(f"\nGoals (issue 16):\n{goals}")
    print(f"\nJSON: {write(figures, quick=args.quick, reference_loop_s=speed)}")


if __name__ == "__main__":
    main()
