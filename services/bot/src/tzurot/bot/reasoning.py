"""The model's reasoning shown with an answer (the user's show_reasoning setting): a spoiler
in a message of its own under the answer. It comes with the end of the answer
(GenerationFinished.reasoning), after the answer streamed, so it cannot come first. It is part
of the answer's messages (a 🔄 or a delete takes it too), never of its text: history keeps the
gateway's content.

A spoiler is `||text||`: Discord ends it at the first `||` after its start, whatever lies
between (code blocks included). So every `|` of the reasoning is followed by a zero-width space
(as discord.py's escape_mentions breaks a mention): no two of its pipes meet, nor does its
last one meet the closing `||`. A message holds 2000 characters: a longer reasoning is cut,
with a code block it cuts open closed, and says so.

Its message is noted with the answer's preview (`post_reasoning`'s `preview`): a bot that dies
before confirming the answer leaves it to its successor, which tells it from the answer's
text (`shows_reasoning`): kept with an answer handed over whole, deleted with one withheld or
cut off (tzurot.bot.unfinished). Nor is its text ever context: a reply to it addresses the
answer's personality, but the reasoning stays out of the prompt (tzurot.bot.references).

It is told apart by its header's `REASONING_MARK`, an invisible word joiner right after
"Reasoning", not by its layout alone: a model may write the same layout into its answer. No
answer's message carries the mark: every text the bot streams as an answer has it taken out
first (`unmarked`, in tzurot.bot.posting). A reasoning posted before the mark (by a bot of
before) is told by its layout, its header without the mark, only when one of our webhooks
posted it before the mark was released (`shows_our_reasoning`, by its snowflake's time): a
reply to it keeps it out of the prompt, and a hand-over keeps it as the answer's reasoning
(taken for the answer's text, it would be deleted as a surplus piece, or edited into one).
"""

from __future__ import annotations

import re
from datetime import UTC, datetime

import aiohttp
import discord
import structlog

from tzurot.bot.answers import Answer, AnswerBook
from tzurot.bot.previews import PreviewNotes
from tzurot.bot.splitting import DISCORD_LIMIT
from tzurot.bot.webhooks import WebhookPool

log = structlog.get_logger(__name__)

REASONING_MARK = "\u2060"
"""WORD JOINER, invisible: after "Reasoning" in `REASONING_HEADER`, never in an answer's text."""
LEGACY_HEADER = "-# 💭 Reasoning"
"""The header of a reasoning a bot of before posted, without the mark."""
REASONING_HEADER = f"{LEGACY_HEADER}{REASONING_MARK}"
MARK_RELEASED = datetime(2026, 12, 7, 4, 0, tzinfo=UTC)
"""When the bots posting the mark were released: one of our messages laid out as a
reasoning without it, posted before, is a reasoning of a bot of before (`shows_our_reasoning`).

A fixed moment, not each deployment's, and chosen to err on the mild side. Only a message one
of our own webhooks posted is ever read by it (`references.is_reasoning` asks `ours`; a
hand-over reads only previews the channel's webhook of ours serves), and only one whose whole
content is the unmarked header line and one spoiler. Bots without the mark posted that layout
from 714e1a2 (2026-12-06 23:49 UTC) to 5b0fb54 (2026-12-07 03:08 UTC), the first to post the
mark. So the harmful error, an answer's own text taken for a reasoning (left out of the
prompt, or of a hand-over, which then leaves the rest unposted), needs a model writing that
exact layout as a whole message, posted by a marking bot in the 52 minutes between 03:08 and
this moment; from it on, that layout is always text, so no answer's text can be lost so. The
other error is the mild one: a bot without the mark still running after it (a deployment
updated late, a self-hosted one) posts reasoning read as text (a reply quotes it into the
prompt; a hand-over edits or deletes it as a piece of the answer). It is a constant, not a
setting: the functions using it take no settings, and its window closed hours after the
release."""
_MARKED = re.compile(f"Reasoning{REASONING_MARK}+")
CUT_MARK = " (cut)"
"""After the spoiler of a reasoning too long for one message (which ends in "…")."""
_ZWSP = "\u200b"
_FENCE = "```"
_FENCE_CLOSE = "\n```"


def reasoning_message(reasoning: str, limit: int = DISCORD_LIMIT) -> str:
    """The reasoning as one message: a small header, then the reasoning as a spoiler ("" for
    none). One too long for `limit` is cut: it ends in "…", and `CUT_MARK` follows."""
    body = _spoiler_safe(reasoning.strip())
    if not body:
        return ""
    whole = f"{REASONING_HEADER}\n||{body}||"
    if len(whole) <= limit:
        return whole
    room = limit - len(f"{REASONING_HEADER}\n||…{_FENCE_CLOSE}||{CUT_MARK}")
    kept = body[:room].rstrip() + "…"
    if kept.count(_FENCE) % 2:
        kept += _FENCE_CLOSE
    return f"{REASONING_HEADER}\n||{kept}||{CUT_MARK}"


def shows_reasoning(content: str) -> bool:
    """Whether a message's `content` is laid out as `reasoning_message` lays a reasoning out:
    the header line, its `REASONING_MARK` included, then one spoiler (and `CUT_MARK` after a
    cut one)."""
    head = f"{REASONING_HEADER}\n||"
    return content.startswith(head) and (
        content.endswith("||") or content.endswith(f"||{CUT_MARK}")
    )


def shows_our_reasoning(content: str, message_id: int) -> bool:
    """Whether a message one of our webhooks posted (`message_id`; the caller knows it is
    ours) shows a reasoning: laid out as `shows_reasoning` says, or, posted before the mark
    was (`MARK_RELEASED`, by its snowflake's time), as a bot of before laid one out, the
    same header without the mark. So a reply to such a reasoning keeps it out of the prompt,
    and a hand-over keeps it as the answer's reasoning, not as a piece of its text."""
    if shows_reasoning(content):
        return True
    head = f"{LEGACY_HEADER}\n||"
    return (
        content.startswith(head)
        and (content.endswith("||") or content.endswith(f"||{CUT_MARK}"))
        and discord.utils.snowflake_time(message_id) < MARK_RELEASED
    )


def unmarked(text: str) -> str:
    """`text` with `REASONING_MARK` taken out wherever it follows "Reasoning" (every one of
    a run of them): it can show no reasoning's header, so no message of it is taken for one."""
    return _MARKED.sub("Reasoning", text)


def _spoiler_safe(text: str) -> str:
    """`text` with nothing in it that could end (or open) a spoiler: a zero-width space after
    every `|`, and after a trailing backslash (it must not escape the closing pipe)."""
    safe = text.replace("|", f"|{_ZWSP}")
    return safe + _ZWSP if safe.endswith("\\") else safe


async def post_reasoning(
    webhooks: WebhookPool,
    answers: AnswerBook,
    channel: discord.abc.Messageable,
    answer: Answer,
    reasoning: str,
    *,
    preview: PreviewNotes | None = None,
) -> list[int]:
    """Posts the reasoning under the answer, as its personality; the id posted, none without
    reasoning. What Discord refuses, or Discord out of reach, is logged: the answer is
    delivered already. `preview`: the answer's preview notes, the message noted with them."""
    text = reasoning_message(reasoning)
    if not text:
        return []
    try:
        sent = await webhooks.send(
            channel,
            text,
            username=answer.shown.display_name,
            avatar_url=answer.shown.avatar_url or None,
            mentions=discord.AllowedMentions.none(),  # what it names pings nobody
            suppress_embeds=True,  # a preview would show a link the spoiler hides
        )
    except discord.HTTPException as exc:
        log.info("bot.reasoning_refused", status=exc.status, code=exc.code)
        return []
    except (aiohttp.ClientError, TimeoutError) as exc:
        log.warning("bot.discord_unreachable", error=type(exc).__name__)
        return []
    answers.remember(sent.id, answer)  # part of the answer, for replies and reactions
    if preview is not None:  # a restarted bot keeps it with the answer, or deletes it
        preview.shown(answer.job_id, sent.id)
    return [sent.id]
