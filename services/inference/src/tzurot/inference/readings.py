"""A helper model's streamed reading of one attachment: an image's description, a voice
note's transcript cleaned up, each saying while it runs what it may be billed.

A reply cut while a helper model works (its client cancelled, the gateway's deadline,
inference stopping) can report nothing more: so, the moment a call's request is handed to
the provider whole (uploads.py), the reading says what the attachment may bill
(HelperCallPending: that call's prompt, estimated, beside a transcription already paid for),
takes the call back when the provider refuses it or it is asked again, and the gateway
records it only for such a cut (its AttachmentRead, a failed UsageSpent or the reply's
error carries the outcome otherwise). A call that failed once its request went out (its
stream broke, no answer in time) adds its estimate (broken_off.helper_cut_off) to `cut_off`
for the caller to report, paid and not delivered: a description's before the reply's error,
a clean-up's after the reading that did without it (the raw transcript). A call never sent
whole, or refused, is never said.
"""

from __future__ import annotations

from collections.abc import AsyncGenerator, Sequence
from contextlib import AbstractContextManager, aclosing
from dataclasses import dataclass

import structlog
from pydantic import SecretStr

from tzurot.inference.billable import Billable, Tell, running
from tzurot.inference.dialects import helper_call
from tzurot.inference.domain import (
    IMAGE_DESCRIPTION,
    TRANSCRIPT_CLEANUP,
    Completion,
    HelperCallPending,
    ImagePart,
    KeySource,
    PaidCall,
    TokenUsage,
)
from tzurot.inference.keys import refusal_names_key, refused_user_key
from tzurot.inference.ports import LanguageModel
from tzurot.inference.prompt import ChatMessage
from tzurot.inference.providers import Provider
from tzurot.inference.retries import RetryPolicy, helper_completion
from tzurot.inference.thinking import split_thinking
from tzurot.runtime.errors import TzurotError

DESCRIBE_PROMPT = (
    "Describe this image for someone who cannot see it: what it shows, any text in it, "
    "and its mood. Be factual and concise."
)
CLEANUP_PROMPT = (
    "You fix speech-to-text transcripts. Add punctuation, capitalisation and paragraph "
    "breaks; remove filler repetitions; change nothing else. Answer with the transcript only."
)

log = structlog.get_logger("tzurot.inference.attachments")  # the name its events always had


@dataclass(frozen=True)
class ModelTarget:
    """A model to call, on a provider, with the key that pays for it."""

    provider: Provider
    api_key: SecretStr
    model: str
    key_source: KeySource
    """Whose key it is: a refusal of it says so (keys.refusal_names_key)."""

    def names_refusal(self) -> AbstractContextManager[None]:
        """The provider's refusal of this key, raised inside, says whose key it was."""
        return refusal_names_key(self.provider.name, self.key_source)


@dataclass(frozen=True)
class NoKeyFor:
    """A helper model nobody's key may pay for on a reply whose answer takes no key (a
    keyless provider's, helper_models.py): never called; what it would read is left unread,
    and the prompt says so, naming the provider and how the user adds its key."""

    provider: str

    def unread(self, what: str, doing: str) -> str:
        """The note standing for `what` in the message (`doing`: the helper's job). Kept in
        history, it says only what stays true once she adds the key (the gateway rebuilds
        it so: turn_edits.unread_note)."""
        name = self.provider
        return f"[{what}: not read; {doing} needed an API key for {name} (/wallet set {name})]"


@dataclass(frozen=True)
class Reading:
    """A helper model's text for one attachment and every call it was paid with."""

    text: str
    paid: tuple[PaidCall, ...]
    refused_keys: tuple[str, ...] = ()
    """Providers whose key from the user's wallet refused a call this reading did without
    (the clean-up): no error reaches gateway for it, so it is reported here."""
    cut_off: tuple[PaidCall, ...] = ()
    """A call this reading did without (the clean-up) that failed once its request went out,
    estimated (broken_off.helper_cut_off): paid, not delivered."""


def paid_call(
    request_type: str, target: ModelTarget, usage: TokenUsage, audio_seconds: float = 0.0
) -> PaidCall:
    return PaidCall(request_type, target.provider.name, target.model, usage, audio_seconds)


class HelperReadings:
    """The streamed helper calls of `AttachmentReader` (attachments.py)."""

    _llm: LanguageModel

    async def describing(
        self,
        index: int,
        image: ImagePart,
        target: ModelTarget,
        *,
        retry: RetryPolicy,
        cut_off: list[PaidCall] | None = None,
    ) -> AsyncGenerator[HelperCallPending | Reading, None]:
        """What attachment `index`'s description may bill while the provider has its request
        (HelperCallPending), then its Reading. A call that failed once its request went out
        adds its estimate to `cut_off` before the error goes on."""
        messages: list[ChatMessage] = [
            {
                "role": "user",
                "content": [
                    {"type": "text", "text": DESCRIBE_PROMPT},
                    {"type": "image_url", "image_url": {"url": image.data_url}},
                ],
            }
        ]
        steps = self._completing(index, (), target, messages, retry, IMAGE_DESCRIPTION, cut_off)
        completion = None
        async with aclosing(steps):
            async for step in steps:
                if isinstance(step, Completion):
                    completion = step
                else:
                    yield step
        assert completion is not None  # a call ends with its completion, or raises
        text, usage = _answer(completion)
        yield Reading(text, (paid_call(IMAGE_DESCRIPTION, target, usage),))

    async def cleaning(
        self,
        index: int,
        raw: str,
        paid: tuple[PaidCall, ...],
        cleaner: ModelTarget,
        *,
        retry: RetryPolicy,
    ) -> AsyncGenerator[HelperCallPending | Reading, None]:
        """The raw transcript `paid` for (its transcription, already said pending for
        attachment `index`), as the cleaner punctuates it: what the clean-up may bill while
        the provider has its request (HelperCallPending, with `paid`), then the Reading. The
        raw transcript when the clean-up fails: with its estimate (`Reading.cut_off`, still
        said pending until it is reported) should it have failed once sent."""
        messages: list[ChatMessage] = [
            {"role": "system", "content": CLEANUP_PROMPT},
            {"role": "user", "content": raw},
        ]
        cut_off: list[PaidCall] = []
        said = HelperCallPending(index, paid)
        completion = None
        steps = self._completing(
            index, paid, cleaner, messages, retry, TRANSCRIPT_CLEANUP, cut_off, temperature=0.0
        )
        try:
            async with aclosing(steps):
                async for step in steps:
                    if isinstance(step, Completion):
                        completion = step
                    else:
                        said = step
                        yield step
        except TzurotError as err:
            log.warning(
                "attachment.cleanup_failed",
                code=err.code.name,
                reason=err.reason,
                provider=cleaner.provider.name,
                model=cleaner.model,
            )
            # In flight now: the transcription, and the clean-up only as it may have been
            # billed (its estimate, reported once the reading is).
            left = HelperCallPending(index, (*paid, *cut_off))
            if left != said:
                yield left
            # Her own key refused: said so, for gateway to mark it inactive (the raw
            # transcript goes on, so no error would tell it).
            refused = refused_user_key(err)
            yield Reading(raw, paid, () if refused is None else (refused,), tuple(cut_off))
            return
        assert completion is not None  # a call ends with its completion, or raises
        cleaned, usage = _answer(completion)
        yield Reading(cleaned or raw, (*paid, paid_call(TRANSCRIPT_CLEANUP, cleaner, usage)))

    async def _completing(  # noqa: PLR0917  # the call's own parts
        self,
        index: int,
        before: Sequence[PaidCall],
        target: ModelTarget,
        messages: list[ChatMessage],
        retry: RetryPolicy,
        request_type: str,
        cut_off: list[PaidCall] | None,
        *,
        temperature: float | None = None,
    ) -> AsyncGenerator[HelperCallPending | Completion, None]:
        """The call's completion, after what attachment `index` may bill while the provider
        has its request: `before`, and the call's estimate as each attempt's request goes
        out whole (HelperCallPending; `before` alone when it is taken back). A call that
        failed once sent is estimated into `cut_off` (as `request_type`) before its error
        goes on (retries.helper_completion)."""
        call = helper_call(messages, target.model, temperature=temperature)

        async def complete(tell: Tell) -> Completion:
            with target.names_refusal():
                return await helper_completion(
                    self._llm,
                    target.provider,
                    target.api_key,
                    target.model,
                    call,
                    retry,
                    request_type=request_type,
                    cut_off=cut_off,
                    tell=tell,
                )

        steps = running(complete)
        async with aclosing(steps):
            async for step in steps:
                if isinstance(step, Billable):
                    estimate = () if step.estimate is None else (step.estimate,)
                    yield HelperCallPending(index, (*before, *estimate))
                else:
                    yield step.value


def _answer(completion: Completion) -> tuple[str, TokenUsage]:
    """The answer's text and usage: a reasoning model used as a helper may think in tags,
    which the user never sees."""
    return split_thinking(completion.content)[0], completion.usage
