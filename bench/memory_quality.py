"""Memory retrieval quality on a LoCoMo-format conversation file.

Each conversation's turns are added through LongTermMemory (its own personality scope,
the real MiniLM embedder), then every question is ranked four ways: vector only,
keyword only, reciprocal-rank fusion (k=60) of those two, and the hybrid score. Reported:
evidence recall@5 and @10 (share of a question's evidence dia_ids among the dia_ids of
the top k memories) and MRR of the first evidence hit, per category and overall.
Ranking has no side effects here (no reinforcement), so every method sees the same state.
The file: `TZUROT_BENCH_LOCOMO`, by default the small hand-written bench/data sample. A
conversation's `split` ("dev", the default, or "held_out") is reported on its own row: the
scoring was changed looking only at "dev"; "held_out" was written before and not tuned on.
"""

from __future__ import annotations

import asyncio
import json
import os
import re
import tempfile
import uuid
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

from bench.results import Figure
from tzurot.cli.localdb import create_database, local_postgres
from tzurot.db.engine import create_engine
from tzurot.db.migrate import upgrade
from tzurot.memory.domain import StoredMemory
from tzurot.memory.embedding import Embedder
from tzurot.memory.longterm import LongTermMemory, Tuning, Window, memory_search
from tzurot.memory.memory_store import PostgresMemoryStore
from tzurot.memory.migrations import SCRIPT_LOCATION
from tzurot.memory.minilm_onnx import OnnxMiniLMEmbedder
from tzurot.memory.scoring import Weights
from tzurot.memory.tables import SCHEMA

SAMPLE = Path(__file__).parent / "data" / "locomo_sample.json"
USER = "locomo"
METHODS = {
    "vector": Weights(1, 0, 0, 0, 0, 0, 0),
    "keyword": Weights(0, 1, 0, 0, 0, 0, 0),
    "hybrid": Weights(),
}
_SESSION = re.compile(r"session_(\d+)$")


def turns(conversation: dict[str, Any]) -> list[dict[str, str]]:
    sessions = sorted(
        (int(m.group(1)), value)
        for key, value in conversation.items()
        if (m := _SESSION.match(key)) and isinstance(value, list)
    )
    return [turn for _n, session in sessions for turn in session]


def dia_ids(ranked: Sequence[StoredMemory]) -> list[str]:
    seen: list[str] = []
    for memory in ranked:
        seen += [d for d in memory.source_turn_ids if d not in seen]
    return seen


def rrf(*rankings: list[str], k: int = 60) -> list[str]:
    scores: dict[str, float] = defaultdict(float)
    for ranking in rankings:
        for rank, item in enumerate(ranking):
            scores[item] += 1 / (k + rank + 1)
    return sorted(scores, key=lambda item: -scores[item])


def metrics(ranked: list[str], evidence: set[str]) -> dict[str, float]:
    first = next((i for i, d in enumerate(ranked) if d in evidence), None)
    return {
        "recall@5": len(evidence & set(ranked[:5])) / len(evidence),
        "recall@10": len(evidence & set(ranked[:10])) / len(evidence),
        "mrr": 0.0 if first is None else 1 / (first + 1),
    }


def run(quick: bool) -> list[Figure]:
    """One figure per method (value: recall@10 overall); the full table is printed."""
    path = Path(os.environ.get("TZUROT_BENCH_LOCOMO", str(SAMPLE)))
    report = asyncio.run(evaluate(path))
    print(f"Memory retrieval quality ({path.name}):\n{table(report)}", flush=True)
    figures = []
    for method, by_category in report.items():
        overall = by_category["all"]
        figures.append(
            Figure(
                name=f"memory recall@10, {method}",
                unit="",
                samples=int(overall["questions"]),
                p50=overall["recall@10"],
                p99=overall["recall@10"],
                mean=overall["recall@10"],
                extra={
                    "recall@5": overall["recall@5"],
                    "mrr": overall["mrr"],
                    "file": path.name,
                }
                | {
                    f"{split} recall@10": by_category[split]["recall@10"]
                    for split in ("dev", "held_out")
                    if split in by_category
                },
            )
        )
    return figures


async def evaluate(
    path: Path = SAMPLE, embedder: Embedder | None = None
) -> dict[str, dict[str, dict[str, float]]]:
    """{method: {category | "all": {metric: mean}}}; memory's default local embedder
    unless `embedder` is given (bench/embedders.py compares them)."""
    data = json.loads(await asyncio.to_thread(path.read_text))
    embedder = embedder or OnnxMiniLMEmbedder()
    totals: dict[str, dict[str, list[dict[str, float]]]] = defaultdict(lambda: defaultdict(list))
    with (
        tempfile.TemporaryDirectory(prefix="tzbench-", dir="/tmp") as tmp,
        local_postgres(Path(tmp) / "pg", delete_on_exit=True) as server_url,
    ):
        url = create_database(server_url, f"bench_{uuid.uuid4().hex[:8]}")
        upgrade(SCRIPT_LOCATION, url, SCHEMA)
        engine = create_engine(url)
        try:
            memory = LongTermMemory(PostgresMemoryStore(engine), embedder)
            for sample in data:
                persona = f"conv-{sample['sample_id']}"[:100]
                for turn in turns(sample["conversation"]):
                    await memory.add(
                        persona,
                        USER,
                        f"{turn['speaker']}: {turn['text']}",
                        source_turn_ids=[turn["dia_id"]],
                    )
                for qa in sample["qa"]:
                    evidence = set(qa.get("evidence") or [])
                    if not evidence:
                        continue
                    # As a reply asks: the question read as its asker's turn (speaker A).
                    search = memory_search(persona, USER, qa["question"])
                    asker = sample["conversation"].get("speaker_a", "")
                    vector = await memory.embed_query(search, asker)
                    ranked: dict[str, list[str]] = {}
                    for method, weights in METHODS.items():
                        memory.tuning = replace(Tuning(), weights=weights)
                        found = await memory.rank(persona, [USER], qa["question"], vector, Window())
                        ranked[method] = dia_ids(found)
                    ranked["rrf(vector,keyword)"] = rrf(ranked["vector"], ranked["keyword"])
                    category = str(qa.get("category", "?"))
                    split = str(sample.get("split", "dev"))
                    for method, ranking in ranked.items():
                        scores = metrics(ranking, evidence)
                        for row in (category, split, "all"):
                            totals[method][row].append(scores)
        finally:
            await engine.dispose()
    return {
        method: {
            category: {name: round(sum(s[name] for s in rows) / len(rows), 3) for name in rows[0]}
            | {"questions": len(rows)}
            for category, rows in sorted(by_category.items(), key=lambda item: _row_order(item[0]))
        }
        for method, by_category in totals.items()
    }


def _row_order(row: str) -> tuple[int, str]:
    return ({"dev": 1, "held_out": 2, "all": 3}.get(row, 0), row)


def table(report: dict[str, dict[str, dict[str, float]]]) -> str:
    lines = [f"{'method':<22}{'row':>9}{'n':>5}{'R@5':>8}{'R@10':>8}{'MRR':>8}"]
    for method, by_category in report.items():
        for category, row in by_category.items():
            lines.append(
                f"{method:<22}{category:>9}{int(row['questions']):>5}"
                f"{row['recall@5']:>8.3f}{row['recall@10']:>8.3f}{row['mrr']:>8.3f}"
            )
    return "\n".join(lines)
