"""What a user reads when an answer cannot be produced: the personality's voice + a reason."""

from __future__ import annotations

import math

import discord
import grpc

from tzurot.bot.commands.words import plural
from tzurot.bot.unfinished import failure_notice
from tzurot.runtime.errors import ResourceExhausted, TzurotError
from tzurot.v1 import common_pb2 as common

DEFAULT_ERROR_MESSAGE = "I couldn't answer that."
# A service of the mesh (not the provider) went away mid-answer and is coming back.
RESTARTING = frozenset({"SERVICE_RESTARTING", "GATEWAY_RESTARTING"})
PERSONALITY_DELETED = "PERSONALITY_DELETED"
USER_DATA_DELETING = "USER_DATA_DELETING"


def reason_text(err: TzurotError) -> str:  # noqa: PLR0911  # one early return per reason reads best
    """A short reason a user can act on; never the provider's raw text."""
    provider = err.metadata.get("provider", "the provider")
    if err.reason == "NO_API_KEY":
        return (
            f"You have no API key for {provider}. Add yours with `/wallet set {provider}` "
            "(it opens a private form)."
        )
    if err.reason == "INVALID_API_KEY":
        return f"Your {provider} key was rejected. Check it with `/wallet test` or replace it."
    if err.reason == "PROVIDER_QUOTA_EXCEEDED":
        return f"Your {provider} quota or credit is used up."
    if isinstance(err, ResourceExhausted) or err.code is grpc.StatusCode.RESOURCE_EXHAUSTED:
        wait = getattr(err, "retry_after_seconds", None)
        if wait:
            return f"Rate limited: try again in {plural(max(1, math.ceil(wait)), 'second')}."
        return "Rate limited: try again in a minute."
    if err.reason in RESTARTING:  # "the gateway is restarting; try again in a moment"
        return err.message[:1].upper() + err.message[1:] + "."
    if err.reason == "PROVIDER_UNAVAILABLE" or err.code is grpc.StatusCode.UNAVAILABLE:
        return "The model provider is not reachable right now; try again shortly."
    if err.code is grpc.StatusCode.DEADLINE_EXCEEDED:
        return "The answer took too long; try again."
    if err.code in {
        grpc.StatusCode.NOT_FOUND,
        grpc.StatusCode.INVALID_ARGUMENT,
        grpc.StatusCode.FAILED_PRECONDITION,  # a content filter, a context too long, ...
    }:
        return err.message
    if err.code is grpc.StatusCode.PERMISSION_DENIED:
        return err.message
    return "Something went wrong on our side."


def restarted(err: TzurotError) -> bool:
    """A service of the mesh went away mid-answer (a rollout stopping the gateway, a service
    that died) and is coming back: the same request, sent again, is answered (the gateway
    takes its job up again: its failure is retryable)."""
    return err.reason in RESTARTING


def personality_gone(err: TzurotError) -> bool:
    """The gateway finds no such personality for this user (any more): deleted while the
    message was on its way, or not theirs to use. Nothing is posted under its name then: a
    personality that does not exist never speaks (`addressing.reply_addressee` stops most
    such messages before they are sent)."""
    return err.code is grpc.StatusCode.NOT_FOUND and err.reason == "PERSONALITY_NOT_FOUND"


def answer_deleted(err: TzurotError, *, accepted: bool) -> bool:
    """The answer under way went with its personality, or with its user's data, deleted
    while it streamed or before its delivery was confirmed (the gateway dropped its job:
    nothing of it is kept). What showed it says so (`deleted_notice`); nothing is posted
    anew as that personality (her private one may be going with her data).

    `accepted`: the gateway had taken the job (JobAccepted). Her data's deletion refusing a
    new message of hers (USER_DATA_DELETING at admission) is no answer under way: it is
    told as any refusal is, in the personality's voice (`error_reply`)."""
    return err.reason == PERSONALITY_DELETED or (accepted and err.reason == USER_DATA_DELETING)


def deleted_notice(err: TzurotError, personality: common.Personality) -> str:
    """What the messages of an answer deleted under way (`answer_deleted`) become: the
    gateway's words, as a restarted bot shows such a half answer (unfinished.failure_notice):
    in no personality's voice when its personality was deleted (its own went with it), or
    when her data is and `personality` is a private one (hers may be going with it); in a
    public personality's voice when her data is, as the refusal of a message of hers reads
    (and as the gateway names it in that half answer's hand-over)."""
    if err.reason == USER_DATA_DELETING and personality.public:
        return failure_notice(personality, err.reason, err.message)
    return failure_notice(common.Personality(), err.reason, err.message)


def error_reply(personality: common.Personality, err: TzurotError) -> str:
    # Written by the personality's owner: its mentions are shown, never pinged or parsed.
    voice = discord.utils.escape_mentions(personality.error_message.strip()) or (
        DEFAULT_ERROR_MESSAGE
    )
    return f"{voice}\n-# {reason_text(err)}"
