"""`python -m bench [--quick]`: run the figures, print a table, write bench/results/*.json."""

from __future__ import annotations

import argparse
import asyncio

from bench import chat_turn, cold_start, edge
from bench.results import table, write


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench")
    parser.add_argument("--quick", action="store_true", help="fewer samples, same figures")
    args = parser.parse_args()
    turns, starts = (50, 1) if args.quick else (500, 3)
    figures = asyncio.run(chat_turn.run(turns))
    figures += asyncio.run(edge.run(turns * 2))
    figures += cold_start.run(starts)
    print(table(figures))
    print(f"\nJSON: {write(figures, quick=args.quick)}")


if __name__ == "__main__":
    main()
