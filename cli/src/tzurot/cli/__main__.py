"""The `tzurot` command line: run the mesh locally, chat, manage keys, certificates, migrations."""

from __future__ import annotations

import getpass
import os
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from tzurot.cli.paths import DEFAULT_DATA_DIR, DEFAULT_FILES_DIR

# Everything else loads inside the command that needs it: `tzurot --help` and `tzurot chat -m`
# must start in well under a second (gRPC, protobuf, pydantic and structlog cost more).
if TYPE_CHECKING:
    from collections.abc import Callable

    from tzurot.cli.gateway_client import CliUser
    from tzurot.cli.settings import CliSettings

# Plain help (no rich): loading rich to format help costs more than the rest of the start.
_PLAIN: dict[str, Any] = {"rich_markup_mode": None, "pretty_exceptions_enable": False}
app = typer.Typer(help="Tzurot: AI personalities for Discord.", no_args_is_help=True, **_PLAIN)
wallet_app = typer.Typer(
    help="Your LLM provider API keys (bring your own key).", no_args_is_help=True, **_PLAIN
)
app.add_typer(wallet_app, name="wallet")
keys_app = typer.Typer(
    help="Keyvault's master key: versions and rotation.", no_args_is_help=True, **_PLAIN
)
app.add_typer(keys_app, name="keys")
import_app = typer.Typer(
    help="Bring personalities in from elsewhere.", no_args_is_help=True, **_PLAIN
)
app.add_typer(import_app, name="import")

UserOption = Annotated[str, typer.Option("--user", "-u", help="Who you are to the personalities.")]


def _default_user() -> str:
    return os.environ.get("USER") or getpass.getuser() or "you"


def _user(name: str) -> CliUser:
    from tzurot.cli.gateway_client import CliUser

    return CliUser(name or _default_user())


def _settings() -> CliSettings:
    from tzurot.cli.settings import CliSettings

    return CliSettings.from_env()


def _gateway() -> tuple[Any, Any, Any]:
    """The gateway messages, client and settings, loaded only by the commands that call it."""
    from tzurot.cli.gateway_client import GatewayClient
    from tzurot.cli.settings import CliSettings
    from tzurot.v1 import gateway_pb2 as gw

    return gw, GatewayClient, CliSettings


@app.command()
def up(
    data_dir: Annotated[
        Path, typer.Option(help="Local state: Postgres, certificates, master key.")
    ] = DEFAULT_DATA_DIR,
    seeds: Annotated[
        Path | None,
        typer.Option(
            help="A personality seed file, or a folder of them (*.yaml) "
            "[default: ./personalities, when there].",
            show_default=False,
        ),
    ] = None,
    demo: Annotated[
        bool,
        typer.Option(help="Point every provider at a local fake LLM (no key or network needed)."),
    ] = False,
    base_port: Annotated[
        int,
        typer.Option(help="gateway listens here; inference, memory, keyvault on the next ports."),
    ] = 15051,
) -> None:
    """Start the whole mesh on an embedded Postgres; Ctrl-C stops it.

    Exits 0 when stopped (Ctrl-C, SIGTERM), 1 when a service failed, 2 for a setup problem."""
    try:
        _up(data_dir, seeds, demo=demo, base_port=base_port)
    except KeyboardInterrupt:
        # Ctrl-C before asyncio.run took SIGINT over (typer would exit 130): nothing started.
        raise typer.Exit(0) from None


def _up(data_dir: Path, seeds: Path | None, *, demo: bool, base_port: int) -> None:
    """`up`'s body: it loads what it needs here, so a Ctrl-C may come in an import."""
    import asyncio
    import time
    from contextlib import AsyncExitStack

    from tzurot.cli.processes import SERVICES, Mesh
    from tzurot.cli.seeds import SeedError, read_seeds, seed_files
    from tzurot.runtime.grpc_options import with_service_grpc_experiments

    started = time.monotonic()
    with_service_grpc_experiments(os.environ)  # every service started below inherits them
    with_bot = bool(os.environ.get("TZUROT_DISCORD_TOKEN"))
    try:
        seed_paths = seed_files(seeds)  # a path given that is not there: before anything
    except SeedError as exc:
        print(f"tzurot: {exc}", file=sys.stderr)
        raise typer.Exit(2) from None

    async def _main() -> int:
        # The services start importing now, behind start gates; run_mesh opens them once
        # certificates, Postgres and migrations are ready (processes.py).
        gated = Mesh()
        try:
            await gated.spawn_gated([*SERVICES, *(["bot"] if with_bot else [])])
            loaded = read_seeds(seed_paths)  # a file that is not YAML: before Postgres starts
            from tzurot.cli.mesh import MeshLayout, run_mesh

            async with AsyncExitStack() as stack:
                extra_env: dict[str, str] = {}
                ready = asyncio.Event()
                if demo:
                    from tzurot.cli.demo import demo_provider

                    extra_env = await stack.enter_async_context(demo_provider(load_after=ready))
                return await run_mesh(
                    MeshLayout(data_dir, base_port=base_port),
                    seeds=loaded,
                    extra_env=extra_env,
                    with_bot=with_bot,
                    ready=ready,
                    gated=gated,
                    started=started,
                )
        except Exception:
            task = asyncio.current_task()
            if task is not None and task.cancelling():
                # Ctrl-C came before run_mesh handles it, and reached a step in progress too
                # (Postgres's initdb or pg_ctl): that step's failure is the interrupt's doing.
                return 0
            raise
        finally:
            await gated.stop()

    code = _run(_main(), f"the gateway at 127.0.0.1:{base_port}")
    raise typer.Exit(0 if code == 130 else code)  # stopped by Ctrl-C: what `up` is for


@app.command()
def chat(
    personality: Annotated[str, typer.Argument(help="Name or alias of the personality.")],
    user: UserOption = "",
    message: Annotated[
        str | None,
        typer.Option(
            "--message",
            "-m",
            help="Send one message and exit: the answer on standard output (then its footer "
            "and a `file: <path>` line per file it carries), an error as one line on standard "
            "error (exit 1; 2 when its files cannot be saved; 3 when the gateway cannot be "
            "reached).",
        ),
    ] = None,
    files_dir: Annotated[
        Path,
        typer.Option(
            help="Where the files an answer carries (generated images) are saved, made when "
            "missing; an existing file is never replaced (a numbered name is used). "
            "[default: the current folder]",
            show_default=False,
        ),
    ] = DEFAULT_FILES_DIR,
    show_reasoning: Annotated[
        bool,
        typer.Option(
            "--show-reasoning",
            help="Print the model's reasoning under each answer, if any; only shown, not kept "
            "(your keep_reasoning setting keeps it for Inspect). Needs a gateway released after "
            "0.1.0: an older one ignores the flag and sends no reasoning.",
        ),
    ] = False,
) -> None:
    """Talk to a personality through the gateway (history is kept, as in Discord).

    An answer is confirmed delivered (kept in history) only once its files are saved."""
    who = _user(user)
    if message is None:
        from tzurot.cli.chat import repl

        raise typer.Exit(
            _guarded(
                lambda: repl(
                    _settings(),
                    who,
                    personality,
                    files_dir=files_dir,
                    show_reasoning=show_reasoning,
                )
            )
        )

    from tzurot.cli.chat import stream_answer
    from tzurot.cli.gateway_client import GatewayClient

    async def _main() -> int:
        async with GatewayClient(_settings()) as client:
            await stream_answer(
                client,
                who,
                personality,
                message,
                sys.stdout,
                files_dir=files_dir,
                show_reasoning=show_reasoning,
            )
        return 0

    raise typer.Exit(_run(_main()))


@wallet_app.command("set")
def wallet_set(
    provider: Annotated[
        str, typer.Argument(help="openrouter, openai, anthropic, gemini, ollama, ...")
    ],
    user: UserOption = "",
    key_stdin: Annotated[
        bool,
        typer.Option(
            help="Read the key from the first line of standard input (for scripts: "
            "`tzurot wallet set openrouter --key-stdin < key.txt`). Without it the key is "
            "prompted for, without echo. The key is never an argument: others see those in ps."
        ),
    ] = False,
    skip_validation: Annotated[
        bool,
        typer.Option(
            "--skip-validation",
            help="Operators (superusers) only, for offline setups: store the key without "
            "asking the provider whether it works (its first use checks it). The gateway "
            "refuses it for anyone else.",
        ),
    ] = False,
) -> None:
    """Store your API key for a provider (checked with the provider first, unless it has no
    free check or --skip-validation is given: then it is stored unchecked, and said so)."""
    who = _user(user)

    def _body() -> int:
        import asyncio

        from tzurot.runtime.tls import load_tls

        settings = _settings()
        load_tls(settings.cli_tls_dir)  # missing certificates: said before the key is asked for
        key = (
            sys.stdin.readline().strip() if key_stdin else getpass.getpass(f"{provider} API key: ")
        )
        if not key:
            print("tzurot: no key given; nothing stored", file=sys.stderr)
            return 2
        return asyncio.run(_store(settings, key))

    async def _store(settings: CliSettings, key: str) -> int:
        from tzurot.cli.terminal_text import one_line

        gw, GatewayClient, _ = _gateway()
        async with GatewayClient(settings) as client:
            reply = await client.stub.SetWalletKey(
                gw.SetWalletKeyRequest(
                    actor=who.actor,
                    provider=provider,
                    api_key=key,
                    skip_validation=skip_validation,
                )
            )
        named = one_line(reply.key.provider)  # what the mesh says is printed without controls
        print(f"Stored your {named} key (…{one_line(reply.key.hint)}).")
        if reply.unchecked and skip_validation:
            print(
                "It was stored unchecked (--skip-validation): its first use checks it; "
                f"`tzurot wallet test {named}` checks it now."
            )
        elif reply.unchecked:  # no call proved it (an older gateway never says so)
            print(
                f"It was stored unchecked ({named} has no free check): its first "
                f"use checks it; `tzurot wallet test {named}` checks it now, at the "
                "cost of one call."
            )
        if reply.HasField("restriction"):  # it works, but not for what needs these
            lacks = ", ".join(map(one_line, reply.restriction.missing_permissions))
            print(
                f"{named} restricts this key: it lacks {lacks or 'a permission'}; what needs it "
                "will be refused (allow it for the key there, or store another key)."
            )
        return 0

    raise typer.Exit(_guarded(_body))


@wallet_app.command("test")
def wallet_test(
    provider: Annotated[str, typer.Argument(help="The provider whose stored key to check.")],
    user: UserOption = "",
) -> None:
    """Check your stored key with its provider (exit 1 when it does not work)."""
    who = _user(user)
    gw, GatewayClient, CliSettings = _gateway()

    async def _main() -> int:
        from tzurot.cli.speech import cli_text
        from tzurot.cli.terminal_text import one_line

        async with GatewayClient(CliSettings.from_env()) as client:
            reply = await client.stub.TestWalletKey(
                gw.TestWalletKeyRequest(actor=who.actor, provider=provider)
            )
        verdict = "works" if reply.valid else "does not work"
        said = one_line(cli_text(reply.detail)) or f"your key {verdict}"
        print(f"{one_line(provider)}: {said}")
        return 0 if reply.valid else 1

    raise typer.Exit(_run(_main()))


@wallet_app.command("list")
def wallet_list(user: UserOption = "") -> None:
    """List your stored keys (provider, created, last used; never the key)."""
    who = _user(user)
    gw, GatewayClient, CliSettings = _gateway()

    async def _main() -> int:
        from tzurot.cli.terminal_text import one_line

        async with GatewayClient(CliSettings.from_env()) as client:
            reply = await client.stub.ListWalletKeys(gw.ListWalletKeysRequest(actor=who.actor))
        if not reply.keys:
            print("No keys stored. Add one with: tzurot wallet set openrouter")
        for key in reply.keys:
            used = (
                key.last_used_at.ToDatetime().isoformat(" ", "minutes")
                if key.HasField("last_used_at")
                else "never"
            )
            created = f"{key.created_at.ToDatetime():%Y-%m-%d}"
            provider, hint = one_line(key.provider), one_line(key.hint)
            print(f"{provider:<12} …{hint:<4}  created {created}  last used {used}")
        return 0

    raise typer.Exit(_run(_main()))


@wallet_app.command("remove")
def wallet_remove(provider: str, user: UserOption = "") -> None:
    """Delete your stored key for a provider."""
    who = _user(user)
    gw, GatewayClient, CliSettings = _gateway()

    async def _main() -> int:
        async with GatewayClient(CliSettings.from_env()) as client:
            await client.stub.RemoveWalletKey(
                gw.RemoveWalletKeyRequest(actor=who.actor, provider=provider)
            )
        print(f"Removed your {provider} key.")
        return 0

    raise typer.Exit(_run(_main()))


@app.command()
def certs(
    out: Annotated[
        Path, typer.Option(help="Where to write the CA and certificates.")
    ] = DEFAULT_DATA_DIR / "certs",
) -> None:
    """Make a development CA and one certificate per service identity.

    Run again, it keeps the CA and every certificate still valid, and makes only what is
    missing or about to expire. A private key file kept that others may read is made 0600
    (owner only), and said so; a symlink to one, or one whose mode cannot be changed, is
    left as it is, and said so."""
    from tzurot.cli.private_files import private_key_files, tighten
    from tzurot.runtime.errors import StartupError
    from tzurot.runtime.tls import SERVICE_IDENTITIES, generate_dev_pki

    try:
        # First: a key is closed even when the CA then turns out unusable.
        for found in tighten(private_key_files(out, SERVICE_IDENTITIES)):
            print(f"tzurot: {found.notice()}", file=sys.stderr)
        generate_dev_pki(out, SERVICE_IDENTITIES)
    except OSError as exc:
        print(f"tzurot: cannot write certificates to {out}: {exc.strerror or exc}", file=sys.stderr)
        raise typer.Exit(2) from None
    except (ValueError, StartupError):  # a CA already there that cannot be read or used
        print(
            f"tzurot: the CA in {out / 'ca'} cannot be used (ca.crt and ca.key unreadable or "
            "not a development CA); move that folder away to make a new CA",
            file=sys.stderr,
        )
        raise typer.Exit(2) from None
    print(f"Certificates for {', '.join(SERVICE_IDENTITIES)} are in {out}/")


@app.command()
def migrate(
    database_url: Annotated[
        str | None,
        typer.Option(
            envvar="TZUROT_DATABASE_URL", help="Postgres URL (default: the embedded one)."
        ),
    ] = None,
    data_dir: Annotated[Path, typer.Option(help="Embedded Postgres location.")] = DEFAULT_DATA_DIR,
) -> None:
    """Run every service's migrations (schemas core, memory, vault), and say which ran:
    a line per schema (what it was given), then "Applied N migrations." or "The database is
    up to date: no migration to apply."

    Exits 2 for a malformed URL, 3 when its server cannot be reached, 1 when it refuses
    (password, database, privileges); the one line never shows the password."""

    def _body() -> int:
        from tzurot.cli.migrate import migrate_database, migrate_schemas, migration_report

        if database_url:
            ran = migrate_database(database_url)
        else:
            from tzurot.cli.localdb import local_postgres

            with local_postgres(data_dir / "pg") as url:
                ran = migrate_schemas(url)
        print("\n".join(migration_report(ran)))
        return 0

    raise typer.Exit(_guarded(_body))


@keys_app.command("add-version")
def keys_add_version(
    master_key_file: Annotated[
        Path,
        typer.Option(help="The master key file (what keyvault's TZUROT_MASTER_KEY_FILE reads)."),
    ] = DEFAULT_DATA_DIR / "master.key",
) -> None:
    """Append a new master key version; keyvault wraps new keys with it once it sees it."""
    from tzurot.cli.keys import add_master_key_version, rotation_lock
    from tzurot.runtime.errors import StartupError

    try:
        with rotation_lock(master_key_file) as locked:  # not while a rotation adds or rewraps
            version = add_master_key_version(master_key_file, locked=locked)
    except StartupError as exc:
        print(f"tzurot: {exc}", file=sys.stderr)
        raise typer.Exit(2) from None
    print(f"Added master key version {version} to {master_key_file}")


@keys_app.command("rotate")
def keys_rotate(
    data_dir: Annotated[
        Path, typer.Option(help="Local state of `tzurot up` (master.key, certs/cli).")
    ] = DEFAULT_DATA_DIR,
    add_version: Annotated[
        bool,
        typer.Option(
            help="Append a new version to <data-dir>/master.key first (local dev), once "
            "keyvault answered. In production add it to the Secret, roll keyvault, then use "
            "--no-add-version."
        ),
    ] = True,
    keyvault_addr: Annotated[
        str, typer.Option(envvar="TZUROT_KEYVAULT_ADDR", help="keyvault host:port.")
    ] = "127.0.0.1:15054",
    tls_dir: Annotated[
        Path | None,
        typer.Option(
            envvar="TZUROT_CLI_TLS_DIR", help="The cli certificate (default <data-dir>/certs/cli)."
        ),
    ] = None,
    batch_size: Annotated[
        int, typer.Option(help="Keys per transaction (0: keyvault's default).")
    ] = 0,
) -> None:
    """Re-wrap every stored key under the newest master key version, online and resumably.

    keyvault is asked first: when it cannot be reached, or its newest master key version is
    not the newest in <data-dir>/master.key (it reads another file), no version is added. A
    version added stays when the rewrap then fails (keyvault may already seal keys with
    it): run again with --no-add-version to finish. One version added at a time: a second
    adding run (or `keys add-version`) meanwhile says so and exits 2 (a lock beside
    master.key); --no-add-version takes no lock."""
    from tzurot.cli.keys_rotate import rotate_master_key

    certs = tls_dir or data_dir / "certs" / "cli"
    rotation = rotate_master_key(
        data_dir / "master.key",
        keyvault_addr,
        certs,
        add_version=add_version,
        batch_size=batch_size,
    )
    raise typer.Exit(_run(rotation, f"keyvault at {keyvault_addr} (--keyvault-addr)"))


@import_app.command("shapes")
def import_shapes(  # noqa: PLR0917  # typer: one parameter per option
    folder: Annotated[
        Path | None, typer.Argument(help="The backup folder of one personality.")
    ] = None,
    config: Annotated[Path | None, typer.Option(help="The configuration JSON, by path.")] = None,
    memories: Annotated[Path | None, typer.Option(help="The memory summaries JSON.")] = None,
    history: Annotated[Path | None, typer.Option(help="The chat history JSON.")] = None,
    user_map: Annotated[
        Path | None,
        typer.Option(help="JSON/YAML: shapes.inc user id -> Discord user id."),
    ] = None,
    alias: Annotated[list[str] | None, typer.Option(help="An alias (repeatable).")] = None,
    owner: Annotated[
        str, typer.Option(help="Discord id of the owner (default: TZUROT_BOT_OWNER_ID).")
    ] = "",
    dry_run: Annotated[bool, typer.Option(help="Validate and count; change nothing.")] = False,
    history_channel: Annotated[
        str,
        typer.Option(
            help="Discord channel (or thread) id whose conversation the chat history continues "
            "(default: the personality's legacy conversation, in no channel's prompt)."
        ),
    ] = "",
) -> None:
    """Import a shapes.inc backup: the personality, its settings, memories and chat history."""
    from rich.progress import Progress

    from tzurot.cli.gateway_client import GatewayClient
    from tzurot.cli.settings import CliSettings
    from tzurot.cli.shapes_import import BackupError, read_backup, read_user_map
    from tzurot.cli.shapes_import import import_shapes as run_import
    from tzurot.cli.terminal_text import one_line

    try:
        backup = read_backup(folder, config=config, memories=memories, history=history)
        mapping = read_user_map(user_map)
    except BackupError as exc:
        print(f"tzurot: {exc}", file=sys.stderr)
        raise typer.Exit(2) from None

    async def _main() -> int:
        async with GatewayClient(CliSettings.from_env()) as client:
            with Progress(transient=False) as bar:
                task = bar.add_task("memories", total=len(backup.memories) or 1)
                chat = bar.add_task("chat history", total=len(backup.history) or 1)
                summary = await run_import(
                    client.stub,
                    backup,
                    user_map=mapping,
                    aliases=alias or [],
                    owner=owner,
                    dry_run=dry_run,
                    progress=lambda done, total: bar.update(task, completed=done, total=total or 1),
                    history_channel=history_channel,
                    history_progress=lambda done, total: bar.update(
                        chat, completed=done, total=total or 1
                    ),
                )
        verb = "Would import" if dry_run else ("Created" if summary.created else "Updated")
        # What the gateway says (the slug, settings, warnings) is printed without controls.
        print(f"{verb} personality {one_line(summary.slug)!r} (avatar: {summary.avatar}).")
        for line in summary.settings:
            print(f"  setting {one_line(line)}")
        for warning in summary.warnings:
            print(f"  warning: {one_line(warning)}")
        print(
            f"Memories: {summary.imported} {'to import' if dry_run else 'imported'}, "
            f"{summary.skipped} already there; {summary.mapped} for mapped users, "
            f"{summary.shared} to the shared scope."
        )
        if summary.split:
            print(
                f"  {summary.split} summaries longer than a memory may hold "
                f"{'would be' if dry_run else 'were'} split into {summary.split_parts} memories."
            )
        print(
            f"Chat history: {summary.history_messages} messages, {summary.history_exchanges} "
            f"exchanges {'to import' if dry_run else 'imported'}, {summary.history_skipped} "
            f"already there (conversation {one_line(summary.history_channel) or '-'})."
        )
        return 0

    raise typer.Exit(_run(_main()))


def _run(coro: object, target: str = "") -> int:
    """Runs a command's coroutine; errors become one line and an exit code."""
    import asyncio

    return _guarded(lambda: asyncio.run(coro), target)  # type: ignore[arg-type]


def _guarded(body: Callable[[], int], target: str = "") -> int:
    """`body()`'s exit code; an error becomes one line and an exit code (see speech.py):
    1 the mesh refused, 2 bad usage or local setup, 3 unreachable, 130 Ctrl-C.

    `target`: what the command calls, for "cannot reach ..." (default: the gateway)."""
    try:
        return body()
    except KeyboardInterrupt:
        return 130
    except Exception as exc:  # reported in one line below, or raised again
        return _reported(exc, target)


def _reported(exc: Exception, target: str) -> int:
    """The exit code of an error the user is told of in one line; raises any other.

    gRPC and the error types load here, only on failure: `tzurot up` spawns its services
    first thing, before anything heavy is imported."""
    from tzurot.cli.answer_files import FilesNotSaved
    from tzurot.cli.seeds import SeedError
    from tzurot.cli.settings import SettingsError

    if isinstance(exc, SettingsError | SeedError):
        print(f"tzurot: {exc}", file=sys.stderr)
        return 2
    if isinstance(exc, FilesNotSaved):  # local: the folder given, the disk
        print(f"tzurot: {exc.explained()}", file=sys.stderr)
        return 2

    import grpc

    from tzurot.cli.speech import EXIT_REFUSED, EXIT_UNREACHABLE, EXIT_USAGE, rpc_failure
    from tzurot.db.errors import DatabaseRefused, DatabaseUnreachable
    from tzurot.runtime.errors import StartupError

    if isinstance(exc, StartupError):
        print(f"tzurot: {exc}", file=sys.stderr)
        if isinstance(exc, DatabaseUnreachable):
            return EXIT_UNREACHABLE
        return EXIT_REFUSED if isinstance(exc, DatabaseRefused) else EXIT_USAGE
    if isinstance(exc, grpc.aio.AioRpcError):
        target = target or _settings().gateway_named
        line, code = rpc_failure(exc, target)
        print(f"tzurot: {line}", file=sys.stderr)
        return code
    raise exc


ADMIN_HELP = "Operator tasks against the running mesh."


def main() -> None:
    if sys.argv[1:2] != ["up"]:  # (the services `up` starts keep gRPC's own default)
        # gRPC's core logs a failed TLS handshake at INFO on stderr, before our one line.
        os.environ.setdefault("GRPC_VERBOSITY", "ERROR")
    # `tzurot admin` loads gRPC and every stub at import: registered for real only when asked
    # for, so the other commands keep their fast start; help lists it all the same.
    if sys.argv[1:2] == ["admin"]:
        from tzurot.admin.commands import app as admin_app

        app.add_typer(admin_app, name="admin")
    else:
        app.add_typer(typer.Typer(help=ADMIN_HELP, **_PLAIN), name="admin")
    app()


if __name__ == "__main__":
    main()
