"""A job's context, kept on its row beside the answer (columns of migration 0003).

ConfirmDelivery stores the user's turn as the prompt saw it (a voice message's transcript,
image descriptions) rather than the raw request; Inspect shows the PromptReport and, only
when the user's own keep_reasoning setting is on, the reasoning.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict, replace
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncEngine

from tzurot.db.engine import autocommit
from tzurot.gateway import tables as t
from tzurot.gateway.domain import (
    Attachment,
    JobContext,
    MemoryNote,
    PromptReport,
    ReplyFinished,
    SkillStep,
)
from tzurot.gateway.lore import LoreActivation


def context_columns(finished: ReplyFinished, *, keep_reasoning: bool) -> dict[str, Any]:
    """The job row's context columns for a finished reply (finish_job writes them).

    The attachments are kept without their descriptions when user_content carries them
    already, or history would show each description twice.
    """
    attachments = finished.attachments
    if finished.user_content:
        attachments = tuple(replace(a, description="") for a in attachments)
    return {
        "user_content": finished.user_content or None,
        "user_attachments": [asdict(a) for a in attachments] or None,
        "prompt_report": asdict(finished.report) if finished.report is not None else None,
        "reasoning": (finished.reasoning or None) if keep_reasoning else None,
    }


SKILL_NOTE_TYPE = "application/vnd.tzurot.skills"
MAX_NOTE_CHARS = 4000


def skill_notes(report: PromptReport | None) -> tuple[Attachment, ...]:
    """What history keeps of the answer's skill calls: one note listing the calls that are
    not stealth (skill, arguments, short result). A stealth skill leaves nothing."""
    if report is None:
        return ()
    lines = [
        f"{step.skill}({step.arguments}) -> {step.summary}"
        for step in report.skill_steps
        if not step.stealth
    ]
    if not lines:
        return ()
    note = "\n".join(lines)[:MAX_NOTE_CHARS]
    return (Attachment(url="", content_type=SKILL_NOTE_TYPE, filename="skills", description=note),)


_CONTEXT = sa.select(
    t.jobs.c.user_content, t.jobs.c.user_attachments, t.jobs.c.prompt_report, t.jobs.c.reasoning
).where(t.jobs.c.id == sa.bindparam("job_id", type_=t.jobs.c.id.type))


async def load_context(engine: AsyncEngine, job_id: str) -> JobContext:
    async with autocommit(engine).connect() as conn:  # one statement: no BEGIN/ROLLBACK
        row = (await conn.execute(_CONTEXT, {"job_id": job_id})).mappings().one_or_none()
    if row is None:
        return JobContext()
    return context_from_row(row)


def context_from_row(row: Mapping[Any, Any]) -> JobContext:
    """The context columns of a job row (any select of them, or of the whole row)."""
    report = row["prompt_report"]
    return JobContext(
        user_content=row["user_content"],
        attachments=tuple(Attachment(**a) for a in row["user_attachments"] or ()),
        report=_report(report) if report is not None else None,
        reasoning=row["reasoning"] or "",
    )


def _report(data: dict[str, Any]) -> PromptReport:
    return PromptReport(
        skill_steps=tuple(SkillStep(**step) for step in data.get("skill_steps", ())),
        prompt_tokens_estimate=int(data.get("prompt_tokens_estimate", 0)),
        history_turns=int(data.get("history_turns", 0)),
        memory_ids=tuple(data.get("memory_ids", ())),
        referenced_message_ids=tuple(data.get("referenced_message_ids", ())),
        key_source=str(data.get("key_source", "")),
        lore=tuple(LoreActivation(**item) for item in data.get("lore", ())),
        memories=tuple(
            MemoryNote(id=str(m.get("id", "")), text=str(m.get("text", "")))
            for m in data.get("memories", ())
        ),
        degraded=tuple(str(r) for r in data.get("degraded", ())),
    )
