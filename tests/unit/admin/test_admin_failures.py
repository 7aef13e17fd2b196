"""`tzurot admin` (and `python -m tzurot.admin`, what `kubectl tzurot` and the gateway pod
run) fails with one `tzurot: ...` line and an exit code, never a traceback: bad option
values and missing files are usage errors (2), missing certificates too (2), a mesh that
cannot be reached is 3. `kubectl tzurot` interrupted by Ctrl-C exits 130 quietly.
"""

from __future__ import annotations

import contextlib
import os
import socket
import ssl
import subprocess
import sys
import threading
from pathlib import Path

import pytest

from tzurot.admin import kubectl
from tzurot.runtime.tls import generate_dev_pki
from tzurot.testing.processes import free_port

ENTRY_POINTS = (["-m", "tzurot.admin"], ["-m", "tzurot.cli", "admin"])


def admin(entry: list[str], *args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(  # our own interpreter and module, no shell
        [sys.executable, *entry, *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


@pytest.fixture(scope="module")
def env(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    """Certificates present, nothing listening at any of the four addresses."""
    pki = tmp_path_factory.mktemp("pki")
    generate_dev_pki(pki, ["cli"])
    environ = {k: v for k, v in os.environ.items() if not k.startswith("TZUROT_")}
    environ["TZUROT_CLI_TLS_DIR"] = str(pki / "cli")
    for service in ("gateway", "inference", "memory", "keyvault"):
        environ[f"TZUROT_{service.upper()}_ADDR"] = f"127.0.0.1:{free_port()}"
    return environ


def no_traceback(result: subprocess.CompletedProcess[str], code: int) -> str:
    assert result.returncode == code, result.stdout + result.stderr
    assert "Traceback" not in result.stderr
    assert "─" not in result.stderr  # nor typer's boxed one
    return result.stderr


@pytest.mark.parametrize("entry", ENTRY_POINTS, ids=["python -m tzurot.admin", "tzurot admin"])
def test_missing_certificates_are_one_line_exit_2(
    entry: list[str], env: dict[str, str], tmp_path: Path
) -> None:
    missing = {**env, "TZUROT_CLI_TLS_DIR": str(tmp_path / "none")}
    err = no_traceback(admin(entry, "health", env=missing), 2)
    assert err.strip() == f"tzurot: TLS CA certificate not found: {tmp_path}/none/ca.crt " + (
        "(run `tzurot certs`)"
    )


@pytest.mark.parametrize(
    ("args", "named"),
    [
        (["usage", "--period", "year"], "'day', 'week', 'month'"),
        (["denylist", "add", "123", "--scope", "nowhere"], "'bot', 'guild', 'channel'"),
        (["personalities", "import", "/no/such/seed.yaml"], "does not exist"),
    ],
)
def test_bad_input_is_a_usage_error_exit_2(
    args: list[str], named: str, env: dict[str, str]
) -> None:
    err = no_traceback(admin(["-m", "tzurot.admin"], *args, env=env), 2)
    assert named in err


def test_a_mesh_not_running_is_exit_3(env: dict[str, str]) -> None:
    err = no_traceback(admin(["-m", "tzurot.admin"], "personalities", "list", env=env), 3)
    assert err.startswith("tzurot: [unavailable] cannot reach the mesh: ")
    assert env["TZUROT_GATEWAY_ADDR"] in err
    assert "\n" not in err.strip()


def test_kubectl_tzurot_interrupted_exits_130_quietly(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    def interrupted(args: object, env: object) -> int:
        raise KeyboardInterrupt

    monkeypatch.setattr(kubectl, "run_admin", interrupted)
    code: object = None
    try:
        kubectl.main(["--local", "health"])
    except SystemExit as exit_:
        code = exit_.code
    except KeyboardInterrupt:  # what the user sees as a traceback (and what stops pytest)
        pytest.fail("KeyboardInterrupt escaped kubectl tzurot")
    assert code == 130
    assert capsys.readouterr().err == ""


def test_certificates_of_another_mesh_are_one_line(
    env: dict[str, str], tmp_path_factory: pytest.TempPathFactory
) -> None:
    """A gateway of another mesh (another CA): our line only, not gRPC's own log of the
    failed handshake as well."""
    other = tmp_path_factory.mktemp("other")
    generate_dev_pki(other, ["gateway"])
    tls = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    tls.load_cert_chain(other / "gateway" / "tls.crt", other / "gateway" / "tls.key")
    tls.set_alpn_protocols(["h2"])
    listener = socket.create_server(("127.0.0.1", 0))
    listener.settimeout(0.2)
    done = threading.Event()

    def serve() -> None:
        while not done.is_set():
            try:
                connection, _ = listener.accept()
            except TimeoutError:
                continue
            with contextlib.suppress(OSError), connection:
                connection.settimeout(5)
                tls.wrap_socket(connection, server_side=True).close()

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    try:
        addr = f"127.0.0.1:{listener.getsockname()[1]}"
        result = admin(
            ["-m", "tzurot.admin"],
            "personalities",
            "list",
            env={**env, "TZUROT_GATEWAY_ADDR": addr},
        )
    finally:
        done.set()
        thread.join(10)
        listener.close()
    err = no_traceback(result, 3)
    assert err.startswith("tzurot: [unavailable] cannot reach the mesh"), err
    assert "CERTIFICATE_VERIFY_FAILED" in err
    assert "\n" not in err.strip(), err
