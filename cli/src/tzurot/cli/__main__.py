"""The `tzurot` command line: run the mesh locally, chat, manage keys, certificates, migrations."""

from __future__ import annotations

import asyncio
import getpass
import os
import sys
from contextlib import AsyncExitStack
from pathlib import Path
from typing import Annotated

import grpc
import typer

from tzurot.cli.chat import repl, send_message
from tzurot.cli.gateway_client import CliUser, GatewayClient
from tzurot.cli.settings import DEFAULT_DATA_DIR, CliSettings
from tzurot.runtime.errors import StartupError, from_rpc_error
from tzurot.v1 import gateway_pb2 as gw

app = typer.Typer(help="Tzurot: AI personalities for Discord.", no_args_is_help=True)
wallet_app = typer.Typer(
    help="Your LLM provider API keys (bring your own key).", no_args_is_help=True
)
app.add_typer(wallet_app, name="wallet")

UserOption = Annotated[str, typer.Option("--user", "-u", help="Who you are to the personalities.")]


def _default_user() -> str:
    return os.environ.get("USER") or getpass.getuser() or "you"


@app.command()
def up(
    data_dir: Annotated[
        Path, typer.Option(help="Local state: Postgres, certificates, master key.")
    ] = DEFAULT_DATA_DIR,
    seeds: Annotated[Path, typer.Option(help="Folder of personality seed files.")] = Path(
        "personalities"
    ),
    demo: Annotated[
        bool,
        typer.Option(help="Point every provider at a local fake LLM (no key or network needed)."),
    ] = False,
    base_port: Annotated[
        int,
        typer.Option(help="gateway listens here; inference, memory, keyvault on the next ports."),
    ] = 50051,
) -> None:
    """Start the whole mesh on an embedded Postgres; Ctrl-C stops it."""
    from tzurot.cli.mesh import MeshLayout, run_mesh

    async def _main() -> int:
        async with AsyncExitStack() as stack:
            extra_env: dict[str, str] = {}
            if demo:
                from tzurot.cli.demo import demo_provider

                extra_env = await stack.enter_async_context(demo_provider())
            return await run_mesh(
                MeshLayout(data_dir, base_port=base_port),
                seed_dir=seeds,
                extra_env=extra_env,
                with_bot=bool(os.environ.get("TZUROT_DISCORD_TOKEN")),
            )

    raise typer.Exit(_run(_main()))


@app.command()
def chat(
    personality: Annotated[str, typer.Argument(help="Name or alias of the personality.")],
    user: UserOption = "",
    message: Annotated[
        str | None, typer.Option("--message", "-m", help="Send one message and exit.")
    ] = None,
) -> None:
    """Talk to a personality through the gateway (history is kept, as in Discord)."""
    who = CliUser(user or _default_user())

    async def _main() -> int:
        async with GatewayClient(CliSettings()) as client:
            if message is not None:
                return 0 if await send_message(client, who, personality, message, sys.stdout) else 1
            await repl(client, who, personality)
            return 0

    raise typer.Exit(_run(_main()))


@wallet_app.command("set")
def wallet_set(
    provider: Annotated[
        str, typer.Argument(help="openrouter, openai, anthropic, gemini, ollama, ...")
    ],
    user: UserOption = "",
    key_stdin: Annotated[bool, typer.Option(help="Read the key from standard input.")] = False,
) -> None:
    """Store your API key for a provider (validated with the provider first)."""
    key = sys.stdin.readline().strip() if key_stdin else getpass.getpass(f"{provider} API key: ")
    who = CliUser(user or _default_user())

    async def _main() -> int:
        async with GatewayClient(CliSettings()) as client:
            reply = await client.stub.SetWalletKey(
                gw.SetWalletKeyRequest(actor=who.actor, provider=provider, api_key=key)
            )
        print(f"Stored your {reply.key.provider} key (…{reply.key.hint}).")
        return 0

    raise typer.Exit(_run(_main()))


@wallet_app.command("list")
def wallet_list(user: UserOption = "") -> None:
    """List your stored keys (provider, created, last used; never the key)."""
    who = CliUser(user or _default_user())

    async def _main() -> int:
        async with GatewayClient(CliSettings()) as client:
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
            print(f"{key.provider:<12} …{key.hint:<4}  created {created}  last used {used}")
        return 0

    raise typer.Exit(_run(_main()))


@wallet_app.command("remove")
def wallet_remove(provider: str, user: UserOption = "") -> None:
    """Delete your stored key for a provider."""
    who = CliUser(user or _default_user())

    async def _main() -> int:
        async with GatewayClient(CliSettings()) as client:
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
    """Make a development CA and one certificate per service identity."""
    from tzurot.runtime.tls import SERVICE_IDENTITIES, generate_dev_pki

    generate_dev_pki(out, SERVICE_IDENTITIES)
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
    """Run every service's migrations (schemas core, memory, vault)."""
    from tzurot.cli.migrate import migrate_all

    if database_url:
        ran = migrate_all(database_url)
    else:
        from tzurot.cli.localdb import local_postgres

        with local_postgres(data_dir / "pg") as url:
            ran = migrate_all(url)
    for migration in ran:
        print(f"{migration.service}: schema {migration.schema} is at head")


def _run(coro: object) -> int:
    """Runs a command's coroutine; errors become one line and an exit code."""
    try:
        return asyncio.run(coro)  # type: ignore[arg-type]
    except KeyboardInterrupt:
        return 130
    except StartupError as exc:
        print(f"tzurot: {exc}", file=sys.stderr)
        return 2
    except grpc.aio.AioRpcError as exc:
        err = from_rpc_error(exc)
        print(f"tzurot: [{err.code.name.lower()}] {err.message}", file=sys.stderr)
        return 1


def main() -> None:
    app()


if __name__ == "__main__":
    main()
