"""/wallet: bring your own API key. The key is typed into a modal, never a command argument.

A key the provider authenticated but restricts (an ElevenLabs key made with "Restrict key")
is stored like any other; `set` and `test` then say, in the bot's own words, what it lacks
and what Tzurot cannot do with it (never the vendor's text, never the key).

A common slip is pasting the key into the `provider` option (`/wallet set <key>`): such a value
is never repeated back, nor put in a form's title. The gateway knows the providers
(inference's, the operator's own among them), the bot only its built-in ones
(`WALLET_PROVIDERS`): `set` refuses at once a value that cannot be a provider's name (longer
than 64 characters, as OpenAI's, Anthropic's and OpenRouter's keys are, or with a character no
name has), opens the form named for a built-in provider, and for any other name opens it
untitled ("Your API key") and lets the gateway decide; it names the provider only once the
gateway stored the key. `remove` and `test` refuse a value that is neither a built-in provider
nor one the user holds a key for before any call names it. The form forgets the typed key once
read, and is closed however its answer went.

A key the gateway stored without a call proving it says so (`SetWalletKeyResponse.unchecked`,
Brave Search's: it has no free check), and the bot tells the user, whatever the provider, that
its first use checks it and `/wallet test <provider>` checks it now at the cost of one call.
The bot never asks the gateway to skip a check, so such a key is one whose provider has none
that is free. An older gateway, without the field, reads as checked: the bot then only says
the key was saved. `test` of a Brave key spends one search on it, which the bot says.

`list` says a key is not used when the gateway says its provider takes no key
(`WalletKey.takes_no_key`, inference's word): stored before `set` refused such keys, or before
the operator made the provider keyless. The gateway's `test` of one sends it nowhere and says
why; its `set` for such a provider refuses the key once the form is sent (the bot knows only
its built-in names, never which of them inference makes keyless).
"""

from __future__ import annotations

import re

import discord
from discord import app_commands

from tzurot.bot.commands.common import PROVIDERS, actor, choices, defer, failure_text, reply, send
from tzurot.bot.commands.lookups import cached_values
from tzurot.bot.gateway_client import GatewayClient
from tzurot.bot.voice_notices import VENDOR_NAMES
from tzurot.runtime.errors import TzurotError
from tzurot.v1 import common_pb2 as common
from tzurot.v1 import gateway_pb2 as gw

WALLET_PROVIDERS = (*PROVIDERS, "brave", "vllm", "lmstudio", "kokoro", "openedai-speech")
"""The built-in providers a key may be stored for: gateway's `KNOWN_PROVIDERS` (inference's
built-in providers, ElevenLabs and Brave). The gateway knows the operator's own as well. The
first ones and Brave are offered as you type."""
SUGGESTED_PROVIDERS = (*PROVIDERS, "brave")
PROVIDER_NAME = re.compile(r"[a-z0-9][a-z0-9_.-]{0,63}")
"""What any provider's name is (inference's `TZUROT_PROVIDERS` rule, keyvault's too): a value
outside it is no provider, whoever configured what."""
MODAL_TIMEOUT_SECONDS = 300
"""How long an unanswered key form stays open (Discord keeps a modal up to 15 minutes)."""
PROVIDER_NAMES = {**VENDOR_NAMES, "brave": "Brave Search"}
"""How a provider is named to the user where it is not its option's value (else as given)."""
BILLED_TESTS = {"brave": "Brave Search has no free check: this test was one search with it."}
"""Providers whose key test spends a billed request, and what to say."""


def unknown_provider_text() -> str:
    """The refusal of a `provider` option that names no known provider: never the value,
    which is often the key itself, pasted into the wrong option."""
    return (
        f"Unknown provider; known: {', '.join(sorted(WALLET_PROVIDERS))}, and any the operator "
        "added. Give the provider's name in `provider`; the key goes only in the private form "
        "`/wallet set` opens."
    )


PERMISSION_USES = {
    "elevenlabs": {
        "text_to_speech": "spoken answers",
        "voices_write": "cloning a voice",
        "voices_read": (
            "listing your ElevenLabs voices (how Tzurot finds and cleans up a clone whose "
            "answer got lost)"
        ),
    }
}
"""What Tzurot does with each permission of a provider's restricted keys (ElevenLabs names
them; a key lacking one is refused that call with 401 `missing_permissions`)."""


def restriction_text(provider: str, restriction: common.KeyRestriction) -> str:
    """What a key the provider restricts cannot do, and what the rest depends on."""
    vendor = VENDOR_NAMES.get(provider, provider)
    uses = PERMISSION_USES.get(provider, {})
    missing = list(restriction.missing_permissions)
    if missing:
        named = ", ".join(f"`{p}`" for p in missing)
        lost = [uses[p] for p in missing if p in uses]
        what = " and ".join(lost) if lost else "what needs it"
        text = f"{vendor} restricts this key: it lacks {named}, so {what} won't work with it."
        depends = "The rest works if the key has its permission"
    else:
        text = f"{vendor} restricts this key to part of its API."
        depends = "What works depends on its permissions"
    rest = [f"`{p}` for {use}" for p, use in uses.items() if p not in missing]
    if rest:
        text += f" {depends}: {', '.join(rest)}."
    return (
        f"{text} Allow what it lacks for the key in {vendor}, or store another key with "
        f"`/wallet set {provider}`."
    )


def unchecked_text(provider: str) -> str:
    """What to say of a key the gateway stored without a call proving it (any provider)."""
    return (
        f"{PROVIDER_NAMES.get(provider, provider)} has no free check, so it was not tried: "
        f"its first use checks it (`/wallet test {provider}` checks it now, at the cost of "
        "one call)."
    )


def saved_text(provider: str, saved: gw.SetWalletKeyResponse) -> str:
    hint = f" (…{saved.key.hint})" if saved.key.hint else ""
    text = f"Saved your {provider} key{hint}. It is stored encrypted."
    if saved.unchecked:  # the gateway says so; an older one, without the field, never does
        text += " " + unchecked_text(provider)
    if saved.HasField("restriction"):
        text += "\n" + restriction_text(provider, saved.restriction)
    return text


def checked_text(provider: str, tested: gw.TestWalletKeyResponse) -> str:
    if not tested.valid:
        return f"Your {provider} key does not work: {tested.detail}"
    if tested.HasField("restriction"):
        return f"Your {provider} key works.\n" + restriction_text(provider, tested.restriction)
    if provider in BILLED_TESTS:
        return f"Your {provider} key works. {BILLED_TESTS[provider]}"
    return f"Your {provider} key works."


def describe_keys(keys: list[gw.WalletKey]) -> str:
    if not keys:
        return "You have no API keys stored. Add one with `/wallet set <provider>`."
    lines = ["Your API keys:"]
    for key in keys:
        if key.takes_no_key:  # inference's word: never a guess from the name
            state = (
                f"not used: {key.provider} takes no key; `/wallet remove {key.provider}` deletes it"
            )
        elif key.active:
            state = "active"
        else:
            state = f"inactive: {key.provider} rejected it; store a new one with /wallet set"
        hint = f" (…{key.hint})" if key.hint else ""
        used = (
            f", last used <t:{key.last_used_at.seconds}:R>"
            if key.HasField("last_used_at") and key.last_used_at.seconds
            else ""
        )
        lines.append(f"- **{key.provider}**{hint}: {state}{used}")
    return "\n".join(lines)


class WalletKeyModal(discord.ui.Modal):
    """A private form: what is typed here goes to the gateway (then keyvault) only."""

    def __init__(self, gateway: GatewayClient, provider: str) -> None:
        """Titled for a built-in provider; any other (one the operator added to inference, or
        a key typed as the provider) is not named until the gateway stored a key for it."""
        self.named = provider in WALLET_PROVIDERS
        title = f"Your {provider} API key" if self.named else "Your API key"
        super().__init__(title=title[:45], timeout=MODAL_TIMEOUT_SECONDS)
        self.gateway, self.provider = gateway, provider
        self.key: discord.ui.TextInput[WalletKeyModal] = discord.ui.TextInput(
            label="API key",
            custom_id="api_key",
            placeholder="paste your key; only you see this form",
            min_length=8,
            max_length=512,
        )
        self.add_item(self.key)

    async def on_submit(self, interaction: discord.Interaction) -> None:
        """Sends the key to the gateway and answers. However that ends, the form forgets
        the key and stops: discord.py stops a modal only when on_submit returns, and one left
        registered (a failed reply) would hold the key until its timeout."""
        try:
            await interaction.response.defer(ephemeral=True, thinking=True)
            request = gw.SetWalletKeyRequest(
                actor=actor(interaction), provider=self.provider, api_key=self.key.value.strip()
            )
            self._forget_key()
            try:
                saved = await self.gateway.call(self.gateway.stub.SetWalletKey(request))
            except TzurotError as err:
                whose = f"{self.provider} key" if self.named else "key"
                text = f"Your {whose} was not saved: {failure_text(err)}"
            else:  # the gateway stored it: a provider it knows, which may be named
                text = saved_text(self.provider, saved)
            finally:
                del request
            await send(interaction, text)
        finally:
            self._forget_key()
            self.stop()

    def _forget_key(self) -> None:
        """Drops the submitted value from the form's field. discord.py keeps it in the
        TextInput's `_value` (its `value` property has no setter; `default` is what the form
        shows when it opens, a different field)."""
        self.key._value = None


class WalletCommands(app_commands.Group):
    def __init__(self, gateway: GatewayClient) -> None:
        super().__init__(name="wallet", description="Your own API keys for the model providers")
        self.gateway = gateway

    async def _provider_choices(
        self, interaction: discord.Interaction, current: str
    ) -> list[app_commands.Choice[str]]:
        return choices(list(SUGGESTED_PROVIDERS), current)

    async def _known(self, interaction: discord.Interaction, provider: str) -> bool:
        """Whether `provider` is a known one or one the user holds a key for; otherwise
        says so (never quoting it) and asks the gateway nothing naming it. Deferred first:
        the user's keys may have to be listed."""
        if provider in WALLET_PROVIDERS:
            return True
        try:
            listed = await self.gateway.call(
                self.gateway.stub.ListWalletKeys(gw.ListWalletKeysRequest(actor=actor(interaction)))
            )
        except TzurotError as err:
            await send(interaction, failure_text(err))
            return False
        if any(key.provider == provider for key in listed.keys):
            return True
        await send(interaction, unknown_provider_text())
        return False

    async def _stored_choices(
        self, interaction: discord.Interaction, current: str
    ) -> list[app_commands.Choice[str]]:
        async def fetch() -> list[str]:
            listed = await self.gateway.call(
                self.gateway.stub.ListWalletKeys(gw.ListWalletKeysRequest(actor=actor(interaction)))
            )
            return [k.provider for k in listed.keys]

        return choices(await cached_values("wallet-keys", interaction, fetch), current)

    @app_commands.command(name="set", description="Add or replace your key (opens a private form)")
    @app_commands.describe(provider="The provider the key is for")
    async def set_key(self, interaction: discord.Interaction, provider: str) -> None:
        provider = provider.strip().lower()
        if not PROVIDER_NAME.fullmatch(provider):  # no provider's name: a key, most likely
            await send(interaction, unknown_provider_text())
            return
        # A name outside the built-in ones may be the operator's own provider: the form opens
        # untitled and the gateway decides (refusing an unknown one without quoting it).
        await interaction.response.send_modal(WalletKeyModal(self.gateway, provider))

    @set_key.autocomplete("provider")
    async def _set_auto(
        self, interaction: discord.Interaction, current: str
    ) -> list[app_commands.Choice[str]]:
        return await self._provider_choices(interaction, current)

    @app_commands.command(name="list", description="Which keys you have stored")
    async def list_keys(self, interaction: discord.Interaction) -> None:
        await reply(
            interaction,
            self.gateway,
            lambda: self.gateway.stub.ListWalletKeys(
                gw.ListWalletKeysRequest(actor=actor(interaction))
            ),
            lambda r: describe_keys(list(r.keys)),
        )

    @app_commands.command(name="remove", description="Delete one of your keys")
    @app_commands.describe(provider="The provider whose key to remove (e.g. openrouter)")
    async def remove_key(self, interaction: discord.Interaction, provider: str) -> None:
        provider = provider.strip().lower()
        await defer(interaction)
        if not await self._known(interaction, provider):
            return
        await reply(
            interaction,
            self.gateway,
            lambda: self.gateway.stub.RemoveWalletKey(
                gw.RemoveWalletKeyRequest(actor=actor(interaction), provider=provider)
            ),
            lambda _: f"Removed your {provider} key.",
        )

    @remove_key.autocomplete("provider")
    async def _remove_auto(
        self, interaction: discord.Interaction, current: str
    ) -> list[app_commands.Choice[str]]:
        return await self._stored_choices(interaction, current)

    @app_commands.command(name="test", description="Check that a stored key still works")
    @app_commands.describe(provider="The provider whose stored key to check (e.g. openrouter)")
    async def test_key(self, interaction: discord.Interaction, provider: str) -> None:
        provider = provider.strip().lower()
        await defer(interaction)
        if not await self._known(interaction, provider):
            return
        await reply(
            interaction,
            self.gateway,
            lambda: self.gateway.stub.TestWalletKey(
                gw.TestWalletKeyRequest(actor=actor(interaction), provider=provider)
            ),
            lambda r: checked_text(provider, r),
        )

    @test_key.autocomplete("provider")
    async def _test_auto(
        self, interaction: discord.Interaction, current: str
    ) -> list[app_commands.Choice[str]]:
        return await self._stored_choices(interaction, current)


__all__ = [
    "BILLED_TESTS",
    "MODAL_TIMEOUT_SECONDS",
    "PROVIDER_NAME",
    "PROVIDER_NAMES",
    "WALLET_PROVIDERS",
    "WalletCommands",
    "WalletKeyModal",
    "checked_text",
    "describe_keys",
    "restriction_text",
    "saved_text",
    "send",
    "unchecked_text",
    "unknown_provider_text",
]
