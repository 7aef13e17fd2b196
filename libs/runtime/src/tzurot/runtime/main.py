"""Process entry point for a service: run its async main, fail at start in one clear line.

A service spawned behind a start gate (`startgate.py`, e.g. by `tzurot up`) waits there
first, its modules already imported; it takes SIGINT (held or quietly handled until then)
as it enters `run_service`.
"""

from __future__ import annotations

import asyncio
import re
import signal
import sys
from collections.abc import Awaitable, Callable
from typing import NoReturn

from pydantic import ValidationError
from pydantic_settings import SettingsError

from tzurot.runtime.errors import StartupError
from tzurot.runtime.startgate import take_sigint, wait_at_gate

EXIT_STARTUP = 2
EXIT_INTERRUPTED = 130


def run_service(name: str, main: Callable[[], Awaitable[None]]) -> NoReturn:
    """Runs `main()`; a StartupError or invalid settings print one line and exit 2."""
    prog = name if name.startswith("tzurot-") else f"tzurot-{name}"
    try:
        # Python's own handler from here (asyncio.run builds on it); a Ctrl-C held since a
        # launcher spawned this process (startgate.py) is a KeyboardInterrupt here: exit 130.
        take_sigint(signal.default_int_handler)
        if not wait_at_gate():
            sys.exit(0)  # the launcher gave up before this service was needed
        asyncio.run(_run(main))
    except StartupError as exc:
        _die(prog, str(exc))
    except ValidationError as exc:
        _die(prog, describe_settings_error(exc))
    except SettingsError as exc:  # e.g. a dict/set setting whose env value is not JSON
        _die(prog, describe_unparsable_setting(exc))
    except KeyboardInterrupt:
        sys.exit(EXIT_INTERRUPTED)
    sys.exit(0)


async def _run(main: Callable[[], Awaitable[None]]) -> None:
    await main()


def _die(prog: str, reason: str) -> NoReturn:
    print(f"{prog}: cannot start: {reason}", file=sys.stderr)
    sys.exit(EXIT_STARTUP)


def describe_settings_error(exc: ValidationError, prefix: str = "TZUROT_") -> str:
    """'TZUROT_TLS_DIR is not set; TZUROT_GRACE_SECONDS: Input should be a valid number'.

    Only the env var names and pydantic's messages: never the input values (secrets).
    """
    missing: list[str] = []
    invalid: list[str] = []
    for error in exc.errors(include_input=False, include_url=False):
        var = prefix + "__".join(str(part) for part in error["loc"]).upper()
        if error["type"] == "missing":
            missing.append(var)
        else:
            invalid.append(f"{var}: {error['msg']}")
    parts = []
    if missing:
        verb = "is" if len(missing) == 1 else "are"
        parts.append(f"{', '.join(missing)} {verb} not set")
    parts.extend(invalid)
    return "; ".join(parts) or "invalid settings"


def describe_unparsable_setting(exc: SettingsError, prefix: str = "TZUROT_") -> str:
    """'TZUROT_PROVIDERS is not valid JSON' from pydantic-settings' parse error (no values)."""
    match = re.search(r'field "([^"]+)"', str(exc))
    if match is None:
        return "a setting could not be parsed"
    return f"{prefix}{match.group(1).upper()} is not valid JSON"
