"""/wallet: a key pasted into the `provider` option is never echoed nor sent on, and the key
form forgets the key and closes however its answer went. A provider only the gateway knows
(one the operator added to inference) gets an untitled form; the gateway decides."""

from __future__ import annotations

import itertools
import time
from types import SimpleNamespace
from typing import Any, cast

import pytest
from discord.enums import InteractionResponseType

from tzurot.bot.commands.wallet import (
    MODAL_TIMEOUT_SECONDS,
    WALLET_PROVIDERS,
    WalletCommands,
    WalletKeyModal,
)
from tzurot.bot.gateway_client import GatewayClient
from tzurot.gateway.provider_list import KNOWN_PROVIDERS
from tzurot.gateway.wallet import UNKNOWN_PROVIDER
from tzurot.runtime.errors import InvalidArgument
from tzurot.v1 import gateway_pb2 as gw

_ids = itertools.count(time.time_ns())
"""Interaction ids unique across test modules: the bot remembers, process-wide, which deferred
interactions it has edited (`commands.common._edited`), as Discord's ids are unique."""

EL_KEY = "sk_" + "0123456789abcdef" * 3
OR_KEY = "sk-or-v1-" + "ab12" * 16
PLANTED = "plantedKEYzq7Wm3Xv9Rt2Lp8Ny4"
GATEWAY_KNOWS = ("groq",)
"""A provider the operator added to inference: the gateway knows it, the bot does not."""


class Stub:
    """The gateway's wallet RPCs: records each call; the user holds keys for `stored`; a
    key is stored for a built-in provider or one of `GATEWAY_KNOWS`, else refused as the
    gateway refuses it (never quoting the provider); one for a provider of `unchecked` is
    said to be stored unchecked (as the gateway says of Brave's)."""

    def __init__(
        self, stored: tuple[str, ...] = (), unchecked: frozenset[str] = frozenset({"brave"})
    ) -> None:
        self.stored = stored
        self.unchecked = unchecked
        self.calls: list[tuple[str, Any]] = []

    async def ListWalletKeys(self, request: gw.ListWalletKeysRequest) -> Any:
        self.calls.append(("ListWalletKeys", request))
        return gw.ListWalletKeysResponse(keys=[gw.WalletKey(provider=p) for p in self.stored])

    async def RemoveWalletKey(self, request: gw.RemoveWalletKeyRequest) -> Any:
        self.calls.append(("RemoveWalletKey", request))
        return gw.RemoveWalletKeyResponse()

    async def TestWalletKey(self, request: gw.TestWalletKeyRequest) -> Any:
        self.calls.append(("TestWalletKey", request))
        return gw.TestWalletKeyResponse(valid=True)

    async def SetWalletKey(self, request: gw.SetWalletKeyRequest) -> Any:
        self.calls.append(("SetWalletKey", request))
        known = sorted({*KNOWN_PROVIDERS, *GATEWAY_KNOWS})
        if request.provider not in known:
            raise InvalidArgument(
                "provider", f"unknown provider; known: {', '.join(known)}", reason=UNKNOWN_PROVIDER
            )
        return gw.SetWalletKeyResponse(
            key=gw.WalletKey(provider=request.provider, hint="wxyz"),
            unchecked=request.provider in self.unchecked,
        )


class Response:
    def __init__(self) -> None:
        self.done = False
        self.type: InteractionResponseType | None = None
        self.messages: list[str] = []
        self.modals: list[WalletKeyModal] = []

    def is_done(self) -> bool:
        return self.done

    async def defer(self, **_: Any) -> None:
        self.done, self.type = True, InteractionResponseType.deferred_channel_message

    async def send_message(self, content: str, **_: Any) -> None:
        self.done = True
        self.messages.append(content)

    async def send_modal(self, modal: WalletKeyModal) -> None:
        self.done = True
        self.modals.append(modal)


class Interaction:
    """What the commands read of a Discord interaction, recording what they answer."""

    def __init__(self, *, failing_edit: bool = False) -> None:
        self.id = next(_ids)
        self.user = SimpleNamespace(id=42, display_name="Alice")
        self.response = Response()
        self.edits: list[str] = []
        self.followups: list[str] = []
        self.followup = SimpleNamespace(send=self._followup)
        self.failing_edit = failing_edit

    async def edit_original_response(self, **kwargs: Any) -> None:
        if self.failing_edit:
            raise RuntimeError("Unknown interaction")  # it expired, or Discord had a 5xx
        self.edits.append(str(kwargs.get("content")))

    async def _followup(self, content: str, **_: Any) -> None:
        self.followups.append(content)

    def texts(self) -> list[str]:
        return [*self.response.messages, *self.edits, *self.followups]


def wallet(stub: Stub) -> WalletCommands:
    return WalletCommands(GatewayClient(cast(Any, stub), generate_timeout=5))


async def run(group: WalletCommands, name: str, interaction: Interaction, provider: str) -> None:
    command: Any = next(c for c in group.commands if c.name == name)
    await command.callback(group, interaction, provider=provider)


def test_the_bot_knows_the_providers_the_gateway_accepts() -> None:
    assert set(WALLET_PROVIDERS) == KNOWN_PROVIDERS


LONG_KEYS = [OR_KEY, OR_KEY.upper(), "sk-proj-" + "Ab3" * 40, "AIza/" + "x" * 30]


@pytest.mark.parametrize("typed", LONG_KEYS)
async def test_set_with_what_cannot_be_a_provider_opens_no_form_and_never_repeats_it(
    typed: str,
) -> None:
    """Longer than any provider's name (64), or with a character no name has: a key."""
    stub, interaction = Stub(), Interaction()
    await run(wallet(stub), "set", interaction, typed)
    assert interaction.response.modals == []
    assert stub.calls == []
    (text,) = interaction.texts()
    assert text.startswith("Unknown provider; known: ")
    assert "elevenlabs" in text
    assert typed.lower() not in text.lower()
    assert typed[3:15].lower() not in text.lower()


@pytest.mark.parametrize("typed", [EL_KEY, "groq", " Groq "])
async def test_set_with_a_name_the_bot_does_not_know_opens_an_untitled_form(typed: str) -> None:
    """It may be a provider the operator added to inference: the gateway decides. Nothing
    names it before then, and nothing is sent before the form is submitted."""
    stub, interaction = Stub(), Interaction()
    await run(wallet(stub), "set", interaction, typed)
    (modal,) = interaction.response.modals
    assert modal.title == "Your API key"
    assert modal.provider == typed.strip().lower()
    assert stub.calls == []
    assert interaction.texts() == []


async def test_an_untitled_form_for_a_key_typed_as_the_provider_is_refused_unquoted() -> None:
    stub = Stub()
    modal = WalletKeyModal(GatewayClient(cast(Any, stub), generate_timeout=5), EL_KEY)
    interaction = Interaction()
    await modal._scheduled_task(cast(Any, interaction), cast(Any, submitted(PLANTED)), {})
    [(_, request)] = stub.calls
    assert request.provider == EL_KEY  # the gateway refuses it, quoting nothing
    (text,) = interaction.texts()
    assert text.startswith("Your key was not saved: unknown provider; known: ")
    assert "groq" in text  # the gateway's list, the operator's providers with it
    assert EL_KEY[3:15] not in text
    assert modal.is_finished()


async def test_a_provider_only_the_gateway_knows_can_be_set_and_is_named_once_stored() -> None:
    stub, interaction = Stub(), Interaction()
    await run(wallet(stub), "set", interaction, "groq")
    (modal,) = interaction.response.modals
    submission = Interaction()
    await modal._scheduled_task(cast(Any, submission), cast(Any, submitted(PLANTED)), {})
    [(_, request)] = stub.calls
    assert (request.provider, request.api_key) == ("groq", PLANTED)
    assert submission.texts() == ["Saved your groq key (…wxyz). It is stored encrypted."]


async def test_set_with_a_known_provider_opens_the_form_named_for_it() -> None:
    stub, interaction = Stub(), Interaction()
    await run(wallet(stub), "set", interaction, " Brave ")
    (modal,) = interaction.response.modals
    assert modal.title == "Your brave API key"
    assert modal.provider == "brave"
    assert modal.timeout == MODAL_TIMEOUT_SECONDS == 300


@pytest.mark.parametrize("command", ["remove", "test"])
@pytest.mark.parametrize("typed", [EL_KEY, OR_KEY])
async def test_remove_and_test_with_an_unknown_provider_send_it_nowhere(
    command: str, typed: str
) -> None:
    stub, interaction = Stub(stored=("openrouter",)), Interaction()
    await run(wallet(stub), command, interaction, typed)
    assert [name for name, _ in stub.calls] == ["ListWalletKeys"]  # no provider in it
    (text,) = interaction.texts()
    assert text.startswith("Unknown provider; known: ")
    assert typed not in text
    assert all(typed not in str(request) for _, request in stub.calls)


@pytest.mark.parametrize(
    ("command", "rpc", "answer"),
    [
        ("remove", "RemoveWalletKey", "Removed your groq key."),
        ("test", "TestWalletKey", "Your groq key works."),
    ],
)
async def test_a_provider_the_user_holds_a_key_for_is_known(
    command: str, rpc: str, answer: str
) -> None:
    """One the operator added to inference (`TZUROT_PROVIDERS`): her key stays reachable."""
    stub, interaction = Stub(stored=("groq",)), Interaction()
    await run(wallet(stub), command, interaction, "groq")
    assert [name for name, _ in stub.calls] == ["ListWalletKeys", rpc]
    assert stub.calls[-1][1].provider == "groq"
    assert answer in interaction.texts()[0]


async def test_a_known_provider_needs_no_listing() -> None:
    stub, interaction = Stub(), Interaction()
    await run(wallet(stub), "remove", interaction, "openrouter")
    assert [name for name, _ in stub.calls] == ["RemoveWalletKey"]


def submitted(key: str) -> list[dict[str, Any]]:
    """The components of a modal submission, as Discord sends them."""
    return [{"type": 1, "components": [{"type": 4, "custom_id": "api_key", "value": key}]}]


@pytest.mark.parametrize("failing_edit", [False, True], ids=["answered", "answer-failed"])
async def test_the_form_forgets_the_key_and_stops_however_its_answer_went(
    failing_edit: bool,
) -> None:
    """discord.py stops a modal only when on_submit returns; one whose answer failed would
    stay registered, the key in its field, until its timeout."""
    stub = Stub()
    modal = WalletKeyModal(GatewayClient(cast(Any, stub), generate_timeout=5), "openrouter")
    interaction = Interaction(failing_edit=failing_edit)
    # As discord.py dispatches a submission: fill the fields, then on_submit (errors to on_error).
    await modal._scheduled_task(cast(Any, interaction), cast(Any, submitted(PLANTED)), {})
    [(_, request)] = stub.calls
    assert request.api_key == PLANTED
    assert modal.key.value == ""
    assert modal.is_finished()
    assert interaction.edits == (
        [] if failing_edit else ["Saved your openrouter key (…wxyz). It is stored encrypted."]
    )


async def saved_reply(stub: Stub, provider: str) -> str:
    """The answer to the key form of `/wallet set provider`, a key typed into it."""
    modal = WalletKeyModal(GatewayClient(cast(Any, stub), generate_timeout=5), provider)
    interaction = Interaction()
    await modal._scheduled_task(cast(Any, interaction), cast(Any, submitted(PLANTED)), {})
    (text,) = interaction.texts()
    assert PLANTED not in text
    return text


async def test_a_brave_key_is_said_to_be_stored_unchecked() -> None:
    """Brave Search has no free check: the gateway stores the key untried, and says so."""
    assert await saved_reply(Stub(), "brave") == (
        "Saved your brave key (…wxyz). It is stored encrypted. Brave Search has no free check, "
        "so it was not tried: its first use checks it (`/wallet test brave` checks it now, at "
        "the cost of one call)."
    )


async def test_any_key_the_gateway_stored_unchecked_is_said_so_by_its_name() -> None:
    """From the gateway's `unchecked`, not from the provider's name: the operator's own
    provider (one the bot does not know) is told so too."""
    assert await saved_reply(Stub(unchecked=frozenset({"groq"})), "groq") == (
        "Saved your groq key (…wxyz). It is stored encrypted. groq has no free check, so it "
        "was not tried: its first use checks it (`/wallet test groq` checks it now, at the "
        "cost of one call)."
    )


async def test_a_gateway_without_the_field_reads_as_checked() -> None:
    """An older gateway never sets `unchecked`: the bot says only that the key was saved,
    Brave's too (nothing it could not know)."""
    assert await saved_reply(Stub(unchecked=frozenset()), "brave") == (
        "Saved your brave key (…wxyz). It is stored encrypted."
    )


async def test_a_brave_test_says_it_spent_a_search() -> None:
    stub, interaction = Stub(), Interaction()
    await run(wallet(stub), "test", interaction, "brave")
    assert [name for name, _ in stub.calls] == ["TestWalletKey"]
    (text,) = interaction.texts()
    assert text == (
        "Your brave key works. Brave Search has no free check: this test was one search with it."
    )
