"""LoCoMo (snap-research/locomo) evidence retrieval through the product's own memory path.

Each conversation is one user (speaker_a) talking with one personality (speaker_b). Every
exchange goes through History.store_exchange, dated from its session's date-time, with the
images' captions as attachment descriptions, and the formation worker (Formation.drain)
forms the memories from the outbox, as in production. Each question is then asked the way
inference asks (LongTermMemory.query: its limit of 10 and the default threshold), and the
memories' source turns map back to LoCoMo's dia_ids. The bench asks every question twice
(the second pass must not be worse: retrieval has no side effects) and computes, on the
same turns, plain BM25 (bm25s), MiniLM dense retrieval and their reciprocal-rank fusion.

The data is not committed (its licence is non-commercial). Get it from
https://github.com/snap-research/locomo (`data/locomo10.json`, or the per-conversation files
of the release archive `data/locomo10.zip`) and point `TZUROT_BENCH_LOCOMO_DATA` at the file
or folder; without it the bench says so and returns no figures. The first half of the
conversations (in file order) is the dev split the scoring was tuned on; the second half is
held out.
"""

from __future__ import annotations

import asyncio
import json
import os
import re
import statistics
import tempfile
import time
import uuid
from collections import defaultdict
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import bm25s
import numpy as np
import sqlalchemy as sa
from sqlalchemy import event
from sqlalchemy.ext.asyncio import AsyncEngine

from bench.memory_quality import metrics, rrf
from bench.results import Figure
from tzurot.cli.localdb import create_database, local_postgres
from tzurot.db import direct
from tzurot.db.engine import create_engine
from tzurot.db.migrate import upgrade
from tzurot.memory.domain import Attachment, NewTurn, StoredMemory
from tzurot.memory.embedding import Embedder
from tzurot.memory.formation import Formation
from tzurot.memory.longterm import LongTermMemory, Tuning
from tzurot.memory.memory_store import PostgresMemoryStore
from tzurot.memory.migrations import SCRIPT_LOCATION
from tzurot.memory.minilm_onnx import OnnxMiniLMEmbedder
from tzurot.memory.service import History
from tzurot.memory.store import PostgresTurnStore
from tzurot.memory.tables import SCHEMA

DATA_ENV = "TZUROT_BENCH_LOCOMO_DATA"
ONLY_ENV = "TZUROT_BENCH_LOCOMO_ONLY"
ABLATIONS_ENV = "TZUROT_BENCH_LOCOMO_ABLATIONS"
"""Set to 0 to skip the ablations (each costs one more search per question)."""
"""Comma-separated sample ids (file stems) to run, e.g. "44,47": a sample of a slow machine."""
QUERY_LIMIT = 10
"""What inference asks for (its DEFAULT_MEMORY_LIMIT)."""
CATEGORIES = {1: "multi-hop", 2: "temporal", 3: "open-domain", 4: "single-hop", 5: "adversarial"}
_SESSION = re.compile(r"session_(\d+)$")


@dataclass(frozen=True)
class Conversation:
    sample_id: str
    user: str
    personality: str
    sessions: list[tuple[datetime, list[dict[str, Any]]]]
    questions: list[dict[str, Any]]
    split: str


def load(path: Path) -> list[Conversation]:
    """locomo10.json (a list of samples) or a folder of per-conversation files."""
    if path.is_dir():
        raw = [(p.stem, json.loads(p.read_text())) for p in sorted(path.glob("*.json"))]
    else:
        data = json.loads(path.read_text())
        raw = [(str(s.get("sample_id", i)), s) for i, s in enumerate(data)]
    conversations = []
    for index, (sample_id, sample) in enumerate(raw):
        body = sample.get("conversation", sample)
        sessions = sorted(
            (int(m.group(1)), value)
            for key, value in body.items()
            if (m := _SESSION.match(key)) and isinstance(value, list) and value
        )
        conversations.append(
            Conversation(
                sample_id=sample_id,
                user=body["speaker_a"],
                personality=body["speaker_b"],
                sessions=[(_when(body[f"session_{n}_date_time"]), turns) for n, turns in sessions],
                questions=list(sample.get("qa", [])),
                split="dev" if index < len(raw) / 2 else "held_out",
            )
        )
    return conversations


def _when(text: str) -> datetime:
    """LoCoMo's "1:56 pm on 8 May, 2023" (the bench's clock is UTC)."""
    return datetime.strptime(text.strip(), "%I:%M %p on %d %B, %Y").replace(tzinfo=UTC)


def exchanges(conversation: Conversation) -> Iterator[tuple[datetime, list[dict[str, Any]]]]:
    """Each run of the user's turns with the personality's answer that follows, dated."""
    for started, turns in conversation.sessions:
        current: list[dict[str, Any]] = []
        for turn in turns:
            if (
                current
                and turn["speaker"] == conversation.user
                and _answered(current, conversation)
            ):
                yield started, current
                current = []
            current.append(turn)
        if current:
            yield started, current


def _answered(turns: Sequence[dict[str, Any]], conversation: Conversation) -> bool:
    return bool(turns[-1]["speaker"] == conversation.personality)


def _new_turn(turn: dict[str, Any], conversation: Conversation) -> NewTurn:
    caption = turn.get("blip_caption") or ""
    attachments = (
        # The image is never fetched; its URL in the data can exceed a stored URL's limit.
        (
            Attachment(
                url=f"https://locomo.invalid/{turn['dia_id']}.jpg",
                content_type="image/jpeg",
                description=caption,
            ),
        )
        if caption and turn.get("img_url")
        else ()
    )
    role = "user" if turn["speaker"] == conversation.user else "assistant"
    return NewTurn(role, turn["text"], author_name=turn["speaker"], attachments=attachments)


def _document(turn: dict[str, Any]) -> str:
    caption = turn.get("blip_caption")
    text = f"{turn['speaker']}: {turn['text']}"
    return f"{text} [image: {caption}]" if caption else text


def _dia_ids(found: Sequence[StoredMemory], dia_of: dict[str, str]) -> list[str]:
    seen: list[str] = []
    for memory in found:
        seen += [d for t in memory.source_turn_ids if (d := dia_of.get(t, "")) and d not in seen]
    return seen


class Totals:
    """Per method, per row (category, split, all): the metrics of each question."""

    def __init__(self) -> None:
        self.rows: dict[str, dict[str, list[dict[str, float]]]] = defaultdict(
            lambda: defaultdict(list)
        )

    def add(
        self, method: str, qa: dict[str, Any], split: str, ranking: list[str], sample: str = ""
    ) -> None:
        evidence = set(qa.get("evidence") or [])
        category = int(qa.get("category", 0))
        scores = metrics(ranking, evidence)
        self.rows[method][CATEGORIES.get(category, str(category))].append(scores)
        if category != 5:  # the headline figures are categories 1-4, as the paper's
            for row in (split, "1-4"):
                self.rows[method][row].append(scores)
            if sample and method == "product":  # each conversation's, for the product
                self.rows[method][f"conv {sample}"].append(scores)

    def report(self) -> dict[str, dict[str, dict[str, float]]]:
        return {
            method: {
                row: {name: round(statistics.fmean(s[name] for s in rows), 3) for name in rows[0]}
                | {"questions": len(rows)}
                for row, rows in by_row.items()
            }
            for method, by_row in self.rows.items()
        }


async def evaluate(
    path: Path, embedder: Embedder | None = None
) -> tuple[dict[str, dict[str, dict[str, float]]], dict[str, Any]]:
    conversations = load(path)
    only = {s.strip() for s in os.environ.get(ONLY_ENV, "").split(",") if s.strip()}
    if only:
        conversations = [c for c in conversations if c.sample_id in only]
    embedder = embedder or OnnxMiniLMEmbedder()
    totals = Totals()
    timings: dict[str, Any] = {
        "search_ms": [],
        "search_ms_second_pass": [],
        "statements": 0,
        "searches": 0,
    }
    with (
        tempfile.TemporaryDirectory(prefix="tzbench-", dir="/tmp") as tmp,
        local_postgres(Path(tmp) / "pg", delete_on_exit=True) as server_url,
    ):
        url = create_database(server_url, f"locomo_{uuid.uuid4().hex[:8]}")
        upgrade(SCRIPT_LOCATION, url, SCHEMA)
        engine = create_engine(url)
        counting = {"on": False}

        def _count(*_args: Any) -> None:
            if counting["on"]:
                timings["statements"] += 1

        event.listen(engine.sync_engine, "before_cursor_execute", _count)
        run = direct._run

        async def _counted(
            engine_: AsyncEngine, statement: direct.Statement, params: direct.Params, method: str
        ) -> Any:
            _count()  # tzurot.db.direct fires no engine events
            return await run(engine_, statement, params, method)

        direct._run = _counted  # type: ignore[assignment]
        timings["counting"] = counting
        try:
            memory_store = PostgresMemoryStore(engine)
            turn_store = PostgresTurnStore(engine)
            history = History(turn_store)
            longterm = LongTermMemory(memory_store, embedder)
            formation = Formation(memory_store, longterm)
            stored_exchanges = 0
            forming = 0.0
            for conversation in conversations:
                user_id = f"locomo-user-{conversation.sample_id}"
                personality_id = f"locomo-{conversation.sample_id}"
                dia_of: dict[str, str] = {}
                documents: list[tuple[str, str]] = []
                for n, (started, turns) in enumerate(exchanges(conversation)):
                    stored = await history.store_exchange(
                        f"locomo-{conversation.sample_id}-{n}",
                        f"locomo-channel-{conversation.sample_id}",
                        personality_id,
                        user_id,
                        [_new_turn(turn, conversation) for turn in turns],
                        occurred_at=started + timedelta(seconds=n),
                    )
                    for turn, stored_turn in zip(turns, stored.turns, strict=True):
                        dia_of[stored_turn.id] = turn["dia_id"]
                        documents.append((turn["dia_id"], _document(turn)))
                    stored_exchanges += 1
                started_forming = time.perf_counter()
                await formation.drain()
                forming += time.perf_counter() - started_forming
                # The statistics autovacuum would gather in time, now: both passes of the
                # questions then run the same plans.
                async with engine.connect() as conn:
                    await conn.execute(sa.text("ANALYZE memory.memories"))
                    await conn.commit()
                await _ask(
                    conversation,
                    longterm=longterm,
                    embedder=embedder,
                    personality_id=personality_id,
                    user_id=user_id,
                    dia_of=dia_of,
                    documents=documents,
                    totals=totals,
                    timings=timings,
                )
            timings["exchanges"] = stored_exchanges
            timings["formation_exchanges_per_s"] = round(stored_exchanges / forming, 1)
        finally:
            await engine.dispose()
    return totals.report(), timings


async def _ask(
    conversation: Conversation,
    *,
    longterm: LongTermMemory,
    embedder: Embedder,
    personality_id: str,
    user_id: str,
    dia_of: dict[str, str],
    documents: list[tuple[str, str]],
    totals: Totals,
    timings: dict[str, Any],
) -> None:
    ids = [dia for dia, _text in documents]
    texts = [text for _dia, text in documents]
    retriever = bm25s.BM25()
    retriever.index(bm25s.tokenize(texts, stopwords="en", show_progress=False), show_progress=False)
    vectors = np.asarray(await embedder.embed(texts), dtype=np.float32)
    questions = [qa for qa in conversation.questions if qa.get("evidence")]
    for second_pass in (False, True):
        for qa in questions:
            question = str(qa["question"])
            timings["counting"]["on"] = True
            started = time.perf_counter()
            found = await longterm.query(
                personality_id, user_id, question, limit=QUERY_LIMIT, speaker=conversation.user
            )
            elapsed = (time.perf_counter() - started) * 1000
            timings["counting"]["on"] = False
            timings["searches"] += 1
            timings["search_ms_second_pass" if second_pass else "search_ms"].append(elapsed)
            method = "product (second pass)" if second_pass else "product"
            ranking = _dia_ids(found, dia_of)
            totals.add(method, qa, conversation.split, ranking, conversation.sample_id)
            if second_pass:
                continue
            deployed = longterm.tuning
            wanted = os.environ.get(ABLATIONS_ENV, "1") != "0"
            for name, (tuning, no_threshold) in (ablations(deployed) if wanted else {}).items():
                longterm.tuning = tuning
                try:
                    found = await longterm.query(
                        personality_id,
                        user_id,
                        question,
                        limit=QUERY_LIMIT,
                        no_threshold=no_threshold,
                        speaker=conversation.user,
                    )
                finally:
                    longterm.tuning = deployed
                totals.add(name, qa, conversation.split, _dia_ids(found, dia_of))
            (query_vector,) = await embedder.embed([question])
            dense = [ids[i] for i in np.argsort(-(vectors @ np.asarray(query_vector)))[:100]]
            tokens = bm25s.tokenize([question], stopwords="en", show_progress=False)
            k = min(100, len(ids))
            hits, _scores = retriever.retrieve(tokens, k=k, show_progress=False)
            keyword = [ids[int(i)] for i in hits[0]]
            totals.add("bm25", qa, conversation.split, keyword)
            totals.add("minilm dense", qa, conversation.split, dense)
            totals.add("rrf(bm25, dense)", qa, conversation.split, rrf(keyword, dense))


def ablations(deployed: Tuning) -> dict[str, tuple[Tuning, bool]]:
    """The product's scoring with one component changed: (tuning, no threshold)."""
    weights = deployed.weights
    return {
        "- threshold": (deployed, True),
        "+ waypoints 0.15": (replace(deployed, weights=replace(weights, waypoints=0.15)), False),
        "- bm25 (overlap 0.30)": (
            replace(deployed, weights=replace(weights, keywords=0.30, bm25=0)),
            False,
        ),
        "- keywords and bm25": (
            replace(deployed, weights=replace(weights, keywords=0, bm25=0)),
            False,
        ),
        "- speaker named": (replace(deployed, weights=replace(weights, speaker=0)), False),
        "- when asked and said": (replace(deployed, weights=replace(weights, time=0)), False),
    }


def table(report: dict[str, dict[str, dict[str, float]]]) -> str:
    order = ["1-4", "dev", "held_out", *CATEGORIES.values()]
    lines = [f"{'method':<24}{'row':>13}{'n':>6}{'R@5':>8}{'R@10':>8}{'MRR':>8}"]
    for method, by_row in report.items():
        for row in sorted(by_row, key=lambda r: order.index(r) if r in order else 99):
            values = by_row[row]
            lines.append(
                f"{method:<24}{row:>13}{int(values['questions']):>6}"
                f"{values['recall@5']:>8.3f}{values['recall@10']:>8.3f}{values['mrr']:>8.3f}"
            )
    return "\n".join(lines)


def run(quick: bool) -> list[Figure]:
    given = os.environ.get(DATA_ENV, "")
    if not given or not Path(given).exists():
        print(
            f"LoCoMo: skipped ({DATA_ENV} is not set to locomo10.json or its folder of "
            "conversations; get them from https://github.com/snap-research/locomo)",
            flush=True,
        )
        return []
    report, timings = asyncio.run(evaluate(Path(given)))
    print(f"LoCoMo evidence retrieval ({Path(given).name}):\n{table(report)}", flush=True)
    searches = sorted(timings["search_ms"])
    p95 = searches[min(len(searches) - 1, round(0.95 * len(searches)))]
    load = " / ".join(f"{x:.1f}" for x in os.getloadavg())
    print(
        f"search p50 {statistics.median(searches):.1f} ms, p95 {p95:.1f} ms (query embedding "
        f"included; {timings['statements'] / max(1, timings['searches']):.1f} SQL statements "
        f"per search; load average {load} on {os.cpu_count()} cores); formation "
        f"{timings['formation_exchanges_per_s']} exchanges/s over {timings['exchanges']}",
        flush=True,
    )
    first, second = report.get("product", {}), report.get("product (second pass)", {})
    if first and second:
        worse = [
            name
            for name in ("recall@5", "recall@10", "mrr")
            if second["1-4"][name] < first["1-4"][name]
        ]
        print(
            "second pass (the same questions again): "
            + (f"WORSE in {', '.join(worse)}" if worse else "not worse")
            + f" (R@10 {first['1-4']['recall@10']:.3f} then {second['1-4']['recall@10']:.3f},"
            f" MRR {first['1-4']['mrr']:.3f} then {second['1-4']['mrr']:.3f})",
            flush=True,
        )
    return [
        Figure(
            name=f"LoCoMo recall@10 (1-4), {method}",
            unit="",
            samples=int(rows["1-4"]["questions"]),
            p50=rows["1-4"]["recall@10"],
            p99=rows["1-4"]["recall@10"],
            mean=rows["1-4"]["recall@10"],
            extra={
                "recall@5": rows["1-4"]["recall@5"],
                "mrr": rows["1-4"]["mrr"],
                "held_out recall@10": rows.get("held_out", {}).get("recall@10"),
                "adversarial recall@10": rows.get("adversarial", {}).get("recall@10"),
            },
        )
        for method, rows in report.items()
    ] + [
        Figure(
            name="LoCoMo search (product, incl. query embedding)",
            unit="ms",
            samples=len(searches),
            p50=statistics.median(searches),
            p99=p95,
            mean=statistics.fmean(searches),
            extra={"p95": p95, "formation_exchanges_per_s": timings["formation_exchanges_per_s"]},
        )
    ]
