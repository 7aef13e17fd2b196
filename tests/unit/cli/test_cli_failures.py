"""The `tzurot` command as scripts and users meet it when something is wrong: one line on
standard error, no traceback, an exit code per kind of failure (1 refused, 2 usage or local
setup, 3 the mesh unreachable), and an API key that is never echoed.

Each test runs the real command in a process against the fake gateway of conftest.py.
"""

from __future__ import annotations

import os
import shlex
import subprocess
import sys
from pathlib import Path

import pytest
import typer.main

from tests.unit.cli.conftest import PROVIDER_DOWN, Gateway
from tzurot.cli.__main__ import app
from tzurot.cli.mesh import MeshLayout, _print_ready, client_env
from tzurot.cli.settings import CliSettings
from tzurot.cli.speech import CLI_COMMANDS
from tzurot.testing.processes import free_port

PLANTED_KEY = "sk-or-v1-planted-cli-secret-7f3a"


def tzurot(
    *args: str, env: dict[str, str], stdin: str = "", cwd: Path | None = None
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(  # our own interpreter and module, no shell
        [sys.executable, "-m", "tzurot.cli", *args],
        env=env,
        input=stdin,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
        cwd=cwd,
        start_new_session=True,  # no controlling terminal: getpass reads standard input
    )


def one_line(result: subprocess.CompletedProcess[str], code: int) -> str:
    """The single `tzurot: ...` line on stderr of a run that exited `code`."""
    assert result.returncode == code, result.stdout + result.stderr
    assert "Traceback" not in result.stderr
    err = result.stderr.strip()
    assert err.startswith("tzurot: "), err
    assert "\n" not in err, err
    return err


def test_chat_message_prints_the_answer_alone(fake_gateway: Gateway) -> None:
    result = tzurot("chat", "Sage", "-m", "hello", env=fake_gateway.env)
    assert result.returncode == 0, result.stderr
    assert result.stdout == "Sage> echo: hello\n"
    assert result.stderr == ""


def test_chat_message_refused_is_one_line_on_stderr_exit_1(fake_gateway: Gateway) -> None:
    result = tzurot("chat", "Nobody", "-m", "hello", env=fake_gateway.env)
    err = one_line(result, 1)
    assert err == "tzurot: [not_found] no personality named 'Nobody'"
    assert result.stdout == ""  # `answer=$(tzurot chat ... -m ...)` never holds an error


def test_a_provider_down_is_refused_not_unreachable(fake_gateway: Gateway) -> None:
    """UNAVAILABLE from the gateway itself (with its status) is an answer: exit 1, not 3."""
    result = tzurot("chat", "Sage", "-m", PROVIDER_DOWN, env=fake_gateway.env)
    err = one_line(result, 1)
    assert "[unavailable] openrouter is unreachable" in err


@pytest.mark.parametrize(
    "args", [["chat", "Sage", "-m", "hi"], ["wallet", "list"], ["wallet", "test", "openai"]]
)
def test_a_gateway_not_running_is_exit_3_naming_where_and_what_to_do(
    fake_gateway: Gateway, args: list[str]
) -> None:
    addr = f"127.0.0.1:{free_port()}"
    result = tzurot(*args, env={**fake_gateway.env, "TZUROT_GATEWAY_ADDR": addr})
    err = one_line(result, 3)
    assert f"cannot reach the gateway at {addr} (TZUROT_GATEWAY_ADDR)" in err
    assert "tzurot up" in err
    assert "Connection refused" in err
    assert "failed to connect to all addresses" not in err  # no gRPC jargon
    assert result.stdout == ""


def test_certificates_of_another_mesh_are_named(fake_gateway: Gateway, tmp_path: Path) -> None:
    generate = tzurot("certs", "--out", str(tmp_path / "other"), env=fake_gateway.env)
    assert generate.returncode == 0, generate.stderr
    env = {**fake_gateway.env, "TZUROT_CLI_TLS_DIR": str(tmp_path / "other" / "cli")}
    err = one_line(tzurot("wallet", "list", env=env), 3)
    assert "are its certificates this mesh's (TZUROT_CLI_TLS_DIR)?" in err


def test_a_malformed_setting_is_one_line_exit_2(fake_gateway: Gateway) -> None:
    env = {**fake_gateway.env, "TZUROT_RPC_TIMEOUT_SECONDS": "soon"}
    for args in (["chat", "Sage", "-m", "hi"], ["chat", "Sage"], ["wallet", "list"]):
        err = one_line(tzurot(*args, env=env), 2)
        assert "TZUROT_RPC_TIMEOUT_SECONDS" in err


def test_missing_certificates_are_said_before_the_key_is_asked_for(
    fake_gateway: Gateway, tmp_path: Path
) -> None:
    env = {**fake_gateway.env, "TZUROT_CLI_TLS_DIR": str(tmp_path / "nowhere")}
    result = tzurot("wallet", "set", "openrouter", env=env, stdin=PLANTED_KEY + "\n")
    err = one_line(result, 2)
    assert "TLS CA certificate not found" in err
    assert "API key" not in result.stderr  # no prompt for a key that could not be stored
    assert fake_gateway.recorded.keys == []


def test_wallet_set_reads_the_key_from_stdin_and_never_shows_it(fake_gateway: Gateway) -> None:
    result = tzurot(
        "wallet", "set", "openrouter", "--key-stdin", env=fake_gateway.env, stdin=PLANTED_KEY
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout == "Stored your openrouter key (…7f3a).\n"
    assert PLANTED_KEY not in result.stdout + result.stderr
    assert ("openrouter", PLANTED_KEY) in fake_gateway.recorded.keys


def test_wallet_set_says_what_a_restricted_key_lacks(fake_gateway: Gateway) -> None:
    result = tzurot(
        "wallet", "set", "elevenlabs", "--key-stdin", env=fake_gateway.env, stdin=PLANTED_KEY
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout == (
        "Stored your elevenlabs key (…7f3a).\n"
        "elevenlabs restricts this key: it lacks voices_read; what needs it will be refused "
        "(allow it for the key there, or store another key).\n"
    )
    assert PLANTED_KEY not in result.stdout + result.stderr


def test_wallet_set_says_a_key_stored_unchecked_and_how_to_test_it(fake_gateway: Gateway) -> None:
    """The gateway's `unchecked` (Brave Search has no free check); one without it is silent."""
    result = tzurot(
        "wallet", "set", "brave", "--key-stdin", env=fake_gateway.env, stdin=PLANTED_KEY
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout == (
        "Stored your brave key (…7f3a).\n"
        "It was stored unchecked (brave has no free check): its first use checks it; "
        "`tzurot wallet test brave` checks it now, at the cost of one call.\n"
    )
    assert PLANTED_KEY not in result.stdout + result.stderr
    checked = tzurot(
        "wallet", "set", "openai", "--key-stdin", env=fake_gateway.env, stdin=PLANTED_KEY
    )
    assert checked.stdout == "Stored your openai key (…7f3a).\n"


def test_an_empty_key_is_refused_here(fake_gateway: Gateway) -> None:
    before = list(fake_gateway.recorded.keys)
    result = tzurot("wallet", "set", "openrouter", "--key-stdin", env=fake_gateway.env)
    assert one_line(result, 2) == "tzurot: no key given; nothing stored"
    assert fake_gateway.recorded.keys == before


def test_wallet_test_says_why_a_key_does_not_work(fake_gateway: Gateway) -> None:
    result = tzurot("wallet", "test", "openrouter", env=fake_gateway.env)
    assert result.returncode == 1, result.stderr
    assert result.stdout == (
        "openrouter: openrouter rejected the key; replace it with tzurot wallet set openrouter\n"
    )


def test_every_command_the_cli_names_in_advice_exists() -> None:
    """The CLI rewrites `/wallet test` in a service's advice as `tzurot wallet test`: each such
    command must exist, or the advice sends the user to "No such command"."""
    root = typer.main.get_command(app)
    for words in CLI_COMMANDS:
        command = root
        for word in words.split():
            assert hasattr(command, "commands"), words
            assert word in command.commands, f"tzurot {words} does not exist"
            command = command.commands[word]


def test_certificates_that_cannot_be_written_are_one_line(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("")
    result = tzurot("certs", "--out", str(blocker / "certs"), env=dict(os.environ))
    assert "cannot write certificates" in one_line(result, 2)


def test_the_banner_of_a_mesh_elsewhere_says_how_to_reach_it(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """`tzurot up --data-dir X --base-port P`: the other commands read TZUROT_* to find it;
    the banner's exports point them at it (and a mesh at the defaults needs none)."""
    assert client_env(MeshLayout(Path(".data"))) == {}
    layout = MeshLayout(tmp_path / "my data", base_port=25051)
    _print_ready(layout, ["gateway"], ["Sage"], 1.0, bot=False)
    lines = capsys.readouterr().out.strip().splitlines()
    assert lines[-1].startswith("Try: make chat")
    exports = next(line for line in lines if "export " in line).split("export ", 1)[1]
    env = dict(item.split("=", 1) for item in shlex.split(exports))
    settings = CliSettings.from_env(env)
    assert settings.gateway_addr == "127.0.0.1:25051"
    assert settings.cli_tls_dir == (tmp_path / "my data" / "certs" / "cli").resolve()
    assert env["TZUROT_KEYVAULT_ADDR"] == "127.0.0.1:25054"  # `tzurot admin` too

    _print_ready(MeshLayout(Path(".data")), ["gateway"], ["Sage"], 1.0, bot=False)
    assert "export" not in capsys.readouterr().out
