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


def goal(name: str, value: float, unit: str, target: str, met: bool, **extra: Any) -> Figure:
    """A goal's figure (`goal <name>`); prints its line now, as `goal_lines` does later."""
    figure = Figure(
        name=f"goal {name}",
        unit=unit,
        samples=1,
        p50=value,
        p99=value,
        mean=value,
        extra={"goal": target, "met": met, **extra},
    )
    print(goal_line(figure), flush=True)
    return figure


def shown(value: float, unit: str) -> str:
    """A figure's value as printed: a score or share (no unit and under 10, e.g. recall
    0.744) to three decimals, a ratio ("x") to two, a count or measure (12.6 round trips,
    ms, MiB, per s) to one."""
    decimals = 3 if unit == "" and abs(value) < 10 else {"x": 2}.get(unit, 1)
    return f"{value:.{decimals}f}"


def goal_line(figure: Figure) -> str:
    met = "MET" if figure.extra["met"] else "NOT MET"
    value = f"{shown(figure.p50, figure.unit)} {figure.unit}".strip()
    return f"{figure.name}: {value} (goal {figure.extra['goal']}) {met}"


def goal_lines(figures: list[Figure]) -> str:
    """Every goal among `figures`, one line each with its value and MET / NOT MET."""
    return "\n".join(
        goal_line(f) for f in figures if "met" in f.extra and f.name.startswith("goal ")
    )


def write(figures: list[Figure], *, quick: bool, reference_loop_s: float | None = None) -> Path:
    """`reference_loop_s`: `bench.machine.reference_loop_seconds()` on this machine."""
    RESULTS_DIR.mkdir(exist_ok=True)
    path = RESULTS_DIR / f"bench-{time.strftime('%Y%m%dT%H%M%S')}.json"
    machine = {"python": platform.python_version(), "cpus": _cpus()}
    if reference_loop_s is not None:
        machine["reference_loop_s"] = round(reference_loop_s, 3)
    document = {
        "quick": quick,
        "machine": machine,
        "figures": [asdict(f) for f in figures],
    }
    path.write_text(json.dumps(document, indent=2) + "\n")
    return path


def table(figures: list[Figure]) -> str:
    width = max([6, *(len(f.name) for f in figures)])
    rows = [f"{'figure':<{width}} {'n':>5} {'p50':>10} {'p99':>10} {'mean':>10}  notes"]
    for f in figures:
        notes = ", ".join(f"{k}={v}" for k, v in f.extra.items())
        p50, p99, mean = (shown(v, f.unit) for v in (f.p50, f.p99, f.mean))
        rows.append(
            f"{f.name:<{width}} {f.samples:>5} {p50:>7}{f.unit:<3} {p99:>7}{f.unit:<3}"
            f" {mean:>7}{f.unit:<3}  {notes}"
        )
    return "\n".join(rows)


def _cpus() -> int:
    return len(os.sched_getaffinity(0))
