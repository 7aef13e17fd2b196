"""A helper RPC (ExtractFacts) cut before inference could report: the prompt inference
announced in the call's initial metadata is counted billed (estimated, no output), only for
a call cut by its caller's deadline, a cancel or a broken connection, and only when that
prompt went out; a call inference ended itself reported what was billed."""

from __future__ import annotations

import grpc
import pytest

from tzurot.gateway.cancelled_usage import (
    ANNOUNCED_PROMPT,
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


def test_the_largest_announcement_read_is_nine_digits() -> None:
    err = with_announced_prompt(DeadlineExceeded("x"), ((PROMPT_TOKENS_METADATA, "9" * 9),))
    usage = cut_helper_call(err, "p", "m")
    assert usage is not None
    assert usage.input_tokens == 999_999_999  # within usage_log's int4


@pytest.mark.parametrize(
    "metadata",
    [
        None,
        (),
        (("x-other", "1"),),
        ((PROMPT_TOKENS_METADATA, "-1"),),
        ((PROMPT_TOKENS_METADATA, ""),),
        ((PROMPT_TOKENS_METADATA, "1" * 10),),  # past int4: the write would fail
        ((PROMPT_TOKENS_METADATA, "9" * 5000),),  # past Python's int-string limit
        ((PROMPT_TOKENS_METADATA, "\u0663\u0664"),),  # digits, not ASCII: int() reads them
        ((PROMPT_TOKENS_METADATA, "²"),),  # isdigit, yet int() refuses it
        ((PROMPT_TOKENS_METADATA, b"9"),),  # never bytes: the key is not "-bin"
    ],
)
def test_a_cut_call_that_announced_no_usable_prompt_counts_nothing(
    metadata: tuple[tuple[str, str | bytes], ...] | None,
) -> None:
    err = with_announced_prompt(DeadlineExceeded("x"), metadata)
    assert cut_helper_call(err, "p", "m") is None


def test_other_headers_never_break_the_reading() -> None:
    """A binary header of any bytes (an interceptor's, a proxy's) is not decoded: the
    call's error goes on, with the announced prompt."""
    metadata = (("x-trace-bin", b"\xff\xfe\x00"), (PROMPT_TOKENS_METADATA, "412"))
    err = with_announced_prompt(DeadlineExceeded("x"), metadata)
    usage = cut_helper_call(err, "p", "m")
    assert usage is not None
    assert usage.input_tokens == 412


def test_a_tampered_kept_value_counts_nothing() -> None:
    err = DeadlineExceeded("x")
    err.metadata[ANNOUNCED_PROMPT] = "9" * 5000
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
