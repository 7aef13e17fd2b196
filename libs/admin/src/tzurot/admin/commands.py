"""`tzurot admin`: operator tasks against the running mesh, as the operator (no actor).

Gateway treats a call without an actor from an operator identity (cli, edge, and gateway's own
pod identity) as the superuser's. Every command prints plain lines (or YAML/JSON for exports)
and exits non-zero with one `tzurot: ...` line when it fails: 1 when a call fails, 2 for bad
usage or local setup (certificates not found), 3 when a service cannot be reached, 130 on
Ctrl-C. No traceback: this also runs as `python -m tzurot.admin` (kubectl tzurot, the
gateway pod), where typer would print a long one. What the mesh sends (names any user chose,
reasons, error messages) is printed without terminal controls, one line each (terminal_text);
an export is YAML, whose emitter escapes every control character.
"""

from __future__ import annotations

import asyncio
import json
import sys
from collections.abc import Awaitable, Callable
from enum import StrEnum
from pathlib import Path
from typing import Annotated, Any

import grpc
import typer
import yaml
from google.protobuf import json_format
from grpc_health.v1 import health_pb2, health_pb2_grpc

from tzurot.admin.connect import SERVICES, AdminSettings, Mesh
from tzurot.admin.doctor import certificate_report
from tzurot.admin.terminal_text import one_line
from tzurot.runtime.errors import StartupError, from_rpc_error, is_unreachable
from tzurot.v1 import common_pb2 as common
from tzurot.v1 import gateway_pb2 as gw
from tzurot.v1 import gateway_pb2_grpc as gw_grpc
from tzurot.v1 import keyvault_pb2 as kv
from tzurot.v1 import keyvault_pb2_grpc as kv_grpc

# Plain help and errors, as `tzurot admin` shows them (typer's boxes only as `python -m`).
app = typer.Typer(
    help="Operator tasks against the running mesh.",
    no_args_is_help=True,
    rich_markup_mode=None,
    pretty_exceptions_enable=False,
)
personalities_app = typer.Typer(
    help="Personalities: list, import, export, delete.", no_args_is_help=True
)
denylist_app = typer.Typer(help="Users and guilds blocked or muted.", no_args_is_help=True)
jobs_app = typer.Typer(help="Generation jobs.", no_args_is_help=True)
memory_app = typer.Typer(help="Long-term memory.", no_args_is_help=True)
keys_app = typer.Typer(
    help="Keyvault's master key rotation (re-wrap every stored key).", no_args_is_help=True
)
for sub, name in (
    (personalities_app, "personalities"),
    (denylist_app, "denylist"),
    (jobs_app, "jobs"),
    (memory_app, "memory"),
    (keys_app, "keys"),
):
    app.add_typer(sub, name=name)

Command = Callable[[Mesh], Awaitable[int]]


def run(command: Command) -> None:
    """Runs one command against the mesh; errors become one line and an exit code."""

    async def _main() -> int:
        async with Mesh(AdminSettings()) as mesh:
            return await command(mesh)

    try:
        code = asyncio.run(_main())
    except grpc.aio.AioRpcError as exc:
        if is_unreachable(exc):
            cause = one_line(exc.details() or "")
            print(f"tzurot: [unavailable] cannot reach the mesh: {cause}", file=sys.stderr)
            code = 3
        else:
            err = from_rpc_error(exc)
            print(f"tzurot: [{err.code.name.lower()}] {one_line(err.message)}", file=sys.stderr)
            code = 1
    except (OSError, StartupError) as exc:  # certificates not found, and the like
        print(f"tzurot: {exc}", file=sys.stderr)
        code = 2
    except KeyboardInterrupt:
        code = 130
    raise typer.Exit(code)


def gateway(mesh: Mesh) -> gw_grpc.GatewayServiceAsyncStub:
    return gw_grpc.GatewayServiceStub(mesh.channel("gateway"))


def _when(message: Any, field: str) -> str:
    if not message.HasField(field):
        return "-"
    return f"{getattr(message, field).ToDatetime():%Y-%m-%d %H:%M}"


# ---- personalities ---------------------------------------------------------------------


@personalities_app.command("list")
def personalities_list() -> None:
    """Every personality: slug, name, aliases."""

    async def command(mesh: Mesh) -> int:
        token = ""
        while True:
            reply = await gateway(mesh).ListPersonalities(
                gw.ListPersonalitiesRequest(page=common.PageRequest(page_token=token))
            )
            for p in reply.personalities:
                aliases = ", ".join(map(one_line, p.aliases)) or "-"
                slug, name = one_line(p.slug), one_line(p.display_name)
                print(f"{slug:<20} {name:<24} aliases: {aliases}")
            token = reply.page.next_page_token
            if not token:
                return 0

    run(command)


@personalities_app.command("import")
def personalities_import(
    file: Annotated[
        Path,
        typer.Argument(
            help="A seed YAML file or a character card (JSON).",
            exists=True,
            dir_okay=False,
            readable=True,
        ),
    ],
) -> None:
    """Create or update a personality from a file."""
    document = file.read_bytes()
    kind = (
        gw.IMPORT_FORMAT_CHARACTER_CARD_JSON
        if file.suffix.lower() == ".json"
        else gw.IMPORT_FORMAT_SEED_YAML
    )

    async def command(mesh: Mesh) -> int:
        reply = await gateway(mesh).ImportPersonality(
            gw.ImportPersonalityRequest(format=kind, document=document)
        )
        verb = "Created" if reply.created else "Updated"
        named = reply.personality
        print(f"{verb} {one_line(named.display_name)} ({one_line(named.slug)})")
        return 0

    run(command)


def seed_of(personality: common.Personality) -> dict[str, Any]:
    """The personality as a seed document (the format `import` reads back)."""
    seed: dict[str, Any] = {"name": personality.display_name}
    if personality.aliases:
        seed["aliases"] = list(personality.aliases)
    for field in ("avatar_url", "system_prompt", "error_message", "birthday"):
        if getattr(personality, field):
            seed[field] = getattr(personality, field)
    character = json_format.MessageToDict(personality.character, preserving_proto_field_name=True)
    if character:
        seed["character"] = character
    return seed


@personalities_app.command("export")
def personalities_export(
    name: Annotated[str, typer.Argument(help="Slug, name or alias.")],
    output: Annotated[
        Path | None, typer.Option("--output", "-o", help="Write here (default: stdout).")
    ] = None,
) -> None:
    """A personality as a seed YAML document (what `import` reads)."""

    async def command(mesh: Mesh) -> int:
        reply = await gateway(mesh).GetPersonality(gw.GetPersonalityRequest(personality=name))
        text = yaml.safe_dump(seed_of(reply.personality), sort_keys=False, allow_unicode=True)
        if output is None:
            sys.stdout.write(text)
        else:
            output.write_text(text, encoding="utf-8")
            print(f"Exported {one_line(reply.personality.display_name)} to {output}")
        return 0

    run(command)


@personalities_app.command("delete")
def personalities_delete(name: Annotated[str, typer.Argument(help="Slug, name or alias.")]) -> None:
    """Delete a personality."""

    async def command(mesh: Mesh) -> int:
        await gateway(mesh).DeletePersonality(gw.DeletePersonalityRequest(personality=name))
        print(f"Deleted {name}")
        return 0

    run(command)


# ---- denylist -------------------------------------------------------------------------


class Scope(StrEnum):
    bot = "bot"
    guild = "guild"
    channel = "channel"
    personality = "personality"


class Period(StrEnum):
    day = "day"
    week = "week"
    month = "month"


def _enum_name(enum: Any, value: int, prefix: str) -> str:
    return str(enum.Name(value)).removeprefix(prefix).lower()


@denylist_app.command("list")
def denylist_list() -> None:
    """Every entry: id, who, where, mode, reason."""

    async def command(mesh: Mesh) -> int:
        reply = await gateway(mesh).ListDenylist(gw.ListDenylistRequest())
        if not reply.entries:
            print("The denylist is empty.")
        for e in reply.entries:
            target = _enum_name(gw.DenyTarget, e.target, "DENY_TARGET_")
            scope = _enum_name(gw.DenyScope, e.scope, "DENY_SCOPE_")
            mode = _enum_name(gw.DenyMode, e.mode, "DENY_MODE_")
            where = f"{scope}:{one_line(e.scope_id)}" if e.scope_id else scope
            said = one_line(e.reason) or "-"
            print(f"{one_line(e.id)}  {target}:{one_line(e.target_id)}  {where}  {mode}  {said}")
        return 0

    run(command)


@denylist_app.command("add")
def denylist_add(
    target_id: Annotated[str, typer.Argument(help="The Discord user id (or guild id).")],
    *,
    guild: Annotated[bool, typer.Option(help="target_id is a guild, not a user.")] = False,
    scope: Annotated[Scope, typer.Option(help="Where the entry applies.")] = Scope.bot,
    scope_id: Annotated[str, typer.Option(help="The guild/channel id or personality.")] = "",
    mute: Annotated[bool, typer.Option(help="Mute (ignore silently) instead of block.")] = False,
    reason: Annotated[str, typer.Option(help="Why (shown to operators).")] = "",
) -> None:
    """Block (or mute) a user or guild."""
    entry = gw.DenylistEntry(
        target=gw.DENY_TARGET_GUILD if guild else gw.DENY_TARGET_USER,
        target_id=target_id,
        scope=gw.DenyScope.Value(f"DENY_SCOPE_{scope.value.upper()}"),
        scope_id=scope_id,
        mode=gw.DENY_MODE_MUTE if mute else gw.DENY_MODE_BLOCK,
        reason=reason,
    )

    async def command(mesh: Mesh) -> int:
        reply = await gateway(mesh).AddDenylistEntry(gw.AddDenylistEntryRequest(entry=entry))
        print(f"Added {one_line(reply.entry.id)}")
        return 0

    run(command)


@denylist_app.command("remove")
def denylist_remove(entry_id: Annotated[str, typer.Argument(help="The entry's id.")]) -> None:
    """Remove a denylist entry."""

    async def command(mesh: Mesh) -> int:
        await gateway(mesh).RemoveDenylistEntry(gw.RemoveDenylistEntryRequest(entry_id=entry_id))
        print(f"Removed {entry_id}")
        return 0

    run(command)


# ---- usage, jobs, memory -----------------------------------------------------------------


@app.command()
def usage(
    period: Annotated[Period, typer.Option(help="The period to sum.")] = Period.month,
) -> None:
    """Requests per user, provider, model and kind of request, with what each is billed by:
    tokens, or characters for speech."""
    value = gw.UsagePeriod.Value(f"USAGE_PERIOD_{period.value.upper()}")

    async def command(mesh: Mesh) -> int:
        reply = await gateway(mesh).GetUsage(gw.GetUsageRequest(period=value, all_users=True))
        print(f"since {_when(reply, 'since')}")
        for t in reply.totals:
            print(usage_line(t))
        return 0

    run(command)


def usage_line(t: gw.UsageTotal) -> str:
    """One line of `usage`: speech in the characters it is billed by, the rest in tokens, and
    the requests paid for but not delivered whole (a speech whose audio broke off), if any."""
    billed = (
        f"{t.characters:>9} characters"
        if t.request_type == "speech"
        else f"{t.input_tokens:>9} in {t.output_tokens:>9} out"
    )
    user, provider, model = one_line(t.user_id) or "-", one_line(t.provider), one_line(t.model)
    return (
        f"{user:<28} {provider:<12} {model:<32} {one_line(t.request_type) or 'chat':<18} "
        f"{t.requests:>6} requests {billed}"
        + (f" ({t.failed_requests} paid, not delivered)" if t.failed_requests else "")
        + (f" ({t.estimated_requests} estimated)" if t.estimated_requests else "")
    )


def _print_job(job: gw.Job) -> None:
    status = common.JobStatus.Name(job.status).removeprefix("JOB_STATUS_").lower()
    print(f"job {one_line(job.id)}: {status} (attempts {job.attempts})")
    print(f"created {_when(job, 'created_at')}  finished {_when(job, 'finished_at')}")
    print(f"delivered {_when(job, 'delivered_at')}")
    if job.content:
        print(f"answer: {len(job.content)} characters")
    if job.HasField("error"):
        error = job.error
        print(f"error [{one_line(error.code)}] {one_line(error.reason)}: {one_line(error.message)}")


@jobs_app.command("status")
def jobs_status(job_id: Annotated[str, typer.Argument(help="The job id.")]) -> None:
    """A job's state, attempts, times and error."""

    async def command(mesh: Mesh) -> int:
        _print_job((await gateway(mesh).GetJobStatus(gw.GetJobStatusRequest(job_id=job_id))).job)
        return 0

    run(command)


@jobs_app.command("retry")
def jobs_retry(job_id: Annotated[str, typer.Argument(help="The job id.")]) -> None:
    """Runs a failed or orphaned job again; its answer waits on the job for the client's
    resend (replayed, not paid twice). Exits 1 when the new attempt failed too."""

    async def command(mesh: Mesh) -> int:
        reply = await gateway(mesh).RetryJob(gw.RetryJobRequest(job_id=job_id), timeout=600)
        _print_job(reply.job)
        return 1 if reply.job.status == common.JOB_STATUS_FAILED else 0

    run(command)


@memory_app.command("stats")
def memory_stats(
    personality: Annotated[str, typer.Argument(help="Slug, name or alias.")],
    user: Annotated[
        str, typer.Option(help="The user's platform id (a Discord id, or cli:<name>).")
    ],
) -> None:
    """How many long-term memories a personality keeps of a user, per sector."""

    async def command(mesh: Mesh) -> int:
        reply = await gateway(mesh).GetMemoryStats(
            gw.GetMemoryStatsRequest(actor=common.Actor(user_id=user), personality=personality)
        )
        print(f"memories: {reply.total}")
        for sector in reply.sectors:
            name = common.MemorySector.Name(sector.sector).removeprefix("MEMORY_SECTOR_")
            print(f"  {name.lower():<12} {sector.count}")
        print(f"oldest {_when(reply, 'oldest')}  newest {_when(reply, 'newest')}")
        return 0

    run(command)


# ---- key rotation ----------------------------------------------------------------------


def _rewrap(batch_size: int) -> None:
    async def command(mesh: Mesh) -> int:
        stub = kv_grpc.KeyVaultServiceStub(mesh.channel("keyvault"))
        last = None
        async for step in stub.RewrapKeys(kv.RewrapKeysRequest(batch_size=batch_size)):
            print(f"version {step.master_key_version}: {step.rewrapped}/{step.total} re-wrapped")
            last = step
        if last is not None:
            print(f"done: every key uses master key version {last.master_key_version}")
        return 0

    run(command)


@keys_app.command("rotate")
def keys_rotate(
    batch_size: Annotated[int, typer.Option(help="Keys per transaction (0: default).")] = 0,
) -> None:
    """Re-wrap every stored key under the newest master key version (add it to the Secret
    and roll keyvault first). Prints progress; safe to interrupt."""
    _rewrap(batch_size)


@keys_app.command("progress")
def keys_progress() -> None:
    """How far a rotation has come: keys still on an older master key version."""

    async def command(mesh: Mesh) -> int:
        stub = kv_grpc.KeyVaultServiceStub(mesh.channel("keyvault"))
        reply = await stub.GetRewrapProgress(kv.GetRewrapProgressRequest())
        done = reply.total - reply.stale
        state = "complete" if reply.stale == 0 else f"{reply.stale} keys still to re-wrap"
        print(f"version {reply.master_key_version}: {done}/{reply.total} keys on it ({state})")
        return 0

    run(command)


@keys_app.command("resume")
def keys_resume(
    batch_size: Annotated[int, typer.Option(help="Keys per transaction (0: default).")] = 0,
) -> None:
    """Continue an interrupted rotation: re-wraps only the keys still on an older version."""
    _rewrap(batch_size)


# ---- health and doctor -----------------------------------------------------------------


async def _health(mesh: Mesh, service: str) -> str:
    stub = health_pb2_grpc.HealthStub(mesh.channel(service))
    try:
        reply = await stub.Check(health_pb2.HealthCheckRequest(service=""), timeout=5.0)
    except grpc.aio.AioRpcError as exc:
        return f"{exc.code().name} {one_line(exc.details() or '')}".strip()
    return str(health_pb2.HealthCheckResponse.ServingStatus.Name(reply.status))


@app.command()
def health() -> None:
    """The gRPC health of every service (exit 1 unless all are SERVING)."""

    async def command(mesh: Mesh) -> int:
        states = await asyncio.gather(*(_health(mesh, s) for s in SERVICES))
        for service, state in zip(SERVICES, states, strict=True):
            print(f"{service:<10} {state}")
        return 0 if all(state == "SERVING" for state in states) else 1

    run(command)


@app.command()
def doctor(
    warn_days: Annotated[int, typer.Option(help="Warn when a certificate expires sooner.")] = 21,
    as_json: Annotated[bool, typer.Option("--json", help="One JSON report.")] = False,
) -> None:
    """Certificates' expiry (ours and each service's) and every service's health."""

    async def command(mesh: Mesh) -> int:
        certs = await certificate_report(mesh.settings, warn_days)
        states = await asyncio.gather(*(_health(mesh, s) for s in SERVICES))
        healthy = dict(zip(SERVICES, states, strict=True))
        ok = all(c["ok"] for c in certs) and all(s == "SERVING" for s in states)
        if as_json:
            print(json.dumps({"ok": ok, "certificates": certs, "health": healthy}))
        else:
            for c in certs:
                mark = "ok  " if c["ok"] else "FAIL"
                print(f"{mark} certificate {c['name']}: {one_line(c['detail'])}")
            for service, state in healthy.items():
                print(f"{'ok  ' if state == 'SERVING' else 'FAIL'} health {service}: {state}")
        return 0 if ok else 1

    run(command)


def main() -> None:
    app(prog_name="tzurot admin")
