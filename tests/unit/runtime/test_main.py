"""run_service() in a real child process: exit codes and the one-line startup failure."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap

import pytest

from tzurot.runtime.startgate import sigint_held


def service_script(body: str) -> list[str]:
    """Our own interpreter running a service whose main is `body`."""
    script = textwrap.dedent(
        """
        from tzurot.runtime.config import ServiceSettings
        from tzurot.runtime.errors import StartupError
        from tzurot.runtime.main import run_service

        async def main() -> None:
        {body}

        run_service("gateway", main)
        """
    ).format(body=textwrap.indent(textwrap.dedent(body), "    "))
    return [sys.executable, "-c", script]


def clean_env(**env: str) -> dict[str, str]:
    return {**{k: v for k, v in os.environ.items() if not k.startswith("TZUROT_")}, **env}


def run(body: str, **env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(  # our own interpreter running our own script
        service_script(body),
        env=clean_env(**env),
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def test_clean_exit() -> None:
    done = run("return None")
    assert (done.returncode, done.stderr) == (0, "")


def test_startup_error_is_one_line_and_exit_2() -> None:
    done = run('raise StartupError("TLS certificate not found: /x/tls.crt (run `tzurot certs`)")')
    assert done.returncode == 2
    assert done.stderr == (
        "tzurot-gateway: cannot start: TLS certificate not found: /x/tls.crt (run `tzurot certs`)\n"
    )


def test_invalid_settings_name_the_env_vars() -> None:
    done = run("ServiceSettings.load()", TZUROT_GRACE_SECONDS="soon")
    assert done.returncode == 2
    assert done.stderr.splitlines() == [
        "tzurot-gateway: cannot start: TZUROT_TLS_DIR is not set; "
        "TZUROT_GRACE_SECONDS: Input should be a valid number, unable to parse string as a number"
    ]


SELF_SIGINT = """
import asyncio, os, signal
os.kill(os.getpid(), signal.SIGINT)
await asyncio.Event().wait()
"""


@pytest.mark.parametrize("how", ["raise KeyboardInterrupt", SELF_SIGINT])
def test_interrupt_exits_quietly_with_130(how: str) -> None:
    done = run(how)
    assert (done.returncode, done.stderr) == (130, "")


def test_a_ctrl_c_held_since_the_spawn_is_taken_quietly_before_main() -> None:
    """`tzurot up` spawns its services with SIGINT held (`sigint_held`): the terminal's
    Ctrl-C, sent as the child's interpreter starts (no handler of ours could take it yet),
    waits until run_service takes it, and the service ends with 130, its main never run."""
    with sigint_held():
        child = subprocess.Popen(  # our own interpreter running our own script
            service_script('print("main ran")'),
            env=clean_env(),
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
    child.send_signal(signal.SIGINT)  # its interpreter is only starting
    out, err = child.communicate(timeout=60)
    assert (child.returncode, out, err) == (130, "", "")


def test_an_unparsable_complex_setting_is_one_line() -> None:
    from pydantic_settings import SettingsError

    from tzurot.runtime.main import describe_unparsable_setting

    err = SettingsError(
        'error parsing value for field "allowed_callers" from source "EnvSettingsSource"'
    )
    assert describe_unparsable_setting(err) == "TZUROT_ALLOWED_CALLERS is not valid JSON"
    assert describe_unparsable_setting(SettingsError("odd")) == "a setting could not be parsed"
