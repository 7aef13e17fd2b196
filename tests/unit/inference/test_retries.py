"""retries.py: when a failed provider call is asked again, for the answer and every helper."""

from __future__ import annotations

import pytest

from tzurot.inference.retries import (
    MAX_RATE_LIMIT_WAIT_SECONDS,
    NoAnswerInTime,
    NotSent,
    Retries,
    RetryPolicy,
    whole_answer,
)
from tzurot.runtime.errors import InvalidArgument, ResourceExhausted, Unavailable


def rate_limited(retry_after: float | None) -> ResourceExhausted:
    return ResourceExhausted(
        "fakeai is rate limiting requests (HTTP 429); try again later",
        retry_after_seconds=retry_after,
        reason="PROVIDER_RATE_LIMITED",
    )


def unavailable(kind: type[Unavailable] = Unavailable) -> Unavailable:
    return kind("fakeai is unavailable; try again later", reason="PROVIDER_UNAVAILABLE")


def retries(time_left: float = 60.0, failures: int = 2) -> Retries:
    return Retries(failures=failures, backoff=0.5, time_left=lambda: time_left)


@pytest.mark.parametrize("streamed", [True, False])
def test_a_429_is_waited_out_once_when_its_retry_after_is_short(streamed: bool) -> None:
    budget = retries()
    assert budget.wait(rate_limited(3.0), began=False, resendable=streamed) == 3.0
    assert budget.wait(rate_limited(3.0), began=False, resendable=streamed) is None


@pytest.mark.parametrize(
    ("retry_after", "time_left"),
    [
        (MAX_RATE_LIMIT_WAIT_SECONDS, 600.0),  # the user is told now, not after 20 s unseen
        (MAX_RATE_LIMIT_WAIT_SECONDS + 40, 600.0),  # the SDK slept up to 60 s
        (5.0, 4.0),  # past the caller's deadline
        (None, 600.0),  # no Retry-After: the wait is unknown
    ],
)
def test_a_429_that_would_wait_too_long_is_the_outcome(
    retry_after: float | None, time_left: float
) -> None:
    budget = retries(time_left)
    assert budget.wait(rate_limited(retry_after), began=False, resendable=True) is None


def test_nothing_is_asked_again_once_the_provider_began() -> None:
    budget = retries()
    for err in (rate_limited(1.0), unavailable(), unavailable(NotSent)):
        assert budget.wait(err, began=True, resendable=True) is None


def test_a_connection_that_never_sent_is_asked_again_with_backoff() -> None:
    budget = retries(failures=2)
    waits = [budget.wait(unavailable(NotSent), began=False, resendable=False) for _ in range(3)]
    assert waits == [0.5, 1.0, None]


def test_a_backoff_that_does_not_fit_in_the_time_left_is_not_waited() -> None:
    assert retries(time_left=0.4).wait(unavailable(NotSent), began=False, resendable=False) is None


def test_a_stream_that_failed_before_its_first_event_is_asked_again() -> None:
    """A 5xx or a dropped connection before anything came: as an answer always was."""
    assert retries().wait(unavailable(), began=False, resendable=True) == 0.5


def test_a_call_answered_in_one_body_is_not_asked_again_after_a_5xx() -> None:
    """A transcript or an image may be made, and billed, before a 5xx comes back."""
    assert retries().wait(unavailable(), began=False, resendable=False) is None


async def test_a_free_call_is_asked_again_after_any_failure_but_a_timeout() -> None:
    """A key check costs nothing: a dropped connection is sent again, within its budget."""
    attempts: list[Unavailable] = [unavailable(), unavailable(NoAnswerInTime)]

    async def check() -> int:
        raise attempts.pop(0)

    policy = RetryPolicy(failures=1, backoff=0.01)
    with pytest.raises(NoAnswerInTime):
        await whole_answer(check, policy, free=True)
    assert attempts == []
    attempts[:] = [unavailable(), unavailable()]
    with pytest.raises(Unavailable):
        await whole_answer(check, policy)  # a paid call: not sent again after sending
    assert len(attempts) == 1


@pytest.mark.parametrize("streamed", [True, False])
def test_a_timeout_after_sending_is_never_asked_again(streamed: bool) -> None:
    """The provider may be at work, and billing: the SDK sent it again, twice."""
    assert retries().wait(unavailable(NoAnswerInTime), began=False, resendable=streamed) is None


def test_other_failures_are_the_outcome() -> None:
    budget = retries()
    quota = ResourceExhausted("no credits", reason="PROVIDER_QUOTA_EXCEEDED")
    empty = Unavailable("empty twice", reason="EMPTY_ANSWER")
    refused = InvalidArgument("config", "rejected", reason="PROVIDER_REJECTED_REQUEST")
    for err in (quota, empty, refused):
        assert budget.wait(err, began=False, resendable=True) is None


def test_a_policy_within_a_time_limit_keeps_the_earlier_deadline() -> None:
    now = [100.0]
    policy = RetryPolicy(clock=lambda: now[0])
    assert policy.time_left() == float("inf")
    assert policy.within(None) is policy
    bounded = policy.within(30.0)
    assert bounded.time_left() == 30.0
    assert bounded.within(60.0).time_left() == 30.0  # a skill call inside a shorter reply
    assert bounded.within(10.0).time_left() == 10.0
    now[0] = 125.0
    assert bounded.time_left() == 5.0
    budget = bounded.retries()
    assert budget.wait(rate_limited(6.0), began=False, resendable=True) is None
    assert budget.wait(rate_limited(4.0), began=False, resendable=True) == 4.0
