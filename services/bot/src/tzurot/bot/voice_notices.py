"""Why an answer's voice message did not come: the line the bot posts under the text.

An answer spoken by itself (the personality speaks always or sometimes, or the user chose
`/voice enable`) is made once the text is delivered, in the background. When the speech fails
the user would wait for a voice message that never comes, so the reason is told in the bot's
own words, from the error's reason and metadata (the provider, the permission a restricted key
lacks): never the vendor's text, never the key.

An answer spoken in a stand-in voice (the personality's is a clone in its cloner's ElevenLabs
account, which no other account's key may use) is told once why it does not sound like the
personality (`stand_in_notice`), without asking anyone to clone it; but the user who cloned it,
whose own clone is gone from her ElevenLabs account (deleted there), is told so and how to
clone it again (`own_clone_missing_notice`).
"""

from __future__ import annotations

import discord
import grpc

from tzurot.runtime.errors import TzurotError

VENDOR_NAMES = {"elevenlabs": "ElevenLabs", "openai": "OpenAI"}
TRY_AGAIN = "use **Speak** in the answer's Apps menu to try again"
NOTHING_TO_SAY = "NOTHING_TO_SAY"
"""An answer with nothing to speak (the gateway's refusal): no voice message was to come."""
_TOLD_AS_IS = frozenset(
    {
        grpc.StatusCode.FAILED_PRECONDITION,
        grpc.StatusCode.NOT_FOUND,
        grpc.StatusCode.INVALID_ARGUMENT,
        grpc.StatusCode.PERMISSION_DENIED,
    }
)


def no_voice_notice(err: TzurotError, user_id: str = "") -> str | None:
    """The line for the user whose answer's speech failed with `err` (a Discord user id is
    shown as a mention, which the caller posts without pinging), or None when there is
    nothing to tell."""
    why = _why(err)
    if why is None:
        return None
    return notice(why, user_id)


def stand_in_notice(personality: str, user_id: str = "") -> str:
    """Why an answer was spoken in a stock ElevenLabs voice, for the user whose key paid."""
    who = f" for <@{user_id}>" if user_id.isdigit() else ""
    name = discord.utils.escape_mentions(personality.strip()) or "this personality"
    return f"-# Spoken{who} in a stock ElevenLabs voice: {STAND_IN_WHY.format(name=name)}"


STAND_IN_WHY = (
    "{name}'s voice is a clone in the ElevenLabs account of whoever cloned it, and ElevenLabs "
    "lets only that account's keys speak with it."
)
"""Why the stand-in spoke, for any listener but the cloner; nothing for them to do."""


def own_clone_missing_notice(personality: str, slug: str = "", user_id: str = "") -> str:
    """Why an answer was spoken in a stock ElevenLabs voice, for the user who cloned the
    personality's voice: her clone is no longer in her ElevenLabs account."""
    who = f" for <@{user_id}>" if user_id.isdigit() else ""
    name = discord.utils.escape_mentions(personality.strip()) or "this personality"
    return f"-# Spoken{who} in a stock ElevenLabs voice: {own_clone_missing_why(name, slug)}"


def own_clone_missing_why(name: str, slug: str = "") -> str:
    """The sentence of `own_clone_missing_notice` (also Speak's), `name` already escaped."""
    target = f" personality:{slug}" if slug and slug.replace("-", "").isalnum() else ""
    return (
        f"{name}'s voice is a clone you made, and it is no longer in your ElevenLabs account "
        f"(deleted there). Clone it again with `/personality voice clone{target}`: its "
        "samples are kept."
    )


def notice(why: str, user_id: str = "") -> str:
    who = f" for <@{user_id}>" if user_id.isdigit() else ""
    return f"-# No voice message{who}: {why}"


def _why(err: TzurotError) -> str | None:  # noqa: PLR0911  # one early return per reason reads best
    provider = err.metadata.get("provider", "")
    name = provider or "the voice provider"
    vendor = VENDOR_NAMES.get(provider, name)
    wallet = f"`/wallet set {provider}`" if provider else "`/wallet set`"
    if err.reason == NOTHING_TO_SAY:
        return None
    if err.reason == "INVALID_API_KEY":
        if err.metadata.get("key_source", "user") != "user":
            return f"{name} refused the key of this bot's operator; tell them."
        return f"{name} rejected your API key; store a new one with {wallet}."
    if err.reason == "KEY_MISSING_PERMISSION":
        permission = err.metadata.get("permission", "")
        lacks = f"the `{permission}` permission" if permission else "a permission speech needs"
        return (
            f"your {name} key lacks {lacks}; allow it for the key in {vendor}, or store "
            f"another key with {wallet}."
        )
    if err.reason == "NO_API_KEY":
        return (
            f"you have no {name} key; add one with {wallet}, or turn voice answers off with "
            "`/voice disable`."
        )
    if err.reason == "PROVIDER_QUOTA_EXCEEDED":
        if provider == "elevenlabs":
            return (
                "your elevenlabs account has no characters left this month; raise its plan "
                f"in ElevenLabs, or store another key with {wallet}."
            )
        return (
            f"your {name} quota or credit is used up; top it up with {vendor}, or store "
            f"another key with {wallet}."
        )
    if err.code is grpc.StatusCode.RESOURCE_EXHAUSTED:
        return f"{name} is rate limiting; {TRY_AGAIN} in a moment."
    if err.code in _TOLD_AS_IS and err.message:
        # The gateway's and inference's own sentences (no voice, voice off here, a voice the
        # key's account does not know): written for users, never a vendor's text.
        said = discord.utils.escape_mentions(err.message)
        return said if said.endswith((".", "!", "?", ")")) else f"{said}."
    return f"it could not be made right now; {TRY_AGAIN}."
