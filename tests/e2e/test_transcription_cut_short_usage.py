"""A voice note's transcription cut while the provider had the whole audio is in `/usage`,
across the mesh, and one the provider never had whole is asked again and billed once.

The provider bills the audio it worked on even when its answer never comes back:

- the gateway's deadline: inference bounds the whole transcription by the reply's deadline
  (its gRPC deadline less the report grace), so a provider still at work then is
  NoAnswerInTime, estimated by the audio's duration and reported (UsageSpent, failed) before
  the reply's error. With no grace the gateway's own cut may come first; the estimate
  inference said as the upload went out whole (HelperCallPending) is then written by the
  gateway. One row either way: before, the deadline cut the reply unreported and the
  transcription, waiting on the provider's 120 s timeout, was in no row;
- the user's cancel (the bot cancels Generate, as it does when the message is deleted):
  inference can send nothing more, and the gateway writes that estimate;
- a cancel while the audio's duration is still being read (its thread held): the upload out
  whole was said at once by the audio's size, which the gateway writes; once the duration is
  read it replaces that, and the cancel then writes the duration alone (one row);
- a cancel while inference waits out a 429 the provider answered the whole upload with
  writes nothing: that attempt was refused, and inference took its estimate back;
- an upload reset midway (larger than the connection's buffers, so the client sees it cut
  short: NotReceived) reached no work: it is asked again once, and only the transcription
  that answered is billed.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import AsyncIterator, Callable, Iterator, Mapping
from contextlib import asynccontextmanager, contextmanager
from pathlib import Path
from typing import Any

import grpc
import pytest

from tests.e2e.test_transcription_cut_off_usage import (
    SECONDS,
    TRANSCRIPTIONS,
    VOICE,
    transcription_rows,
    voice_note,
)
from tzurot.gateway import domain as g
from tzurot.gateway.cancelled_usage import RelayedAnswer
from tzurot.inference import transcription_cut_off
from tzurot.runtime.errors import from_rpc_error
from tzurot.testing.cdn import local_cdn
from tzurot.testing.e2e import (
    HELPER_MODELS_ON_USER_KEY,
    USER_KEY,
    Harness,
    actor,
    converse,
    echo_mesh,
    request,
    set_key,
)
from tzurot.testing.fake_provider import FakeProvider
from tzurot.testing.postgres import DatabaseFactory
from tzurot.v1 import common_pb2 as common
from tzurot.v1 import gateway_pb2 as gw

pytestmark = pytest.mark.e2e

DEADLINE = 8.0
"""The gateway's deadline for the reply: inference's ends 2 s (a quarter) before it."""
BIG = bytes(20 * 1024 * 1024)
"""Far larger than what a loopback connection buffers: an upload reset midway is seen cut
short by the client (uploads.py)."""
WORKING = 60.0
"""How long the provider works on a transcription: longer than any test waits."""


@pytest.fixture
async def cdn() -> AsyncIterator[str]:
    async with local_cdn({"big.ogg": (BIG, "audio/ogg"), ".ogg": (VOICE, "audio/ogg")}) as url:
        yield url


@asynccontextmanager
async def mesh(
    fresh_database: DatabaseFactory,
    tmp_path: Path,
    *,
    gateway: Mapping[str, Any] | None = None,
    inference: Mapping[str, Any] | None = None,
) -> AsyncIterator[Harness]:
    async with (
        FakeProvider(valid_keys={USER_KEY}, any_model=True) as provider,
        echo_mesh(
            fresh_database(),
            tmp_path,
            provider=provider,
            gateway=gateway,
            inference={**HELPER_MODELS_ON_USER_KEY, **(inference or {})},
        ) as h,
    ):
        await set_key(h)
        yield h


async def rows_soon(h: Harness) -> list[Any]:
    """The transcription rows, once there are any (the gateway writes a cancel's a moment
    after the bot went away), or none within 30 s."""
    for _ in range(600):
        rows = await transcription_rows(h)
        if rows:
            return rows
        await asyncio.sleep(0.05)
    return []


def gateway_keeps(monkeypatch: pytest.MonkeyPatch) -> asyncio.Queue[g.HelperCallPending]:
    """Each HelperCallPending the gateway keeps for a cut (RelayedAnswer), as it keeps it."""
    kept: asyncio.Queue[g.HelperCallPending] = asyncio.Queue()
    keep = RelayedAnswer.helper_call_pending

    def keeping(relayed: RelayedAnswer, pending: g.HelperCallPending) -> None:
        keep(relayed, pending)
        kept.put_nowait(pending)

    monkeypatch.setattr(RelayedAnswer, "helper_call_pending", keeping)
    return kept


async def kept_until(
    kept: asyncio.Queue[g.HelperCallPending],
    matches: Callable[[g.HelperCallPending], bool],
    what: str,
    within: float = 30.0,
) -> g.HelperCallPending:
    """The first HelperCallPending the gateway keeps (from now on, those before passed
    over) that `matches`: what a cut then writes, the gateway having it (inference says it
    as the provider gets the request, and it travels to the gateway meanwhile)."""
    try:
        async with asyncio.timeout(within):
            while not matches(pending := await kept.get()):
                pass
    except TimeoutError:
        raise AssertionError(f"the gateway kept no HelperCallPending {what}") from None
    return pending


def by_its_duration(pending: g.HelperCallPending) -> bool:
    """The transcription's estimate by the audio's duration (read), not by its size."""
    return [(c.request_type, c.estimated) for c in pending.calls] == [
        ("transcription", True)
    ] and pending.calls[0].audio_seconds == pytest.approx(SECONDS, abs=0.05)


def taken_back(pending: g.HelperCallPending) -> bool:
    """The estimate taken back: the attempt was refused (nothing billed)."""
    return not pending.calls


def assert_estimated(rows: list[Any]) -> None:
    (row,) = rows
    assert (row.provider, row.model) == ("openrouter", "whisper-1")
    assert (row.failed, row.estimated) == (True, True)
    assert row.audio_seconds == pytest.approx(SECONDS, abs=0.05)
    assert (row.input_tokens, row.output_tokens) == (0, 0)


@pytest.mark.parametrize("grace", [None, 0.0], ids=["inference_reports", "gateway_cuts"])
async def test_a_transcription_cut_by_the_deadline_is_estimated_by_its_duration(
    fresh_database: DatabaseFactory, tmp_path: Path, cdn: str, grace: float | None
) -> None:
    settings: dict[str, float] = {"provider_max_retries": 0}
    if grace is not None:
        settings["report_grace_seconds"] = grace
    async with mesh(
        fresh_database,
        tmp_path,
        gateway={"generate_deadline_seconds": DEADLINE},
        inference=settings,
    ) as h:
        h.provider.transcription_delay = WORKING
        with pytest.raises(grpc.aio.AioRpcError) as caught:
            _ = [e async for e in h.bot.Generate(voice_note(cdn))]
        if grace is None:  # inference's own error, within the grace
            assert from_rpc_error(caught.value).reason == "PROVIDER_UNAVAILABLE"
        assert len(h.provider.transcription_requests()) == 1
        assert_estimated(await rows_soon(h))
        reply = await h.bot.GetUsage(gw.GetUsageRequest(actor=actor(), period=gw.USAGE_PERIOD_DAY))
        (heard,) = [u for u in reply.totals if u.request_type == "transcription"]
        assert (heard.requests, heard.failed_requests, heard.estimated_requests) == (1, 1, 1)


async def test_a_transcription_cut_by_the_users_cancel_is_estimated_by_its_duration(
    fresh_database: DatabaseFactory, tmp_path: Path, cdn: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    kept = gateway_keeps(monkeypatch)
    async with mesh(fresh_database, tmp_path) as h:
        h.provider.transcription_delay = WORKING
        call = h.bot.Generate(voice_note(cdn))
        first = await call.read()
        assert isinstance(first, gw.GenerateResponse)
        assert first.HasField("accepted")
        await kept_until(kept, by_its_duration, "of the audio's duration")
        call.cancel()  # the message was deleted
        assert_estimated(await rows_soon(h))
        assert not h.provider.chat_requests()  # no clean-up, no answer


async def test_a_cancel_while_a_refused_transcription_waits_records_nothing(
    fresh_database: DatabaseFactory, tmp_path: Path, cdn: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The provider had the whole upload and answered 429 with a Retry-After that fits:
    inference waits to ask again, having taken back what it said the call may bill."""
    kept = gateway_keeps(monkeypatch)
    async with mesh(fresh_database, tmp_path) as h:
        h.provider.fail_next(429, retry_after=15, path=TRANSCRIPTIONS)
        call = h.bot.Generate(voice_note(cdn))
        await call.read()
        await kept_until(kept, taken_back, "taking the estimate back")
        assert h.provider.transcription_requests()
        call.cancel()
        await asyncio.sleep(1.0)  # the cancel's writes, had there been any
        assert await transcription_rows(h) == []
        assert len(h.provider.transcription_requests()) == 1  # never asked again


async def test_an_upload_the_provider_never_had_whole_is_asked_again_and_billed_once(
    fresh_database: DatabaseFactory, tmp_path: Path, cdn: str
) -> None:
    async with mesh(fresh_database, tmp_path) as h:
        h.provider.reset_transcription_uploads = 1
        req = request("")
        req.attachments.append(
            common.Attachment(
                url=f"{cdn}/big.ogg?ex=1",
                content_type="audio/ogg",
                filename="big.ogg",
                size_bytes=len(BIG),
            )
        )
        events, _ = await converse(h, req)
        assert events[-1].HasField("finished")
        assert h.provider.reset_transcription_uploads == 0  # the first upload was reset
        (heard,) = h.provider.transcription_requests()  # the second, read whole
        assert heard.body["file_size"] == len(BIG)
        (row,) = await transcription_rows(h)
        assert (row.failed, row.estimated) == (False, False)
        assert row.audio_seconds == h.provider.transcript_seconds  # the provider's own count


@contextmanager
def duration_unread() -> Iterator[threading.Event]:
    """Holds the thread that reads audio durations (a stuck FFmpeg parse, say) until the event
    is set, and lets it take that long: no duration is read meanwhile."""
    free = threading.Event()
    held = transcription_cut_off._ESTIMATES.submit(free.wait, 30)
    try:
        yield free
    finally:
        free.set()
        held.result(30)


Call = grpc.aio.UnaryStreamCall[gw.GenerateRequest, gw.GenerateResponse]


@asynccontextmanager
async def sent_while_duration_unread(
    h: Harness, cdn: str
) -> AsyncIterator[tuple[Call, threading.Event]]:
    """A voice note sent, its first reply read and its transcription at work (WORKING), while
    its duration is unread (`duration_unread`) until the event is set or the block ends."""
    h.provider.transcription_delay = WORKING
    with duration_unread() as free:
        call = h.bot.Generate(voice_note(cdn))
        await call.read()
        yield call, free


async def seconds_kept(kept: asyncio.Queue[g.HelperCallPending]) -> float:
    """The transcription's seconds in the next HelperCallPending the gateway keeps."""
    pending = await asyncio.wait_for(kept.get(), 10)
    (heard,) = pending.calls
    assert (heard.request_type, heard.estimated) == ("transcription", True)
    return heard.audio_seconds


BY_SIZE = transcription_cut_off.size_estimate(len(VOICE), "ogg")
"""The voice note's seconds by its size, at a typical bitrate: not its duration."""


async def test_a_cancel_before_the_duration_is_read_counts_the_audio_by_its_size(
    fresh_database: DatabaseFactory, tmp_path: Path, cdn: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(transcription_cut_off, "ESTIMATE_TIME_LIMIT", 30.0)
    kept = gateway_keeps(monkeypatch)
    async with mesh(fresh_database, tmp_path) as h:
        async with sent_while_duration_unread(h, cdn) as (call, _):
            assert await seconds_kept(kept) == BY_SIZE != pytest.approx(SECONDS, abs=0.05)
            call.cancel()  # the message was deleted while the duration is read
            (row,) = await rows_soon(h)
        assert (row.failed, row.estimated, row.audio_seconds) == (True, True, BY_SIZE)
        assert len(h.provider.transcription_requests()) == 1
        reply = await h.bot.GetUsage(gw.GetUsageRequest(actor=actor(), period=gw.USAGE_PERIOD_DAY))
        (heard,) = [u for u in reply.totals if u.request_type == "transcription"]
        assert (heard.requests, heard.failed_requests, heard.estimated_requests) == (1, 1, 1)
        assert heard.audio_seconds == pytest.approx(BY_SIZE)


async def test_the_duration_once_read_replaces_the_size_and_is_counted_alone(
    fresh_database: DatabaseFactory, tmp_path: Path, cdn: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(transcription_cut_off, "ESTIMATE_TIME_LIMIT", 30.0)
    kept = gateway_keeps(monkeypatch)
    async with mesh(fresh_database, tmp_path) as h:
        async with sent_while_duration_unread(h, cdn) as (call, free):
            assert await seconds_kept(kept) == BY_SIZE
            free.set()  # the duration is read now
            assert await seconds_kept(kept) == pytest.approx(SECONDS, abs=0.05)
        call.cancel()
        assert_estimated(await rows_soon(h))  # one row: the duration, not both
