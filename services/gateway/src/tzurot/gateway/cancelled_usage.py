"""What a reply cancelled mid-answer was billed, as the gateway estimates it.

When the client cancels its Generate (or this gateway stops), the gateway cancels its stream
from inference, and the provider's call with it: the provider bills what it had read and
generated, but inference can send nothing more on a closed stream (no ReplyFinished, no
UsageSpent). So the gateway keeps, as the reply goes, what no report carries yet:

- the prompts of the requests the provider began answering (PromptSent, sent by inference
  at an attempt's first streamed event: each prompt's tokens, estimated with the model's
  tokenizer), usually most of the cost. A request the provider refused (a 401, a 429, a
  5xx) is never announced: nobody billed it; nor one it left silent;
- what the answer's finished rounds were billed (RoundsBilled, after each skill round: the
  provider's own counts), so a cancel while skills run loses no round; inference sends it
  too as it abandons an attempt the provider left silent (timed out before any event: it
  may bill the prompt), with that prompt's estimate in it, so a cancel during the retry
  counts the silent attempt;
- the answer's text it relayed: output tokens at about four characters a token.

A cancel writes their sum as one failed, estimated usage row (Usage.estimated), so `/usage`
shows what was paid: still a floor for the output, as reasoning and a round's held-back text
are never relayed. So too when inference's stream ends in an error it could not report first
(inference restarting, the gateway's deadline, a run that lost its job): its own failures
report their usage before the error, which resets what is kept. A finished round's report
(RoundsBilled) resets the prompts and text before it; a broken-off round's estimate (UsageSpent,
failed) resets those of its round; the failed reply's report of all its rounds
(`UsageSpent.all_rounds`) resets everything. An older inference sends neither PromptSent nor
RoundsBilled: the estimate is then the relayed text's output only.

The helper calls that read a reply's attachments (an image's description, a voice note's
transcription and its clean-up) bill what the provider worked on, and a reply cut while the
provider works (its client cancelled, the gateway's deadline, inference restarting) hears
nothing of them. So inference says, for each attachment, what its calls may bill the moment
a request is handed over whole (HelperCallPending: a description's or clean-up's prompt, a
transcription's audio duration, estimated; a transcription's own count once its transcript
came and while it is cleaned up), each time that changes; the gateway keeps the latest until
the outcome comes (the attachment's AttachmentRead ends the calls of the kinds it carries, a
failed UsageSpent those of its kinds, an error of inference's own all: a refusal billed
nothing) and, for a reply cut before then, writes them with the rest (`pending_calls`:
failed, each under its own request_type, estimated but for a transcription's own count). A
request never sent or never received whole is never said: nothing is billed. An older
inference says only a transcription's estimate (TranscriptionPending), read so too.

A helper RPC (ExtractFacts) is unary: it has no stream for PromptSent, and its error carries
its estimate (UsageSpent) only when inference could send one. So inference announces the
prompt in the call's initial metadata once the provider accepted the request (its 200's
headers: PROMPT_TOKENS_METADATA), which the gateway reads even from a call its deadline cut;
a call cut so, or by inference's own time limit, restart or stop, whose prompt was
announced, is counted as that prompt billed (`cut_helper_call`: failed, estimated). One that
inference ended itself reported what was billed (a failure once sent carries its estimate;
a refusal, nothing).
"""

from __future__ import annotations

import math
from collections.abc import AsyncGenerator, AsyncIterator, Iterable
from contextlib import suppress
from dataclasses import dataclass, field
from typing import TypeGuard

import grpc

from tzurot.gateway.domain import (
    AttachmentRead,
    HelperCallPending,
    PromptSent,
    ReplyEvent,
    RoundsBilled,
    Usage,
    UsageSpent,
)
from tzurot.runtime.errors import TzurotError

CHARACTERS_PER_TOKEN = 4
PROMPT_TOKENS_METADATA = "tzurot-prompt-tokens"
"""Inference's ExtractFacts sends this initial metadata once the provider accepted its request:
the prompt's tokens, estimated with the model's tokenizer (inference's server.py, the same
name). Only ASCII digits, at most MAX_ANNOUNCED_DIGITS of them, are read; anything else is
ignored."""
MAX_ANNOUNCED_DIGITS = 9
"""At most 999,999,999 tokens: within usage_log's int4 columns, far above any prompt."""
ANNOUNCED_PROMPT = "announced_prompt_tokens"
"""Where the gateway's client keeps that announcement on the call's error (its metadata)."""
_CUT = frozenset({grpc.StatusCode.DEADLINE_EXCEEDED, grpc.StatusCode.CANCELLED})
_UNREPORTED = _CUT | {grpc.StatusCode.UNKNOWN, grpc.StatusCode.INTERNAL}
"""Inference's stream ended so without reporting what a helper call in flight was billed:
cut (the gateway's deadline, the call cancelled), or failing on no classified error."""
_RESTARTING = "SERVICE_RESTARTING"
"""A call whose connection broke without a status (from_rpc_error's reason)."""


@dataclass
class RelayedAnswer:
    """The answer's prompts sent, rounds billed and characters relayed whose usage no report
    carries yet."""

    characters: int = 0
    prompt_tokens: int = 0
    """Estimated tokens of the prompts the provider began answering since the last report
    (PromptSent)."""
    billed: Usage | None = None
    """The latest RoundsBilled: the finished rounds' usage, until a report carries it."""
    helper_calls: dict[int, tuple[Usage, ...]] = field(default_factory=dict)
    """Helper calls whose request the provider has whole and whose outcome no event carried
    yet (HelperCallPending), by attachment: what they may bill."""

    def relayed(self, text: str) -> None:
        self.characters += len(text)

    def prompt_sent(self, sent: PromptSent) -> None:
        self.prompt_tokens += max(sent.input_tokens, 0)

    def rounds_billed(self, billed: RoundsBilled) -> None:
        """The rounds so far, billed: the prompts sent and text relayed before are in it."""
        self.billed = billed.usage
        self.prompt_tokens = self.characters = 0

    def reported(self, spent: UsageSpent) -> None:
        """Inference reported the answer's own calls (a round broken off, estimated; a failed
        reply's rounds): what was sent and relayed before is counted there; the rounds billed
        before too, when the report is of all of them. Or it reported a helper call that
        failed once its request went out (estimated): the one in flight of its kind
        (attachments are read one at a time)."""
        if spent.failed and any(not paid.request_type for paid in spent.paid):
            self.prompt_tokens = self.characters = 0
            if spent.all_rounds:
                self.billed = None
        kinds = {paid.request_type for paid in spent.paid if paid.request_type}
        for index in list(self.helper_calls):
            self._settle(index, kinds)

    def helper_call_pending(self, pending: HelperCallPending) -> None:
        """What attachment `index`'s helper calls may bill now (all of it: what was kept for
        it before is replaced; none: an attempt refused or asked again)."""
        if pending.calls:
            self.helper_calls[pending.index] = pending.calls
        else:
            self.helper_calls.pop(pending.index, None)

    def read(self, read: AttachmentRead) -> None:
        """The attachment's reading came, with its calls' own usage: those are no longer in
        flight (a clean-up it did without, failed once sent, is until its failed report)."""
        self._settle(read.index, {paid.request_type for paid in read.paid})

    def _settle(self, index: int, kinds: set[str]) -> None:
        """Attachment `index`'s calls of `kinds` have their outcome: no longer kept."""
        left = tuple(c for c in self.helper_calls.pop(index, ()) if c.request_type not in kinds)
        if left:
            self.helper_calls[index] = left

    def inference_failed(self, err: TzurotError) -> None:
        """Inference's stream ended with `err`. Its own classified error came after it
        reported what a helper call in flight was billed (or the provider refused it):
        nothing is left in flight. A cut (the gateway's deadline, inference restarting, an
        error it did not classify) may have left the provider at work: kept."""
        if err.code not in _UNREPORTED and err.reason != _RESTARTING:
            self.helper_calls.clear()

    async def watching(self, events: AsyncIterator[ReplyEvent]) -> AsyncGenerator[ReplyEvent, None]:
        """Inference's `events`; the error that ends them is noted (`inference_failed`) before
        it goes on (not one its reader raises: the gateway's own cut of the reply)."""
        try:
            async for event in events:
                yield event
        except TzurotError as err:
            self.inference_failed(err)
            raise

    def pending_calls(self) -> tuple[Usage, ...]:
        """The helper calls the provider may have billed that no report carries (failed,
        each of its own kind), for a reply cut now."""
        return tuple(call for calls in self.helper_calls.values() for call in calls)

    def estimate(self, provider: str, model: str) -> Usage | None:
        """The cut-off answer's usage; None when no report is missing (the provider began
        answering nothing, or everything it answered is reported already)."""
        billed = self.billed
        input_tokens = self.prompt_tokens + (billed.input_tokens if billed else 0)
        output_tokens = math.ceil(self.characters / CHARACTERS_PER_TOKEN)
        output_tokens += billed.output_tokens if billed else 0
        if not input_tokens and not output_tokens:
            return None
        # Only the finished rounds' own counts: as exact as they came.
        estimated = bool(self.prompt_tokens or self.characters) or bool(billed and billed.estimated)
        return Usage(provider, model, input_tokens, output_tokens, estimated=estimated)


def with_announced_prompt(
    err: TzurotError, initial_metadata: Iterable[tuple[str, str | bytes]] | None
) -> TzurotError:
    """`err`, the failed call's, keeping the prompt tokens its initial metadata announced
    (ANNOUNCED_PROMPT in its metadata), when it did. Never raises: a value that is not
    1 to MAX_ANNOUNCED_DIGITS ASCII digits (or any other header) is ignored."""
    with suppress(TypeError, ValueError):  # a malformed entry: no reason to lose the error
        for key, value in initial_metadata or ():
            if key == PROMPT_TOKENS_METADATA and _announced(value):
                err.metadata[ANNOUNCED_PROMPT] = value
    return err


def _announced(value: object) -> TypeGuard[str]:
    """A token count as inference writes it: ASCII digits, at most MAX_ANNOUNCED_DIGITS."""
    return (
        isinstance(value, str)
        and 0 < len(value) <= MAX_ANNOUNCED_DIGITS
        and value.isascii()
        and value.isdigit()
    )


def cut_helper_call(err: TzurotError, provider: str, model: str) -> Usage | None:
    """What a helper RPC cut before it could report was billed: the prompt inference
    announced, estimated, no output known (a floor); None when no prompt went out, or when
    inference ended the call itself (its error says what was billed)."""
    cut = err.code in _CUT or err.reason == _RESTARTING
    tokens = err.metadata.get(ANNOUNCED_PROMPT, "")
    if not cut or not _announced(tokens):
        return None
    return Usage(provider, model, int(tokens), 0, estimated=True)
