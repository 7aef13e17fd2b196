"""What `/personality delete` says: what deleting a personality takes (what the gateway's
DeletePersonality does: its cloned voice leaves the ElevenLabs account it was cloned into,
memory forgets it, then its row goes with everything that hangs on it), and its failures,
telling "nothing was deleted" from "maybe only part of it", which asking again finishes."""

from __future__ import annotations

import grpc

from tzurot.bot.commands.chosen import named, with_slug
from tzurot.bot.commands.common import CONFIRM_WORD, failure_text
from tzurot.runtime.errors import TzurotError
from tzurot.v1 import common_pb2 as common

DESCRIPTION = "Owners: delete a personality with all it remembers, for everyone, for good"
CONFIRM_HELP = f"{CONFIRM_WORD} deletes it for good; anything else only shows what would be lost"
AGAIN = f"`/personality delete` with `confirm: {CONFIRM_WORD}`"

REFUSED = frozenset(
    {
        grpc.StatusCode.INVALID_ARGUMENT,
        grpc.StatusCode.NOT_FOUND,
        grpc.StatusCode.PERMISSION_DENIED,
        grpc.StatusCode.UNIMPLEMENTED,
    }
)
"""The gateway refuses these before it deletes anything (it finds the personality and checks
the actor owns it first); any other failure may come half way."""
UNREACHABLE = frozenset({grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.DEADLINE_EXCEEDED})


def again(p: common.Personality) -> str:
    """The command that deletes exactly `p`: by its slug, confirmed."""
    return with_slug("/personality delete", p, f" and `confirm: {CONFIRM_WORD}`")


def warning_text(p: common.Personality) -> str:
    """The confirmation: what goes (for everyone, not only the one deleting), what stays, and
    how to delete it. Sent when `confirm` is not CONFIRM_WORD."""
    lines = [
        f"**Nothing deleted yet.** Deleting {named(p)} cannot be undone. It takes, for "
        "everyone who talked to it:",
        "- every conversation with it: its history in every channel, yours and everyone "
        "else's, and any answer it is still writing",
        "- everything it remembers: everyone's long-term memories of it, and its shared lore",
        "- its avatar and card pictures, its voice and voice samples, its aliases (and "
        "everyone's own aliases for it)",
        "- a voice cloned for it: deleted from the ElevenLabs account it was cloned into, when "
        "that account's key can (otherwise it stays there)",
        "- its activations in channels, its free will, and anyone's model choice or persona for it",
        "Kept: lorebooks (one that came with its card stays its owner's, unlinked).",
        f"Its owner (or a superuser) deletes it with {again(p)}.",
    ]
    if p.public:
        lines.insert(
            1, "It is **public**: others lose it too, with their conversations and memories."
        )
    return "\n".join(lines)


def deleted_text(p: common.Personality) -> str:
    return (
        f"Deleted {named(p)} for good, with its history, memories, voice, aliases and avatar. "
        "It answers no one now."
    )


def not_deleted_text(err: TzurotError, name: str) -> str:
    """A failure before anything was deleted (finding the personality, or the gateway's
    refusal). A personality the actor may not see is not found, as one that does not exist."""
    if err.code is grpc.StatusCode.PERMISSION_DENIED and err.reason == "NOT_OWNER":
        return f"Nothing deleted: **{name}** is not yours; only its owner or a superuser can."
    if err.code in UNREACHABLE:
        return "Nothing deleted: Tzurot cannot be reached right now; try again in a moment."
    text = failure_text(err)
    return f"Nothing deleted: {text}" + ("" if text.endswith(".") else ".")


def deletion_failed_text(err: TzurotError, p: common.Personality) -> str:
    """DeletePersonality failed: refused (nothing deleted), recorded and left to the gateway
    to finish (DELETION_PENDING, in its words), or maybe half way. The row goes last and
    memory's forgetting can run again, so asking again finishes a deletion the personality
    still shows after (one the gateway hides and finishes by itself is not found, so asking
    again is only ever needed while it shows)."""
    if err.code in REFUSED:
        return not_deleted_text(err, p.display_name or p.slug)
    if err.reason == "CLONE_DELETION_UNAVAILABLE":  # refused before anything was deleted
        return (
            f"Nothing deleted: ElevenLabs could not be reached to delete the voice cloned for "
            f"{named(p)}. Run {AGAIN} again in a moment."
        )
    if err.reason == "CLONE_IN_PROGRESS":  # refused before anything was deleted
        return (
            f"Nothing deleted: a voice is being cloned for {named(p)} right now. Run {AGAIN} "
            "again once it is done: that voice is then deleted too."
        )
    if err.reason == "DELETION_IN_PROGRESS":  # refused: another request is deleting it
        return (
            f"Nothing done by this request: {named(p)} is being deleted by another one right "
            f"now. If it still shows in `/character browse` in a minute, run {AGAIN} again."
        )
    if err.reason == "DELETION_PENDING":  # recorded: the gateway finishes it by itself
        return f"{named(p)} is being deleted. {err.message[:1].upper()}{err.message[1:]}."
    if err.code is grpc.StatusCode.UNAVAILABLE:
        why = "a service Tzurot needs is unavailable right now"
    elif err.code is grpc.StatusCode.DEADLINE_EXCEEDED:
        why = "Tzurot did not answer in time"
    else:
        why = "something went wrong on our side"
    return (
        f"{named(p)} may be only partly deleted: {why}. If it still shows in "
        f"`/character browse`, run {AGAIN} again in a moment to finish deleting it."
    )
