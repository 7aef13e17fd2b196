"""When a failed provider call is asked again: one policy for every call inference makes.

The openai SDK's own retries are off on every client (sdk_clients.py): they slept through a 429's
Retry-After (up to 60 s) unseen, past the caller's deadline, and sent again requests the
provider may already have carried out and billed. A failed attempt is asked again here only
while the provider cannot have done the work:

- a 429, once, when its Retry-After is shorter than MAX_RATE_LIMIT_WAIT_SECONDS and fits in
  the time left; otherwise the 429 is the outcome, with that delay (RESOURCE_EXHAUSTED
  PROVIDER_RATE_LIMITED and its RetryInfo: the user reads when to try again). Without a
  Retry-After the wait is unknown: the outcome at once;
- a connection that failed before the request was sent (`NotSent`), with backoff; so, once
  a call, does a request whose body the client could not hand to its socket whole
  (`NotReceived`: the provider never had all of it, so it can have done no work);
- a stream that failed before its first event (a 5xx, a dropped connection), with backoff;
  so does any failure but a timeout of a call that costs nothing (a key check).

Never a timeout once the request went out (`NoAnswerInTime`: the provider may be at work,
and billing), anything after a stream's first event, a failure of a call answered in one body
(its 5xx may come after the work: a transcript, an image), a quota refusal (a 402, or OpenAI's
429 `insufficient_quota`: provider_errors.py makes both PROVIDER_QUOTA_EXCEEDED, which no wait
cures) or any other refusal. An answer adds its own rule for silent attempts (answering.py).

A helper model's call that failed once its request went out (the provider began answering,
or had it whole and left it unanswered past the time limit) may have been billed:
`helper_completion` gives its estimate (broken_off.helper_cut_off, under the call's
request_type) to the caller, who reports it as paid and not delivered; never one refused,
never sent or still uploading. It tells too, while the call runs, what it may bill (`tell`:
its prompt, the moment an attempt's request is handed over whole; taken back when that
attempt is refused or asked again), for a reply that may be cut before any report
(billable.py).
"""

from __future__ import annotations

import asyncio
import functools
import math
import time
from collections.abc import AsyncGenerator, Awaitable, Callable
from contextlib import aclosing
from dataclasses import dataclass, field, replace
from typing import TypeVar

from pydantic import SecretStr

from tzurot.inference.billable import Tell
from tzurot.inference.broken_off import helper_cut_off
from tzurot.inference.dialects import ProviderCall
from tzurot.inference.domain import (
    Completion,
    PaidCall,
    ReasoningDelta,
    StreamEvent,
    TextDelta,
    ToolCallText,
)
from tzurot.inference.ports import LanguageModel
from tzurot.inference.providers import Provider
from tzurot.inference.uploads import watching_upload
from tzurot.runtime.errors import ResourceExhausted, TzurotError, Unavailable

MAX_RATE_LIMIT_RETRIES = 1
MAX_NOT_RECEIVED_RETRIES = 1
"""A request whose body never reached the provider whole (NotReceived) is asked again once."""
MAX_RATE_LIMIT_WAIT_SECONDS = 20.0
"""A Retry-After this long or longer is told to the user at once, not waited out silently."""
MAX_BACKOFF_SECONDS = 8.0
RATE_LIMITED = "PROVIDER_RATE_LIMITED"
UNREACHED = "PROVIDER_UNAVAILABLE"
"""A 5xx, an unreachable provider, a stream that failed (a quota refusal, an empty answer or
any other failure is never asked again here)."""

T = TypeVar("T")


class NotSent(Unavailable):
    """The connection failed before the request was written: the provider did nothing."""


class NotReceived(Unavailable):
    """The client could not hand the request's body to its socket whole: the write stalled
    past the timeout, the connection was reset (or an error status came) while the client
    was still writing, or a proxy or protocol failure came before it. The provider never had
    the whole body, so it has nothing to work on, or bill. Only a body larger than what the
    connection buffers (the kernel's send and receive buffers, a few MiB) can be seen cut
    short: a smaller one is handed over whole at once, and a failure after that is not
    NotReceived even when the provider read only part of it (uploads.py). Asked again once a
    call (with the backoff, within the failures allowed and the time left), as NotSent is: a
    second cut-short upload is the outcome (the next would likely stall as long again); a
    stream's is asked again as any failure before its first event is."""


class NoAnswerInTime(Unavailable):
    """The request went out and no answer came in time: the provider may be doing (and
    billing) the work. Like NotSent, it travels as UNAVAILABLE PROVIDER_UNAVAILABLE: only
    the retries tell them apart."""


@dataclass(frozen=True)
class RetryPolicy:
    """The retries allowed to the provider calls of one request, and when it must end."""

    failures: int = 2
    """Asked again after a connection that failed before sending (and, for a stream, a
    failure before anything came): `TZUROT_PROVIDER_MAX_RETRIES`."""
    backoff: float = 0.5
    """The first wait before such a retry; doubled for each next one (at most 8 s)."""
    deadline: float | None = None
    """The clock's time by which the caller needs the outcome (its gRPC deadline); None:
    only the caps bound the waits."""
    clock: Callable[[], float] = field(default=time.monotonic, compare=False)

    def time_left(self) -> float:
        return math.inf if self.deadline is None else self.deadline - self.clock()

    def within(self, seconds: float | None) -> RetryPolicy:
        """The same retries for a caller that needs the outcome within `seconds` from now
        (None: no sooner than before)."""
        if seconds is None:
            return self
        deadline = self.clock() + seconds
        if self.deadline is not None:
            deadline = min(deadline, self.deadline)
        return replace(self, deadline=deadline)

    def retries(self) -> Retries:
        """A fresh budget for one call."""
        return Retries(failures=self.failures, backoff=self.backoff, time_left=self.time_left)


class Retries:
    """What one call may still retry, and how long to wait first."""

    def __init__(self, *, failures: int, backoff: float, time_left: Callable[[], float]) -> None:
        self._allowed = self._failures = failures
        self._backoff = backoff
        self._rate_limits = MAX_RATE_LIMIT_RETRIES
        self._unreceived = MAX_NOT_RECEIVED_RETRIES
        self.time_left = time_left

    def wait(self, err: TzurotError, *, began: bool, resendable: bool) -> float | None:
        """Seconds to wait before asking again after `err`; None: `err` is the outcome.

        `began`: the provider sent an event of the answer (it is answering, and is never
        asked again). `resendable`: a failure (a 5xx, a dropped connection) came before any
        work that costs: a stream's before its first event, or any of a call that costs
        nothing. Otherwise (a call answered in one body may fail after the work) only a
        connection that never sent the request is asked again, and once an upload the
        provider never had whole (NotReceived)."""
        if began:
            return None
        if err.reason == RATE_LIMITED and isinstance(err, ResourceExhausted):
            # Without a Retry-After the wait is unknown: the user is told to try again later.
            wait = err.retry_after_seconds if self._rate_limits > 0 else None
            if wait is not None and wait < min(MAX_RATE_LIMIT_WAIT_SECONDS, self.time_left()):
                self._rate_limits -= 1
                return wait
            return None
        unsent = isinstance(err, NotSent)
        unreceived = isinstance(err, NotReceived) and self._unreceived > 0
        failed = resendable and err.reason == UNREACHED and not isinstance(err, NoAnswerInTime)
        if (unsent or unreceived or failed) and self._failures > 0:
            used = self._allowed - self._failures
            wait = min(self._backoff * 2.0**used, MAX_BACKOFF_SECONDS)
            if wait < self.time_left():
                self._failures -= 1
                if isinstance(err, NotReceived):
                    self._unreceived -= 1
                return wait
        return None


async def whole_answer(
    call: Callable[[], Awaitable[T]], policy: RetryPolicy, *, free: bool = False
) -> T:
    """The outcome of a call answered in one body (a transcript, images, the model list),
    asked again as the policy allows; `free`: the call costs nothing (a key check), so any
    failure but a timeout may be sent again."""
    retries = policy.retries()
    while True:
        try:
            return await call()
        except (ResourceExhausted, Unavailable) as err:
            wait = retries.wait(err, began=False, resendable=free)
            if wait is None:
                raise
        await asyncio.sleep(wait)


async def helper_completion(  # noqa: PLR0917  # the call's own parts, as stream_chat takes them
    llm: LanguageModel,
    provider: Provider,
    api_key: SecretStr,
    model: str,
    call: ProviderCall,
    policy: RetryPolicy,
    *,
    request_type: str = "",
    cut_off: list[PaidCall] | None = None,
    on_accepted: Callable[[], Awaitable[None]] | None = None,
    tell: Tell | None = None,
) -> Completion:
    """A helper model's whole answer (a description, a clean-up, facts), streamed and asked
    again as the policy allows: only while nothing of it came. The whole call ends by the
    policy's deadline (each request may take the time left, as a whole: not only each step
    of it): past it, a request the provider was answering is cut off; one it had whole
    (uploads.py: the client handed its body to the socket) and left unanswered is
    NoAnswerInTime; one still uploading its body is NotReceived, and one still waiting for a
    pooled connection or connecting NotSent (neither was billed). A caller whose deadline
    ends before its own caller's (a reply's ends a report grace before the gRPC deadline)
    can still report the estimate; ExtractFacts' ends with the gRPC deadline, so its
    caller may cut the call first and count only the announced prompt.

    A call that fails once its request went out (the provider began answering: the stream
    broke, an error event, an unfinished end; or no answer came in time, NoAnswerInTime)
    may have been billed: its estimate (broken_off.helper_cut_off, as `request_type`) is
    added to `cut_off` before the error is raised, for the caller to report (paid, not
    delivered). Such a call is never asked again, so it is the last one.

    `on_accepted` is awaited when the first attempt the provider accepts (its 200's headers)
    begins, never for one refused, unsent or waiting out a 429 (LanguageModel.stream_chat).
    `tell` hears what the call may bill the moment an attempt's request is handed over whole
    (its prompt, estimated: nothing of the answer), and None when that attempt is then
    refused or asked again (nothing billed); a failure that may have been billed is left
    told (its estimate goes to `cut_off`), and so is a success (its usage is the caller's)."""
    retries = policy.retries()
    stream = _streaming(llm, on_accepted)
    told = _Told(tell, request_type, provider, model, call)
    while True:
        began = False
        received: list[str] = []
        left = retries.time_left()
        if left <= 0:  # nothing is sent only to be abandoned
            raise NotSent(
                f"{provider.name} was not asked: no time was left; try again later",
                reason=UNREACHED,
                metadata={"provider": provider.name},
            )
        limit = asyncio.timeout(None if math.isinf(left) else left)
        events = stream(
            provider,
            api_key,
            model=model,
            call=call,
            request_timeout=None if math.isinf(left) else left,
        )
        try:
            # What of it went out, should the deadline cut it; told once it is all out.
            with watching_upload(told.sent) as upload:
                async with limit, aclosing(events):
                    async for event in events:
                        began = True
                        if isinstance(event, Completion):
                            return event
                        if isinstance(event, TextDelta | ReasoningDelta | ToolCallText):
                            received.append(event.text)  # billed, should the stream break
        except TimeoutError:
            if not limit.expired():
                raise
            sent = began or upload.sent
            if sent:  # never one still waiting, connecting or uploading: nothing to bill
                _note_cut_off(
                    cut_off,
                    request_type,
                    provider,
                    model,
                    call,
                    received,
                    began=began,
                    unanswered=True,
                    told=told,
                )
            raise _out_of_time(
                provider.name, began=began, sent=sent, started=upload.started
            ) from None
        except TzurotError as err:
            if isinstance(err, ResourceExhausted | Unavailable):
                wait = retries.wait(err, began=began, resendable=True)
                if wait is not None:
                    told.taken_back()  # refused, or failed before any work: asked again
                    await asyncio.sleep(wait)
                    continue
            _note_cut_off(
                cut_off,
                request_type,
                provider,
                model,
                call,
                received,
                began=began,
                unanswered=isinstance(err, NoAnswerInTime),
                told=told,
            )
            raise
        _note_cut_off(
            cut_off,
            request_type,
            provider,
            model,
            call,
            received,
            began=began,
            unanswered=False,
            told=told,
        )
        raise Unavailable(
            f"{provider.name} ended the answer without finishing it",
            reason=UNREACHED,
            metadata={"provider": provider.name},
        )


def _out_of_time(provider: str, *, began: bool, sent: bool, started: bool) -> Unavailable:
    """The caller's deadline passed during a helper call: cut off mid-answer (`began`), never
    answered though its request went out whole (`sent`: NoAnswerInTime), cut while its body
    was going out (`started`: NotReceived), else before anything was written (waiting for
    a connection, connecting: NotSent)."""
    kind: type[Unavailable]
    if began:
        what, kind = "did not finish answering in time", Unavailable
    else:
        what = "did not answer in time"
        kind = NoAnswerInTime if sent else NotReceived if started else NotSent
    return kind(
        f"{provider} {what}; try again later", reason=UNREACHED, metadata={"provider": provider}
    )


def _streaming(
    llm: LanguageModel, on_accepted: Callable[[], Awaitable[None]] | None
) -> Callable[..., AsyncGenerator[StreamEvent, None]]:
    """`llm.stream_chat`, calling `on_accepted` for the first accepted attempt only."""
    if on_accepted is None:
        return llm.stream_chat  # a model that takes no such hook still works
    done = False

    async def once() -> None:
        nonlocal done
        if not done:
            done = True
            await on_accepted()

    return functools.partial(llm.stream_chat, on_accepted=once)


def _note_cut_off(  # noqa: PLR0917  # the call's own parts, as helper_completion has them
    cut_off: list[PaidCall] | None,
    request_type: str,
    provider: Provider,
    model: str,
    call: ProviderCall,
    received: list[str],
    *,
    began: bool,
    unanswered: bool,
    told: _Told,
) -> None:
    """Adds the failed call's estimate to `cut_off` when it may have been billed (begun, or
    unanswered once sent: broken_off.helper_cut_off); otherwise (refused) takes back what
    was `told` of it."""
    if not began and not unanswered:
        told.taken_back()  # refused: nothing billed
        return
    if cut_off is not None:
        paid = helper_cut_off(
            request_type,
            provider.name,
            model,
            call.messages,
            received,
            began=began,
            unanswered=unanswered,
        )
        if paid is not None:
            cut_off.append(paid)


class _Told:
    """What `helper_completion` told of its current attempt (`tell`): its prompt's estimate
    once the request is all out (counted then, once a call: never delaying a request),
    taken back when that attempt is refused or asked again."""

    def __init__(
        self,
        tell: Tell | None,
        request_type: str,
        provider: Provider,
        model: str,
        call: ProviderCall,
    ) -> None:
        self._tell = tell
        self._call = (request_type, provider.name, model, call.messages)
        self._estimate: PaidCall | None = None
        self._said = False

    def sent(self) -> None:
        """The attempt's request was handed over whole (called from httpcore's trace)."""
        if self._tell is None or self._said:
            return
        if self._estimate is None:
            request_type, provider, model, messages = self._call
            self._estimate = helper_cut_off(
                request_type, provider, model, messages, (), began=False, unanswered=True
            )
        if self._estimate is not None:
            self._said = True
            self._tell(self._estimate)

    def taken_back(self) -> None:
        if self._tell is not None and self._said:
            self._said = False
            self._tell(None)
