"""A helper RPC (ExtractFacts) cut before inference could report: the prompt inference
announced in the call's initial metadata is counted billed (estimated, no output), only for
a call cut by its caller's deadline, a cancel or a broken connection, and only when that
prompt went out; a call inference ended itself reported what was billed."""

from __future__ import annotations

import grpc
import pytest

from tzurot.gateway.cancelled_usage import (
    PROMPT_TOKENS_METADATA,
    cut_helper_call,
    with_announced_prompt,
)
from tzurot.gateway.domain import Usage
from tzurot.runtime.errors import (
    DeadlineExceeded,
    FailedPrecondition,
    TzurotError,
    Unavailable,
)

ANNOUNCED = ((PROMPT_TOKENS_METADATA, "412"), ("x-other", "1"))


def cut_call() -> TzurotError:
    return TzurotError("cancelled", code=grpc.StatusCode.CANCELLED)


@pytest.mark.parametrize(
    "err",
    [
        DeadlineExceeded("deadline exceeded"),
        cut_call(),
        Unavailable("inference is restarting", reason="SERVICE_RESTARTING"),
    ],
)
def test_a_cut_call_whose_prompt_went_out_counts_that_prompt(err: TzurotError) -> None:
    kept = with_announced_prompt(err, ANNOUNCED)
    assert kept is err
    assert cut_helper_call(err, "openrouter", "fake/echo") == Usage(
        "openrouter", "fake/echo", 412, 0, estimated=True
    )


def test_the_announcement_may_come_as_bytes() -> None:
    err = with_announced_prompt(DeadlineExceeded("x"), ((PROMPT_TOKENS_METADATA, b"9"),))
    usage = cut_helper_call(err, "p", "m")
    assert usage is not None
    assert usage.input_tokens == 9


@pytest.mark.parametrize(
    "metadata", [None, (), (("x-other", "1"),), ((PROMPT_TOKENS_METADATA, "-1"),)]
)
def test_a_cut_call_that_announced_no_prompt_counts_nothing(
    metadata: tuple[tuple[str, str], ...] | None,
) -> None:
    err = with_announced_prompt(DeadlineExceeded("x"), metadata)
    assert cut_helper_call(err, "p", "m") is None


@pytest.mark.parametrize(
    "err",
    [
        FailedPrecondition("refused", reason="INVALID_API_KEY"),  # a refusal: not billed
        Unavailable("x", reason="PROVIDER_UNAVAILABLE"),  # its estimate, if any, is attached
    ],
)
def test_a_call_inference_ended_itself_counts_nothing_here(err: TzurotError) -> None:
    assert cut_helper_call(with_announced_prompt(err, ANNOUNCED), "p", "m") is None


def test_the_gateway_reads_the_name_inference_sends() -> None:
    from tzurot.inference.server import PROMPT_TOKENS_METADATA as sent

    assert sent == PROMPT_TOKENS_METADATA
