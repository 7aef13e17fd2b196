"""`tzurot chat` shows all an answer carries: its text, its footer, and its files saved into a
folder; the turn is confirmed delivered only once the files are saved (an image paid for and
never shown is not recorded as delivered)."""

from __future__ import annotations

import io
from pathlib import Path
from typing import Any

import pytest

from tzurot.cli.answer_files import FilesNotSaved
from tzurot.cli.chat import send_message, stream_answer
from tzurot.cli.gateway_client import CliUser, GatewayClient
from tzurot.cli.settings import CliSettings
from tzurot.runtime.tls import generate_dev_pki
from tzurot.v1 import common_pb2 as common
from tzurot.v1 import gateway_pb2 as gw

PNG = b"\x89PNG\r\n\x1a\nmoon"


class Answered:
    """Generate's stream: accepted, the text, finished with a footer and an image; records
    ConfirmDelivery (and where the image was at that moment)."""

    def __init__(self, files_dir: Path, footer: str = "openrouter/fake/lilith") -> None:
        self.files_dir = files_dir
        self.footer = footer
        self.confirmed: list[gw.ConfirmDeliveryRequest] = []
        self.saved_before_confirm: list[str] = []

    def Generate(self, *_: Any, **__: Any) -> Any:
        events = [
            gw.GenerateResponse(
                accepted=gw.JobAccepted(
                    job_id="job-7", personality=common.Personality(display_name="Lilith")
                )
            ),
            gw.GenerateResponse(chunk=gw.TextChunk(text="Here is your moon.")),
            gw.GenerateResponse(
                finished=gw.GenerationFinished(
                    job_id="job-7",
                    content="Here is your moon.",
                    footer=self.footer,
                    files=[
                        common.GeneratedFile(
                            filename="image-1.png", content_type="image/png", data=PNG
                        )
                    ],
                )
            ),
        ]

        async def stream() -> Any:
            for event in events:
                yield event

        return stream()

    def ConfirmDelivery(self, request: gw.ConfirmDeliveryRequest, **_: Any) -> Any:
        self.confirmed.append(request)
        if self.files_dir.is_dir():
            self.saved_before_confirm = sorted(p.name for p in self.files_dir.iterdir())

        async def reply() -> gw.ConfirmDeliveryResponse:
            return gw.ConfirmDeliveryResponse()

        return reply()


@pytest.fixture
def settings(tmp_path: Path) -> CliSettings:
    generate_dev_pki(tmp_path / "pki", ["gateway", "cli"])
    return CliSettings(cli_tls_dir=tmp_path / "pki" / "cli")


async def answer(settings: CliSettings, stub: Answered, files_dir: Path) -> str:
    out = io.StringIO()
    async with GatewayClient(settings) as client:
        client.stub = stub  # type: ignore[assignment]
        await stream_answer(
            client, CliUser("dana"), "lilith", "draw me a moon", out, files_dir=files_dir
        )
    return out.getvalue()


async def test_the_footer_and_the_saved_files_follow_the_text(
    settings: CliSettings, tmp_path: Path
) -> None:
    files = tmp_path / "images"
    stub = Answered(files)
    shown = await answer(settings, stub, files)
    assert shown == (
        f"Lilith> Here is your moon.\nopenrouter/fake/lilith\nfile: {files / 'image-1.png'}\n"
    )
    assert (files / "image-1.png").read_bytes() == PNG
    assert [c.job_id for c in stub.confirmed] == ["job-7"]
    assert stub.saved_before_confirm == ["image-1.png"]  # saved, then confirmed


async def test_the_footer_names_the_cli_command_that_adds_a_key(
    settings: CliSettings, tmp_path: Path
) -> None:
    """A file left unread for want of a key: its footer names Discord's /wallet set, which in
    the CLI is `tzurot wallet set` (review 345 L4, 353 L7)."""
    files = tmp_path / "images"
    unread = "image not read: add a key for openrouter with /wallet set openrouter"
    shown = await answer(settings, Answered(files, footer=f"m/x · {unread}"), files)
    assert shown.splitlines()[1] == (
        "m/x · image not read: add a key for openrouter with tzurot wallet set openrouter"
    )


async def test_files_that_cannot_be_saved_leave_the_turn_unconfirmed(
    settings: CliSettings, tmp_path: Path
) -> None:
    blocker = tmp_path / "a-file"
    blocker.write_text("not a folder")
    stub = Answered(blocker / "images")
    with pytest.raises(FilesNotSaved) as raised:
        await answer(settings, stub, blocker / "images")
    assert raised.value.job_id == "job-7"
    assert stub.confirmed == []


async def test_in_the_conversation_unsaved_files_are_told_and_the_turn_not_kept(
    settings: CliSettings, tmp_path: Path
) -> None:
    """The REPL's turn: the reason on the terminal, False (the conversation goes on)."""
    blocker = tmp_path / "a-file"
    blocker.write_text("not a folder")
    stub = Answered(blocker / "images")
    out = io.StringIO()
    async with GatewayClient(settings) as client:
        client.stub = stub  # type: ignore[assignment]
        sent = await send_message(
            client, CliUser("dana"), "lilith", "draw", out, files_dir=blocker / "images"
        )
    assert sent is False
    said = out.getvalue().splitlines()
    assert said[:2] == ["Lilith> Here is your moon.", "openrouter/fake/lilith"]
    assert said[2].startswith(f"cannot save the answer's files in {blocker / 'images'}: ")
    assert said[2].endswith(
        "the answer was not confirmed as delivered, so it is not kept in the conversation's "
        "history (job job-7); choose another folder with --files-dir"
    )
    assert stub.confirmed == []
