"""What the mesh sends (a model's answer and reasoning, names, footers, error messages) reaches
the terminal without its controls: no escape sequence (clear screen, window title, OSC 52
clipboard write, OSC 8 link), no bell, no carriage return to print over a line, and Unicode
text and emoji as they were."""

from __future__ import annotations

import io
import re
from pathlib import Path
from typing import Any

import grpc
import pytest

from tests.unit.cli.conftest import Gateway
from tests.unit.cli.test_cli_failures import tzurot
from tzurot.cli.chat import stream_answer
from tzurot.cli.gateway_client import CliUser, GatewayClient
from tzurot.cli.settings import CliSettings
from tzurot.cli.speech import rpc_failure
from tzurot.cli.terminal_text import MAX_HELD_CHARS, StreamFilter, one_line, printable
from tzurot.runtime.tls import generate_dev_pki
from tzurot.v1 import common_pb2 as common
from tzurot.v1 import gateway_pb2 as gw

CLEAR = "\x1b[2J\x1b[H"
TITLE = "\x1b]0;pwned\x07"
CLIPBOARD = "\x1b]52;c;cm0gLXJmIH4=\x1b\\"
LINK = "\x1b]8;;https://evil.example\x07click\x1b]8;;\x07"
EIGHT_BIT = "\x9b31m\x9d0;t\x9c"
RESET = "\x1bc"
CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f]")
"""Any control character but newline and tab."""


def test_escape_sequences_and_controls_are_removed_whole() -> None:
    assert printable(f"{CLEAR}hello{TITLE} there") == "hello there"
    assert printable(f"copy{CLIPBOARD} me") == "copy me"
    assert printable(LINK) == "click"
    assert printable(f"{EIGHT_BIT}red") == "red"
    assert printable(f"{RESET}bell\x07\x00\x7f!") == "bell!"
    assert printable("I paid you\rI owe you nothing") == "I paid youI owe you nothing"
    assert printable("a\x1b[1;31") == "a1;31"  # unfinished: its ESC goes all the same


def test_unicode_newlines_and_tabs_stay() -> None:
    text = "Шалом, 世界! 👩‍👩‍👧 ✨Luna✨ (e\u0301)\n\tindented\u2028next"
    assert printable(text) == text
    assert one_line("two\nlines\tand a tab") == "two lines and a tab"


def test_a_sequence_cut_between_chunks_is_removed_whole() -> None:
    pieces = ["hello \x1b", "[2", "J world \x1b]52;c;", "cm0g", "LXJmIH4=\x1b", "\\ end\x1b"]
    text = StreamFilter()
    shown = [text.feed(piece) for piece in pieces] + [text.finish()]
    assert "".join(shown) == "hello  world  end"
    assert shown[0] == "hello "  # what is plain text is printed at once


def test_a_sequence_never_finished_is_not_held_forever() -> None:
    text = StreamFilter()
    assert text.feed("\x1b]52;c;") == ""
    long = "A" * MAX_HELD_CHARS
    assert not CONTROL.search(text.feed(long) + text.feed("tail") + text.finish())


class Hostile:
    """Generate's stream as a model could make it: controls in the name, the chunks (a
    sequence cut between two), the reasoning and the footer."""

    def Generate(self, *_: Any, **__: Any) -> Any:
        events = [
            gw.GenerateResponse(
                accepted=gw.JobAccepted(
                    job_id="job-1",
                    personality=common.Personality(display_name=f"Lilith{TITLE}\n🌙"),
                )
            ),
            gw.GenerateResponse(chunk=gw.TextChunk(text=f"{CLEAR}Hi ✨\x1b")),
            gw.GenerateResponse(chunk=gw.TextChunk(text="]52;c;cm0gLXJmIH4=")),
            gw.GenerateResponse(chunk=gw.TextChunk(text="\x07 there\x07\rYou owe me")),
            gw.GenerateResponse(
                finished=gw.GenerationFinished(
                    job_id="job-1",
                    reasoning=f"think{LINK}\n{EIGHT_BIT}harder",
                    footer=f"openrouter/x{RESET}\nfile: /etc/passwd",
                )
            ),
        ]

        async def stream() -> Any:
            for event in events:
                yield event

        return stream()

    def ConfirmDelivery(self, *_: Any, **__: Any) -> Any:
        async def reply() -> gw.ConfirmDeliveryResponse:
            return gw.ConfirmDeliveryResponse()

        return reply()


async def test_a_hostile_answer_reaches_the_screen_without_controls(tmp_path: Path) -> None:
    generate_dev_pki(tmp_path / "pki", ["gateway", "cli"])
    out = io.StringIO()
    async with GatewayClient(CliSettings(cli_tls_dir=tmp_path / "pki" / "cli")) as client:
        client.stub = Hostile()  # type: ignore[assignment]
        await stream_answer(
            client, CliUser("dana"), "lilith", "hi", out, files_dir=tmp_path, show_reasoning=True
        )
    assert out.getvalue() == (
        "Lilith 🌙> Hi ✨ thereYou owe me\n"
        "reasoning:\n  thinkclick\n  harder\n"
        "openrouter/x file: /etc/passwd\n"  # the footer stays one line: no forged line
    )


def test_an_error_message_from_the_mesh_is_one_clean_line() -> None:
    said = f"no personality named {CLEAR}Sage{CLIPBOARD}\ntzurot: all good\x07"
    failed = grpc.aio.AioRpcError(
        grpc.StatusCode.NOT_FOUND, grpc.aio.Metadata(), grpc.aio.Metadata(), details=said
    )
    line, code = rpc_failure(failed, "the gateway")
    assert (line, code) == ("[not_found] no personality named Sage tzurot: all good", 1)


@pytest.mark.parametrize("personality", [f"Sage{TITLE}{CLEAR}", f"Sage\r{CLIPBOARD}"])
def test_chat_message_prints_no_control_on_standard_output(
    fake_gateway: Gateway, personality: str
) -> None:
    """The real command against the fake gateway, which echoes the message and names the
    personality as asked: what it sends back carries every trick."""
    message = f"hi {CLEAR}{CLIPBOARD}{LINK}\x07 safe\rEVIL 👋"
    result = tzurot("chat", personality, "-m", message, env=fake_gateway.env)
    assert result.returncode == 0, result.stderr
    assert result.stdout == "Sage> echo: hi click safeEVIL 👋\n"
    assert not CONTROL.search(result.stdout + result.stderr)


def test_wallet_replies_print_no_control(fake_gateway: Gateway) -> None:
    """The provider is echoed by the fake gateway in its replies (stored, and a test's
    detail), as a gateway could say anything there."""
    provider = f"openrouter{TITLE}"
    stored = tzurot(
        "wallet", "set", provider, "--key-stdin", env=fake_gateway.env, stdin="sk-abcd\n"
    )
    tested = tzurot("wallet", "test", provider, env=fake_gateway.env)
    assert stored.returncode == 0, stored.stderr
    assert stored.stdout.startswith("Stored your openrouter key (…abcd).")
    assert tested.stdout.startswith("openrouter: openrouter rejected the key")
    assert not CONTROL.search(stored.stdout + stored.stderr + tested.stdout + tested.stderr)
