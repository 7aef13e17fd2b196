"""Plain text for command answers (pure functions, unit-tested)."""

from __future__ import annotations

import json
from collections.abc import Sequence
from datetime import datetime
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError, available_timezones

from google.protobuf import json_format
from google.protobuf.timestamp_pb2 import Timestamp

from tzurot.bot.commands.words import plural
from tzurot.v1 import common_pb2 as common
from tzurot.v1 import gateway_pb2 as gw

SOURCES = {
    common.CONFIG_SOURCE_HARDCODED: "built-in default",
    common.CONFIG_SOURCE_GLOBAL: "global default",
    common.CONFIG_SOURCE_PERSONALITY: "the personality's default",
    common.CONFIG_SOURCE_CHANNEL: "this channel",
    common.CONFIG_SOURCE_USER: "your default",
    common.CONFIG_SOURCE_USER_PERSONALITY: "your choice for this personality",
}
PERIODS = {
    "day": gw.USAGE_PERIOD_DAY,
    "week": gw.USAGE_PERIOD_WEEK,
    "month": gw.USAGE_PERIOD_MONTH,
}


def llm_configs(configs: list[common.LlmConfig]) -> str:
    if not configs:
        return "No LLM configs yet. Create one with `/llm-config create`."
    lines = ["LLM configs:"]
    for c in configs:
        scope = "global" if not c.owner_user_id else "yours"
        free = ", free" if c.free_use else ""
        lines.append(f"- **{c.name}** `{c.provider}/{c.model}` ({scope}{free}) id `{c.id}`")
    return "\n".join(lines)


def effective(personality: str, resolved: common.ResolvedLlmConfig) -> str:
    c = resolved.config
    source = SOURCES.get(resolved.source, "unknown")
    model = f"`{c.provider}/{c.model}`"
    return f"**{personality}** now uses **{c.name or c.model}** ({model}), from {source}."


def model_levels(personality: str, reply: gw.GetEffectiveConfigResponse) -> str:
    """`/model show`: the model that answers and the level it comes from, then every level
    that holds one, the winner first."""
    c = reply.effective.config
    lines = [
        f"**{personality}** answers you here with **{c.name or c.model}** "
        f"(`{c.provider}/{c.model}`), from {SOURCES.get(reply.effective.source, 'unknown')}."
    ]
    for n, level in enumerate(reply.levels):
        mark = "✅" if n == 0 else "▫️"
        lines.append(
            f"{mark} {SOURCES.get(level.source, 'unknown')}: **{level.config.name}** "
            f"(`{level.config.provider}/{level.config.model}`)"
        )
    return "\n".join(lines)


def usage(reply: gw.GetUsageResponse, period: str) -> str:
    """`/usage`: one line per provider, model and kind of request, in what it is billed by
    (speech in characters, everything else in tokens), with the requests paid for but not
    delivered whole (a speech whose audio broke off) when there were any."""
    if not reply.totals:
        return f"No usage in the last {period}."
    lines = [f"Your usage in the last {period}:"]
    total_in = total_out = total_characters = 0
    for t in reply.totals:
        total_in += t.input_tokens
        total_out += t.output_tokens
        total_characters += t.characters
        kind = "" if t.request_type in ("", "chat") else f" ({t.request_type.replace('_', ' ')})"
        billed = (
            plural(t.characters, "character", sep=",")
            if t.request_type == "speech"
            else f"{t.input_tokens:,} in / {t.output_tokens:,} out tokens"
        )
        lines.append(
            f"- `{t.provider}/{t.model}`{kind}: {plural(t.requests, 'request')}, {billed}"
            + (f", {plural(t.images, 'image')}" if t.images else "")
            + (f", {t.audio_seconds:,.0f} s of audio" if t.audio_seconds else "")
            + (f", {t.failed_requests} paid but not delivered" if t.failed_requests else "")
            + (f" ({t.estimated_requests} estimated)" if t.estimated_requests else "")
        )
    lines.append(
        f"Total: {total_in:,} in / {total_out:,} out tokens"
        + (
            f", {plural(total_characters, 'character', sep=',')} of speech"
            if total_characters
            else ""
        )
    )
    return "\n".join(lines)


def data_export(part: int, parts: int) -> str:
    """What comes with an archive of `/settings data export`: which part it is, and how to
    get the next (a gateway older than parts says 0 of 0: one archive)."""
    if parts <= 1:
        return "Your data:"
    holds = (
        "everything but the audio, images and CHARX cards it had no room for"
        if part == 1
        else "more of the audio, images and CHARX cards part 1 had no room for"
    )
    following = (
        f"Get the next with `/settings data export part:{part + 1}`."
        if part < parts
        else "That is the last part."
    )
    return f"Your data, part {part} of {parts}: {holds}. {following}"


def timezone_names(current: str, limit: int = 25) -> list[str]:
    """IANA zones matching what was typed (Discord shows at most 25)."""
    typed = current.casefold().replace(" ", "_")
    zones = sorted(z for z in available_timezones() if "/" in z or z == "UTC")
    starts = [z for z in zones if z.casefold().startswith(typed)]
    contains = [z for z in zones if typed in z.casefold() and z not in starts]
    return (starts + contains)[:limit]


def check_timezone(name: str) -> str | None:
    """None when `name` is a known IANA zone, else a message saying so."""
    try:
        ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        return f"`{name}` is not an IANA time zone (for example `Europe/Berlin`)."
    return None


def timezone(user: gw.User) -> str:
    if not user.timezone:
        return "You have not set a time zone (UTC is used). Set one with `/timezone set`."
    now = datetime.now(ZoneInfo(user.timezone)).strftime("%H:%M")
    return f"Your time zone is **{user.timezone}** (it is {now} there)."


def persona(reply: gw.GetPersonaResponse) -> str:
    p = reply.persona
    if not (p.name or p.preferred_name or p.pronouns or p.description):
        return "You have no persona. Set one with `/persona set`."
    kind = "Override for this personality" if reply.is_override else "Your persona"
    parts = [f"{kind}: **{p.preferred_name or p.name or '(no name)'}**"]
    if p.pronouns:
        parts.append(f"Pronouns: {p.pronouns}")
    if p.description:
        parts.append(p.description)
    return "\n".join(parts)


def memory_stats(reply: gw.GetMemoryStatsResponse, personality: str) -> str:
    if not reply.total:
        text = f"{personality} has no memories of you yet."
    else:
        sectors = ", ".join(
            f"{common.MemorySector.Name(s.sector).removeprefix('MEMORY_SECTOR_').lower()}: "
            f"{s.count}"
            for s in reply.sectors
        )
        text = f"{personality} has {plural(reply.total, 'memory', 'memories')} of you ({sectors})."
    if reply.HasField("incognito_until"):
        text += f"\nIncognito until {discord_time(reply.incognito_until)}: nothing is remembered."
    if reply.HasField("fresh_since"):
        text += f"\nFresh since {discord_time(reply.fresh_since)}: older memories are not used."
    return text


def discord_time(stamp: Timestamp) -> str:
    """A timestamp Discord shows in the reader's own time zone."""
    return f"<t:{stamp.seconds}:f>"


def memories(reply: gw.SearchMemoriesResponse) -> str:
    if not reply.memories:
        return "No memories match."
    return "\n".join(f"- {m.text[:180]}" for m in reply.memories)[:1900]


def memory_page(reply: gw.BrowseMemoriesResponse, personality: str) -> str:
    """One page of `/memory browse`: newest first, each with its date and short id."""
    if not reply.total:
        return f"{personality} has no memories of you yet."
    first = (reply.page - 1) * reply.page_size
    lines = [
        f"{personality}'s memories of you, newest first "
        f"(page {reply.page} of {reply.pages}, {reply.total} in all):"
    ]
    for n, m in enumerate(reply.memories, start=first + 1):
        text = " ".join(m.text.split())
        text = text if len(text) <= 150 else text[:149] + "…"
        lines.append(f"{n}. <t:{m.created_at.seconds}:d> {text} · `{m.id[:8]}`")
    if reply.page < reply.pages:
        lines.append(f"Older: `/memory browse personality:{personality} page:{reply.page + 1}`")
    lines.append("Delete one with `/memory delete`.")
    return "\n".join(lines)[:1900]


def character(p: common.Personality) -> str:
    lines = [f"**{p.display_name}** (`{p.slug}`)"]
    if p.aliases:
        lines.append("Aliases: " + ", ".join(p.aliases))
    if p.character.description:
        lines.append(p.character.description[:800])
    if p.character.author_note:
        depth = p.character.author_note_depth or 3
        lines.append(f"Author's note ({depth} from the bottom): {p.character.author_note[:300]}")
    if p.cleanup_rules:
        lines.append(
            f"Cleanup rules: {len(p.cleanup_rules)} ("
            + ", ".join(f"`{r.pattern[:40]}`" for r in p.cleanup_rules[:5])
            + ")"
        )
    visibility = "public" if p.public else "private"
    lines.append(f"{visibility}{', NSFW' if p.nsfw else ''}")
    return "\n".join(lines)


def character_list(personalities: list[common.Personality]) -> str:
    if not personalities:
        return "No personalities to show."
    return "\n".join(
        f"- **{p.display_name}**" + (f" ({', '.join(p.aliases)})" if p.aliases else "")
        for p in personalities[:50]
    )


def character_json(p: common.Personality) -> bytes:
    """A personality as an exportable JSON document (no ids or timestamps)."""
    data = json_format.MessageToDict(p, preserving_proto_field_name=True)
    for key in ("id", "owner_user_id", "created_at", "updated_at", "default_llm_config_id"):
        data.pop(key, None)
    return json.dumps(data, indent=2, ensure_ascii=False).encode()


def inspect(job: gw.Job, resolved: common.ResolvedLlmConfig | None) -> str:
    lines = [f"Job `{job.id}`: {common.JobStatus.Name(job.status).removeprefix('JOB_STATUS_')}"]
    if job.usage.model:
        lines.append(
            f"Model `{job.usage.provider}/{job.usage.model}`: "
            f"{job.usage.input_tokens} in / {job.usage.output_tokens} out tokens"
        )
    if resolved is not None and resolved.config.model:
        source = SOURCES.get(resolved.source, "unknown")
        lines.append(f"Config **{resolved.config.name or resolved.config.model}** from {source}")
    if job.attempts > 1:
        lines.append(f"Attempts: {job.attempts}")
    return "\n".join(lines)


def one_line(text: str, width: int) -> str:
    """The text's first line, cut to `width` characters (… when cut)."""
    line = " ".join(text.split("\n", 1)[0].split())
    more = len(line) > width or "\n" in text.strip()
    return (line[: width - 1] + "…") if len(line) > width else (line + ("…" if more else ""))


_INSPECT_CHARS = 1500  # of Discord's 2000, leaving room for the job's lines above


def skill_steps(steps: Sequence[common.SkillStep]) -> list[str]:
    """Each skill call: round, skill, arguments, a short result, time taken."""
    if not steps:
        return []
    lines = [f"Skills ({len(steps)}):"]
    for step in steps[:12]:
        mark = "✓" if step.ok else "✗"
        seconds = step.duration_ms / 1000
        lines.append(
            f"{step.step}. {mark} `{step.skill}` {step.arguments[:120]} → "
            f"{step.summary[:160]} ({seconds:.1f} s)"
        )
    return lines


def inspection(info: gw.JobInspection, references: Sequence[common.ReferencedMessage]) -> str:
    """What informed an answer: history, memories, the references the prompt kept, reasoning."""
    key = {"user": "your key", "system": "the operator's key"}.get(info.key_source)
    lines = [
        f"Prompt: ~{plural(info.prompt_tokens_estimate, 'token')}, "
        f"{plural(info.history_turns, 'history turn')}" + (f", paid with {key}" if key else "")
    ]
    if "memory_unavailable" in info.degraded:
        lines.append("⚠️ Long-term memory was unavailable: this answer was made without it.")
    if "history_unavailable" in info.degraded:
        lines.append("⚠️ The conversation's history was unavailable: this answer did not see it.")
    if "lore_regex_budget_spent" in info.degraded:
        lines.append(
            "⚠️ A lorebook's regex keys took too long: some entries were not checked for this "
            "answer (plain keys were)."
        )
    if info.memories:
        lines.append(f"Memories ({len(info.memories)}):")
        lines += [f"- {one_line(m.text, 100)}" for m in info.memories[:5]]
    elif info.memory_ids:
        lines.append(f"Memories: {len(info.memory_ids)}")
    else:
        lines.append("Memories: none")
    used = set(info.referenced_message_ids)
    kept = [r for r in references if r.message_id in used]
    if kept:
        lines.append(f"References ({len(kept)}):")
        lines += [f"- {r.author_name}: {r.content[:80]}" for r in kept[:10]]
    elif info.referenced_message_ids:
        lines.append(f"References: {len(info.referenced_message_ids)}")
    lines += lore_lines(info.lore)
    lines += skill_steps(info.skill_steps)
    text = "\n".join(lines)
    if info.reasoning:
        # A spoiler, cut to fit one message with what precedes it (the closing bars must stay).
        room = max(0, _INSPECT_CHARS - len(text))
        text += f"\nReasoning: ||{info.reasoning[:room]}||"
    return text


def lore_lines(lore: Sequence[common.LoreActivation]) -> list[str]:
    """Which lorebook entries fired and why (and those the budget left out)."""
    if not lore:
        return []
    fired = [a for a in lore if not a.dropped]
    dropped = [a for a in lore if a.dropped]
    lines = [f"Lore ({len(fired)} fired):"]
    lines += [f"- {a.lorebook_name} / {a.entry_label}: {a.reason}"[:160] for a in fired[:8]]
    if dropped:
        names = ", ".join(a.entry_label for a in dropped[:5])
        lines.append(f"Left out by the budget: {names}"[:200])
    return lines


def lorebooks(books: Sequence[common.Lorebook]) -> str:
    if not books:
        return "No lorebooks here. `/lorebook import` a SillyTavern world info file to add one."
    scope = {
        common.LORE_SCOPE_PERSONALITY: "personality",
        common.LORE_SCOPE_CHANNEL: "channel",
        common.LORE_SCOPE_GLOBAL: "global",
    }
    lines = []
    for book in books[:20]:
        where = ", ".join(f"{scope.get(a.scope, '?')} {a.target}".strip() for a in book.attachments)
        lines.append(
            f"**{book.name}** ({plural(book.entry_count, 'entry', 'entries')}) `{book.id}`"
            + (f": attached to {where}" if where else ": not attached")
        )
    return "\n".join(lines)
