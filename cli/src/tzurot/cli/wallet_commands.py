"""`tzurot wallet`: your LLM provider API keys (set, test, list, remove)."""

# ruff: noqa: PLC0415 - commands import their heavy modules inside their bodies, so
# `tzurot --help` and `tzurot chat -m` start fast (tests/unit/cli/test_lazy_start.py)

from __future__ import annotations

import getpass
import sys
from typing import TYPE_CHECKING, Annotated

import typer

from tzurot.cli.cli_app import UserOption, _gateway, _settings, _user, wallet_app
from tzurot.cli.command_errors import _guarded, _run

if TYPE_CHECKING:
    from tzurot.cli.settings import CliSettings
    from tzurot.v1 import gateway_pb2 as gw_pb2


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
        async with GatewayClient(CliSettings.from_env()) as client:
            reply = await client.stub.ListWalletKeys(gw.ListWalletKeysRequest(actor=who.actor))
        if not reply.keys:
            print("No keys stored. Add one with: tzurot wallet set openrouter")
        for key in reply.keys:
            print(key_line(key))
        return 0

    raise typer.Exit(_run(_main()))


def key_line(key: gw_pb2.WalletKey) -> str:
    """One stored key as `wallet list` prints it (never the key): provider, hint, created,
    last used, and that it is not used when the gateway says its provider takes none."""
    from tzurot.cli.terminal_text import one_line

    used = (
        key.last_used_at.ToDatetime().isoformat(" ", "minutes")
        if key.HasField("last_used_at")
        else "never"
    )
    created = f"{key.created_at.ToDatetime():%Y-%m-%d}"
    provider, hint = one_line(key.provider), one_line(key.hint)
    unused = (
        f"  (not used: {provider} takes no key; tzurot wallet remove {provider} deletes it)"
        if key.takes_no_key
        else ""
    )
    return f"{provider:<12} …{hint:<4}  created {created}  last used {used}{unused}"


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
