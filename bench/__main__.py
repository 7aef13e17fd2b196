"""`python -m bench [--quick]`: run the figures, print a table, write bench/results/*.json."""

from __future__ import annotations

import argparse
import asyncio
import json
from pathlib import Path

from bench import chat_turn, cold_start, memory_quality, memory_speed
from bench.results import RESULTS_DIR, table, write


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench")
    parser.add_argument("--quick", action="store_true", help="fewer samples, same figures")
    parser.add_argument(
        "--memory-sizes",
        default="",
        help="memory counts for the speed figures, e.g. 10000,100000,1000000 "
        "(default: 10000 quick, 10000,100000 full)",
    )
    parser.add_argument(
        "--locomo", type=Path, default=memory_quality.SAMPLE, help="a LoCoMo-format JSON file"
    )
    parser.add_argument("--only-memory", action="store_true", help="skip the chat figures")
    args = parser.parse_args()
    turns, starts = (50, 1) if args.quick else (500, 3)
    default_sizes = "10000" if args.quick else "10000,100000"
    sizes = [int(n) for n in (args.memory_sizes or default_sizes).split(",")]
    figures = [] if args.only_memory else asyncio.run(chat_turn.run(turns))
    figures += [] if args.only_memory else cold_start.run(starts)
    figures += asyncio.run(memory_speed.run(sizes, queries=100 if args.quick else 500))
    print(table(figures))
    print(f"\nJSON: {write(figures, quick=args.quick)}")
    quality = asyncio.run(memory_quality.run(args.locomo))
    print(f"\nMemory retrieval quality ({args.locomo.name}):\n{memory_quality.table(quality)}")
    path = RESULTS_DIR / f"memory-quality-{args.locomo.stem}.json"
    path.write_text(json.dumps(quality, indent=2) + "\n")
    print(f"JSON: {path}")


if __name__ == "__main__":
    main()
