"""An error's metadata survives the trip as a rich status: no entry is dropped for its
count (inference adds `refused_key_providers` last, after whatever the error carried), and
a list is kept whole while the byte budget holds it; only past the budget is an entry cut
or left out, and that is logged."""

import grpc
import pytest

from tzurot.runtime.errors import (
    MAX_METADATA_BYTES,
    MAX_METADATA_CHARS,
    TzurotError,
    Unavailable,
    from_rpc_error,
    to_status,
)


def _round_trip(err: TzurotError) -> TzurotError:
    status = to_status(err)
    exc = grpc.aio.AioRpcError(
        status.code,
        grpc.aio.Metadata(),
        grpc.aio.Metadata(*status.trailing_metadata),
        details=status.details,
    )
    return from_rpc_error(exc, service="inference")


def test_an_entry_after_the_sixteenth_arrives() -> None:
    metadata = {f"detail_{n:02}": f"value {n}" for n in range(20)}
    metadata["refused_key_providers"] = "brave,openai"
    err = _round_trip(Unavailable("the provider failed", reason="PROVIDER_DOWN", metadata=metadata))
    assert err.metadata == metadata


def test_a_long_list_of_refused_providers_arrives_whole() -> None:
    names = ",".join(sorted(f"operator-provider-{n:02}" for n in range(30)))
    assert len(names) > MAX_METADATA_CHARS
    err = _round_trip(
        Unavailable("failed", metadata={"provider": "openrouter", "refused_key_providers": names})
    )
    assert err.metadata["refused_key_providers"] == names


def test_past_the_budget_an_entry_is_cut_or_left_out_and_logged(
    capsys: pytest.CaptureFixture[str],
) -> None:
    big = "x" * (MAX_METADATA_BYTES // 2)
    metadata = {"first": big, "second": big, **{f"more_{n}": big for n in range(8)}}
    sent = to_status(Unavailable("failed", metadata=metadata))
    err = _round_trip(Unavailable("failed", metadata=metadata))
    assert err.metadata["first"] == big  # whole while it fits
    assert len(err.metadata["second"]) == MAX_METADATA_CHARS  # then cut
    total = sum(len(k) + len(v) for k, v in err.metadata.items())
    assert total <= MAX_METADATA_BYTES
    assert sum(len(value) for _, value in sent.trailing_metadata) < 8 * 1024
    assert "more_7" not in err.metadata  # left out: the budget is spent
    logged = capsys.readouterr().out
    assert "rpc.error_metadata_dropped" in logged
    assert "more_7" in logged
    assert big not in logged  # the key is logged, never the value
