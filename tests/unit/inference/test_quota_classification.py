"""How a provider's 429 is read: OpenAI's `insufficient_quota` (in `code`, or in `type` alone)
is a key with no credit left, PROVIDER_QUOTA_EXCEEDED as a 402 is, with no wait to tell and
none retries.py would take; any other 429 stays PROVIDER_RATE_LIMITED with its Retry-After."""

from __future__ import annotations

from typing import Any

import httpx2
import openai
import pytest

from tzurot.inference.provider_errors import provider_error
from tzurot.inference.retries import Retries
from tzurot.runtime.errors import ResourceExhausted

QUOTA_MESSAGE = "You exceeded your current quota, please check your plan and billing details."


def status_error(status: int, error: dict[str, Any], headers: dict[str, str]) -> openai.APIError:
    request = httpx2.Request("POST", "https://api.openai.com/v1/chat/completions")
    response = httpx2.Response(status, json={"error": error}, headers=headers, request=request)
    kind = openai.RateLimitError if status == 429 else openai.APIStatusError
    return kind(error["message"], response=response, body=error)


def classified(status: int, error: dict[str, Any], retry_after: str = "") -> ResourceExhausted:
    headers = {"retry-after": retry_after} if retry_after else {}
    err = provider_error(status_error(status, error, headers), "openai", model="gpt-4o")
    assert isinstance(err, ResourceExhausted)
    return err


@pytest.mark.parametrize(
    "error",
    [
        {"message": QUOTA_MESSAGE, "type": "insufficient_quota", "code": "insufficient_quota"},
        {"message": QUOTA_MESSAGE, "type": "insufficient_quota", "code": None},
        {"message": QUOTA_MESSAGE, "type": "requests", "code": "insufficient_quota"},
    ],
)
def test_insufficient_quota_is_a_quota_refusal_never_retried(error: dict[str, Any]) -> None:
    err = classified(429, error, retry_after="5")
    assert err.reason == "PROVIDER_QUOTA_EXCEEDED"
    assert err.retry_after_seconds is None  # no wait cures it
    assert "no credits or quota left on this key (HTTP 429, insufficient_quota)" in err.message
    assert "add credit to the openai account" in err.message
    assert QUOTA_MESSAGE not in err.message  # never the provider's own words
    retries = Retries(failures=2, backoff=0.01, time_left=lambda: 60.0)
    assert retries.wait(err, began=False, resendable=True) is None


def test_a_402_is_the_same_quota_refusal() -> None:
    err = classified(402, {"message": "Insufficient credits", "code": 402})
    assert err.reason == "PROVIDER_QUOTA_EXCEEDED"
    assert "(HTTP 402)" in err.message


def test_an_ordinary_429_stays_a_rate_limit_waited_out_once() -> None:
    error = {"message": "Rate limit reached", "type": "requests", "code": "rate_limit_exceeded"}
    err = classified(429, error, retry_after="2")
    assert err.reason == "PROVIDER_RATE_LIMITED"
    assert err.retry_after_seconds == 2.0
    retries = Retries(failures=2, backoff=0.01, time_left=lambda: 60.0)
    assert retries.wait(err, began=False, resendable=False) == 2.0
    assert retries.wait(err, began=False, resendable=False) is None


def test_a_429_with_a_code_of_another_shape_is_a_rate_limit() -> None:
    err = classified(429, {"message": "slow down", "code": {"nested": "insufficient_quota"}})
    assert err.reason == "PROVIDER_RATE_LIMITED"
