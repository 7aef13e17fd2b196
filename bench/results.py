"""A figure's samples summarised, and the JSON file each run writes under bench/results/."""

from __future__ import annotations

import json
import os
import platform
import statistics
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

RESULTS_DIR = Path(__file__).parent / "results"


@dataclass(frozen=True)
class Figure:
    name: str
    unit: str
    samples: int
    p50: float
    p99: float
    mean: float
    extra: dict[str, Any] = field(default_factory=dict)


def summarise(name: str, values_ms: list[float], **extra: Any) -> Figure:
    ordered = sorted(values_ms)
    p99_index = min(len(ordered) - 1, max(0, round(0.99 * len(ordered)) - 1))
    return Figure(
        name=name,
        unit="ms",
        samples=len(ordered),
        p50=statistics.median(ordered),
        p99=ordered[p99_index],
        mean=statistics.fmean(ordered),
        extra=extra,
    )


def write(figures: list[Figure], *, quick: bool) -> Path:
    RESULTS_DIR.mkdir(exist_ok=True)
    path = RESULTS_DIR / f"bench-{time.strftime('%Y%m%dT%H%M%S')}.json"
    document = {
        "quick": quick,
        "machine": {"python": platform.python_version(), "cpus": _cpus()},
        "figures": [asdict(f) for f in figures],
    }
    path.write_text(json.dumps(document, indent=2) + "\n")
    return path


def table(figures: list[Figure]) -> str:
    width = max([6, *(len(f.name) for f in figures)])
    rows = [f"{'figure':<{width}} {'n':>5} {'p50':>10} {'p99':>10} {'mean':>10}  notes"]
    for f in figures:
        notes = ", ".join(f"{k}={v}" for k, v in f.extra.items())
        rows.append(
            f"{f.name:<{width}} {f.samples:>5} {f.p50:>7.1f}{f.unit:<3} {f.p99:>7.1f}{f.unit:<3}"
            f" {f.mean:>7.1f}{f.unit:<3}  {notes}"
        )
    return "\n".join(rows)


def _cpus() -> int:
    return len(os.sched_getaffinity(0))
