"""The README's environment tables say what the code does: each documented `TZUROT_*`
variable is a field of the settings of every service its row names, and the default the row
gives is that field's default.

A table is one whose header starts with `variable`; its row's services come from a `service`
column, a `(service)` after the names, or the header's `variable (service)`. A default is
read the way the service reads it: a `literal` is set as the variable and must give the same
value as leaving it unset (so `90` against a default of 20.0 fails); `N MiB` is that many
bytes; `unset`, `none` and `empty` mean no value; `required` means no default. One default
per name (`a` / `b`), one per service, or `service literal, …` per service. A default written
as prose must be listed in PROSE with what the code does instead.
"""

from __future__ import annotations

import dataclasses
import os
import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from pydantic import SecretStr
from pydantic_settings import BaseSettings

from tzurot.admin.connect import AdminSettings
from tzurot.bot.config import BotSettings
from tzurot.cli.settings import CliSettings
from tzurot.db.upgrade import UpgradeSettings
from tzurot.gateway.config import GatewaySettings
from tzurot.inference.config import InferenceSettings
from tzurot.keyvault.config import KeyVaultSettings
from tzurot.memory.config import MemorySettings
from tzurot.memory.consolidate import ConsolidateSettings

ROOT = Path(__file__).resolve().parents[3]
README = ROOT / "README.md"
PREFIX = "TZUROT_"

Settings = type[BaseSettings] | type[CliSettings]
SETTINGS: dict[str, tuple[Settings, ...]] = {
    "gateway": (GatewaySettings,),
    "inference": (InferenceSettings,),
    "memory": (MemorySettings,),
    "keyvault": (KeyVaultSettings,),
    "bot": (BotSettings,),
    # `tzurot` on an operator's machine, and `tzurot admin` (also run inside service pods).
    "CLI": (CliSettings, AdminSettings),
    # The migration Jobs' `python -m tzurot.db.upgrade`.
    "migrate": (UpgradeSettings,),
    # The memory-consolidation CronJob's `python -m tzurot.memory.consolidate`.
    "consolidation": (ConsolidateSettings,),
}
GROUPS = {"all": ("gateway", "inference", "memory", "keyvault", "bot")}
REQUIRED = {"TZUROT_TLS_DIR": "certs", "TZUROT_DATABASE_URL": "postgresql://localhost/tzurot"}
"""Values for the fields a service cannot start without, so its settings can be read."""
PROSE = {
    "TZUROT_MASTER_KEY": "None: one of it and TZUROT_MASTER_KEY_FILE (masterkey.py)",
    "TZUROT_MASTER_KEY_FILE": "None: one of it and TZUROT_MASTER_KEY (masterkey.py)",
    "TZUROT_PROVIDERS": "{}: added to the built-in providers (providers.py)",
    "TZUROT_EMBEDDING_MODEL_DIR": "None: the Python environment's share/tzurot/…",
    "TZUROT_GROUP_SEED": '"": one drawn per process',
    "TZUROT_CHANGELOG_PATH": "None: CHANGELOG.md of the working directory or the checkout",
    "TZUROT_CHANGELOG_URL": "the GitHub file's URL",
    "TZUROT_SHARD_GROUPS": "None: as many as TZUROT_SHARD_COUNT",
    "TZUROT_SHARD_INDEX": "None: the pod ordinal from TZUROT_POD_NAME, else 0",
    "TZUROT_SYNC_COMMANDS": "None: the process of shard index 0",
}
"""Variables whose default the README gives in words, and what the code has instead."""
NOTHING = {"unset", "none", "empty"}
UNITS = {"KiB": 1024, "MiB": 1024**2, "MB": 1000**2}

_NAME = re.compile(rf"`({PREFIX}\w+)`")
_PER_SERVICE = re.compile(r"(\w+) `([^`]*)`")
_SIZE = re.compile(r"(\d+) (" + "|".join(UNITS) + ")")


@dataclass(frozen=True)
class Documented:
    """One variable of a README row, for one service, with the default the row gives."""

    variable: str
    service: str
    default: str | None  # None: the row gives this service none of its own
    line: int
    problem: str = ""


def documented() -> Iterator[Documented]:
    lines = README.read_text().splitlines()
    header: list[str] = []
    for number, line in enumerate(lines, start=1):
        if not line.startswith("|"):
            header = []
            continue
        cells = [c.strip() for c in re.split(r"(?<!\\)\|", line.strip())[1:-1]]
        if not header:
            header = cells
            continue
        if set(line) <= {"|", "-", " ", ":"} or not header[0].startswith("variable"):
            continue
        yield from _row(header, cells, number)


def _row(header: list[str], cells: list[str], line: int) -> Iterator[Documented]:
    names = _NAME.findall(cells[0])
    if not names or len(cells) != len(header):
        yield Documented(cells[0], "", None, line, "not a row of `TZUROT_*` variables")
        return
    row = dict(zip(header, cells, strict=True))
    if "service" in row:
        services = row["service"]
    elif found := re.search(r"\((\w+)\)$", cells[0]) or re.search(r"\((\w+)\)$", header[0]):
        services = found.group(1)
    else:
        yield Documented(cells[0], "", None, line, "no service names this row")
        return
    listed = [s for name in services.split(", ") for s in GROUPS.get(name, (name,))]
    parts = row["default"].split(" / ")
    for i, name in enumerate(names):
        for j, service in enumerate(listed):
            if len(parts) == len(names):
                part = parts[i]
            elif len(names) == 1 and len(parts) == len(listed):
                part = parts[j]
            elif len(parts) == 1:
                part = parts[0]
            else:
                yield Documented(name, service, None, line, "defaults do not match names")
                continue
            yield _for_service(name, service, part, listed, line)


def _for_service(name: str, service: str, part: str, listed: list[str], line: int) -> Documented:
    """`part`, or this service's literal when it reads `gateway `a`, inference `b`…`."""
    per_service = dict(_PER_SERVICE.findall(part))
    if not per_service or _PER_SERVICE.sub("", part).strip(", "):
        return Documented(name, service, part, line)
    if not set(per_service) <= set(listed):
        return Documented(name, service, None, line, "a default of a service not listed")
    literal = per_service.get(service)
    return Documented(name, service, None if literal is None else f"`{literal}`", line)


DOCUMENTED = list(documented())


def _field(settings: Settings, name: str) -> Any:
    """The field (pydantic's FieldInfo, or a dataclass field), None when there is none."""
    if dataclasses.is_dataclass(settings):
        return {f.name: f for f in dataclasses.fields(settings)}.get(name)
    assert issubclass(settings, BaseSettings)
    return settings.model_fields.get(name)


def _required(field: Any) -> bool:
    if isinstance(field, dataclasses.Field):
        return field.default is dataclasses.MISSING and field.default_factory is dataclasses.MISSING
    return bool(field.is_required())


def _read(settings: Settings, env: dict[str, str], monkeypatch: pytest.MonkeyPatch) -> object:
    """The settings as the service reads them from exactly `env` (and the required values)."""
    if settings is CliSettings:
        return CliSettings.from_env(env)
    with monkeypatch.context() as patched:
        for key in os.environ:
            if key.upper().startswith(PREFIX):
                patched.delenv(key)
        for key, value in {**REQUIRED, **env}.items():
            if key == "TZUROT_TLS_DIR" and settings is UpgradeSettings:
                continue  # a migration speaks to Postgres only: it refuses one
            patched.setenv(key, value)
        return settings()


def _is_nothing(value: object) -> bool:
    if isinstance(value, SecretStr):
        value = value.get_secret_value()
    return value is None or (isinstance(value, str | dict | list | tuple | frozenset) and not value)


def _env_value(default: str) -> str | None:
    """What setting the variable to the documented default means; None for prose."""
    if literal := re.fullmatch(r"`([^`]*)`", default):
        return literal.group(1)
    if size := _SIZE.fullmatch(default):
        return str(int(size.group(1)) * UNITS[size.group(2)])
    return None


@pytest.mark.parametrize(
    "doc", DOCUMENTED, ids=[f"{d.variable}-{d.service}-line{d.line}" for d in DOCUMENTED]
)
def test_each_documented_default_is_the_code_default(
    doc: Documented, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert not doc.problem, f"README.md:{doc.line}: {doc.problem}"
    assert doc.service in SETTINGS, f"README.md:{doc.line}: unknown service {doc.service!r}"
    name = doc.variable.removeprefix(PREFIX).lower()
    for settings in SETTINGS[doc.service]:
        field = _field(settings, name)
        where = f"README.md:{doc.line}: {doc.variable} ({doc.service}, {settings.__name__})"
        assert field is not None, f"{where}: no such setting"
        if doc.default is None or doc.variable in PROSE:
            continue
        if doc.default == "required":
            assert _required(field), f"{where}: has a default"
            continue
        default = getattr(_read(settings, {}, monkeypatch), name)
        if doc.default in NOTHING:
            assert _is_nothing(default), f"{where}: defaults to {default!r}"
            continue
        value = _env_value(doc.default)
        assert value is not None, (
            f"{where}: the default {doc.default!r} is neither `literal`, N MiB, unset nor "
            "required; write it so, or add the variable to PROSE with what the code does"
        )
        documented_value = getattr(_read(settings, {doc.variable: value}, monkeypatch), name)
        assert documented_value == default, f"{where}: README says {doc.default}, code {default!r}"


def test_the_tables_are_found_and_prose_names_documented_variables() -> None:
    variables = {d.variable for d in DOCUMENTED}
    assert {"TZUROT_JOB_LEASE_SECONDS", "TZUROT_SKILLS_ENABLED", "TZUROT_WEBHOOK_NAME"} <= variables
    assert set(PROSE) <= variables, set(PROSE) - variables
