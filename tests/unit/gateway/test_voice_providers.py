"""A voice names a provider inference speaks with (review: `/personality voice set provider`
took any text, stored it, and every answer the voice was to speak then failed at inference;
then a fixed list refused the speech servers an operator adds with `TZUROT_PROVIDERS`).

Here, an inference that lists names only (older than ListProvidersResponse.speech_providers;
one that says which speak: test_voice_speech_providers.py). It is the authority (its
ListProviders, asked through the wallet's cached
`InferenceProviders`): any name it lists is taken but those known to speak no audio (Brave,
its built-in chat providers, refused saying so), anything else refused with INVALID_ARGUMENT
naming what is taken. In a pod (`TZUROT_LOOPBACK_PROVIDERS=false`) a local speech server the
operator has not given an address is FAILED_PRECONDITION PROVIDER_NOT_CONFIGURED, as inference
says it (review 277). When inference cannot answer, only ElevenLabs and OpenAI (always listed)
are taken and any other name is UNAVAILABLE, to try again: it may be the operator's own, or an
unconfigured local one. The cheap checks (no name, too long) come first and ask inference
nothing. The bot suggests the built-in ones and lets any be typed
(tests/unit/bot/test_bad_input_options.py).
"""

from __future__ import annotations

from types import SimpleNamespace
from typing import cast

import grpc
import pytest

import tzurot.gateway.voice as rules
from tzurot.gateway import wallet
from tzurot.gateway.admin.base import Principal
from tzurot.gateway.admin.voice import VoiceAdmin
from tzurot.gateway.domain import Personality
from tzurot.gateway.provider_list import (
    KNOWN_PROVIDERS,
    FixedProviders,
    InferenceProviders,
    Listed,
    ProviderList,
)
from tzurot.gateway.voice import Voice, validate_voice
from tzurot.gateway.voice_store import VoiceStore
from tzurot.inference.providers import DEFAULT_PROVIDERS, LOCAL_PROVIDERS, ProviderRegistry
from tzurot.inference.speech_types import ELEVENLABS
from tzurot.inference.wallet_keys import wallet_providers
from tzurot.runtime.errors import (
    PROVIDER_NOT_CONFIGURED,
    FailedPrecondition,
    InvalidArgument,
    TzurotError,
    Unavailable,
)

OPERATOR = Principal(user=None)
OPERATORS_OWN = "my-tts"
"""A speech server the operator added (`TZUROT_PROVIDERS={"my-tts": …}`)."""
LISTED = frozenset({*DEFAULT_PROVIDERS, OPERATORS_OWN, ELEVENLABS, "brave"})
"""What inference's ListProviders answers with voice served and Brave as the search backend."""
TAKEN = "elevenlabs, kokoro, my-tts, openai, openedai-speech"
REFUSED = (
    "unknown provider; of the providers inference lists, a voice may name elevenlabs, kokoro, "
    "openai, openedai-speech, or one the operator added: my-tts (that speaks only if its server "
    "serves speech)"
)
"""An unknown name's refusal: the built-in speech providers, then the operator's own, which
inference cannot say speak (review 277: the refusal called every listed name a voice's)."""
SPEECH_SERVER = "http://tts.lan:8880/v1"


def listed_in_a_pod(operators: dict[str, str]) -> frozenset[str]:
    """What inference's ListProviders answers in the shipped Kubernetes setup
    (`TZUROT_LOOPBACK_PROVIDERS=false`), the operator's `TZUROT_PROVIDERS` being `operators`:
    its real registry and `wallet_providers`, voice served."""
    registry = ProviderRegistry(operators, loopback_defaults=False)
    return frozenset(wallet_providers(registry.names, voice=True, brave=False))


class Inference:
    """An older inference's ListProviders: `listed` (names only, no `speech_providers`), or a
    TzurotError when it cannot answer."""

    def __init__(self, listed: frozenset[str] | TzurotError) -> None:
        self.listed = listed
        self.asked = 0

    async def list_providers(self) -> ProviderList:
        self.asked += 1
        if isinstance(self.listed, TzurotError):
            raise self.listed
        return ProviderList(self.listed)


class Voices:
    def __init__(self) -> None:
        self.stored: dict[str, Voice] = {}

    async def put_voice(self, personality_id: str, voice: Voice) -> None:
        self.stored[personality_id] = voice

    async def voice(self, personality_id: str) -> Voice | None:
        return self.stored.get(personality_id)


class VoiceSetting(VoiceAdmin):
    """Only what set_personality_voice needs: the personality, its voice's store and
    inference's providers (the wallet's cached lookup, as the gateway wires it)."""

    def __init__(self, inference: Inference) -> None:  # no super().__init__: nothing else used
        self.voices = Voices()
        self._providers = InferenceProviders(inference)

    @property
    def _voices(self) -> VoiceStore:
        return cast(VoiceStore, self.voices)

    async def _owned(self, name: str, who: Principal, field: str = "personality") -> Personality:
        return cast(Personality, SimpleNamespace(id="p1", slug=name))


async def set_voice(inference: Inference, provider: str) -> Voice | None:
    return await VoiceSetting(inference).set_personality_voice(
        OPERATOR, "echo", Voice(provider, "alloy")
    )


@pytest.mark.parametrize("provider", sorted(TAKEN.split(", ")))
async def test_each_speaking_provider_inference_lists_is_taken(provider: str) -> None:
    """The operator's own among them: no fixed list in the gateway refuses it."""
    voice = await set_voice(Inference(LISTED), provider)
    assert voice is not None
    assert voice.provider == provider


@pytest.mark.parametrize("provider", ["elevenlab", "ElevenLabs", "mistral"])
async def test_any_other_is_refused_naming_what_inference_lists(provider: str) -> None:
    admin = VoiceSetting(Inference(LISTED))
    with pytest.raises(InvalidArgument) as refused:
        await admin.set_personality_voice(OPERATOR, "echo", Voice(provider, "alloy"))
    assert refused.value.code is grpc.StatusCode.INVALID_ARGUMENT
    assert (refused.value.field, refused.value.reason) == ("voice.provider", "UNKNOWN_PROVIDER")
    assert str(refused.value) == REFUSED  # never what was given
    assert admin.voices.stored == {}


@pytest.mark.parametrize(
    ("provider", "what"),
    [("brave", "web search"), *((p, "a chat provider") for p in ("openrouter", "ollama", "vllm"))],
)
async def test_a_chat_provider_is_refused_saying_so_even_pointed_at_a_speech_server(
    provider: str, what: str
) -> None:
    """ListProviders gives names only: `vllm` the operator pointed at a speech server lists as
    any `vllm` does, so the refusal says where a speech server goes instead (review 277)."""
    pointed = LISTED | {provider}  # `TZUROT_PROVIDERS={"vllm": <a speech server>}`: no change
    admin = VoiceSetting(Inference(pointed))
    with pytest.raises(InvalidArgument) as refused:
        await admin.set_personality_voice(OPERATOR, "echo", Voice(provider, "alloy"))
    assert refused.value.field == "voice.provider"
    assert str(refused.value) == (
        f"{provider!r} is {what}, not a speech provider; a speech server is given kokoro's or "
        "openedai-speech's address, or a name of its own, in the operator's TZUROT_PROVIDERS"
    )
    assert admin.voices.stored == {}


@pytest.mark.parametrize("provider", ["kokoro", "openedai-speech"])
async def test_in_a_pod_a_local_speech_server_without_an_address_is_the_operators_to_set(
    provider: str,
) -> None:
    """The shipped Kubernetes setup: inference lists neither local speech server until the
    operator gives it an address, and the voice is refused as inference refuses it (the README's
    FAILED_PRECONDITION PROVIDER_NOT_CONFIGURED, saying what to set), not as an unknown name."""
    admin = VoiceSetting(Inference(listed_in_a_pod({OPERATORS_OWN: SPEECH_SERVER})))
    with pytest.raises(FailedPrecondition) as refused:
        await admin.set_personality_voice(OPERATOR, "echo", Voice(provider, "af_bella"))
    assert refused.value.code is grpc.StatusCode.FAILED_PRECONDITION
    assert (refused.value.reason, refused.value.metadata) == (
        PROVIDER_NOT_CONFIGURED,
        {"provider": provider},
    )
    assert str(refused.value) == (
        f"provider {provider!r} is not set up on this server: its default address is "
        "inference's own loopback, where nothing runs in this deployment; the operator must "
        "give it its server's address (TZUROT_PROVIDERS)"
    )
    with pytest.raises(FailedPrecondition) as inference_says:  # inference's own words
        ProviderRegistry({}, loopback_defaults=False).get(provider)
    assert inference_says.value.reason == PROVIDER_NOT_CONFIGURED
    assert str(inference_says.value).startswith(f"provider {provider!r} is not set up on this")
    assert str(inference_says.value).endswith(str(refused.value).rsplit(";", 1)[1])
    assert admin.voices.stored == {}


async def test_in_a_pod_a_local_speech_server_given_an_address_is_taken() -> None:
    operators = {"kokoro": SPEECH_SERVER, OPERATORS_OWN: SPEECH_SERVER}
    voice = await set_voice(Inference(listed_in_a_pod(operators)), "kokoro")
    assert voice is not None
    assert voice.provider == "kokoro"
    with pytest.raises(InvalidArgument) as refused:
        await set_voice(Inference(listed_in_a_pod(operators)), "elevenlab")
    assert str(refused.value) == (
        "unknown provider; of the providers inference lists, a voice may name elevenlabs, "
        "kokoro, openai, or one the operator added: my-tts (that speaks only if its server "
        "serves speech)"
    )


async def test_an_operators_chat_back_end_is_taken_but_not_called_a_speech_provider() -> None:
    """The fallback's limit (an older inference does not say which providers speak):
    `deepseek` is taken, as before that field, rather than every voice refused; the refusal
    names it apart from the speech providers, as one that may not speak."""
    listed = LISTED | {"deepseek"}
    voice = await set_voice(Inference(listed), "deepseek")
    assert voice is not None
    with pytest.raises(InvalidArgument) as refused:
        await set_voice(Inference(listed), "elevenlab")
    assert str(refused.value).endswith(
        "a voice may name elevenlabs, kokoro, openai, openedai-speech, or one the operator "
        "added: deepseek, my-tts (that speaks only if its server serves speech)"
    )


@pytest.mark.parametrize(
    "failure",
    [
        Unavailable("inference is restarting"),
        TzurotError("not yet", reason="NOT_IMPLEMENTED", code=grpc.StatusCode.UNIMPLEMENTED),
    ],
    ids=["down", "older-inference"],
)
async def test_without_inferences_answer_only_what_it_always_lists_is_taken(
    failure: TzurotError,
) -> None:
    """Review 277: the built-in stand-in list made the operator's own name a lasting
    INVALID_ARGUMENT, and let an unconfigured `kokoro` (a pod) be stored. Now any name but
    ElevenLabs and OpenAI is UNAVAILABLE, to try again; inference is asked again once its
    failure's few seconds are over (provider_list.PROVIDERS_RETRY_SECONDS), not at every voice."""
    away = Inference(failure)
    admin = VoiceSetting(away)
    for provider in (OPERATORS_OWN, "kokoro", "openedai-speech", "elevenlab"):
        with pytest.raises(Unavailable) as later:
            await admin.set_personality_voice(OPERATOR, "echo", Voice(provider, "alloy"))
        assert str(later.value) == wallet.NO_PROVIDER_LIST
    assert admin.voices.stored == {}
    with pytest.raises(InvalidArgument, match=r"^'vllm' is a chat provider"):  # refused anyway
        await admin.set_personality_voice(OPERATOR, "echo", Voice("vllm", "alloy"))
    for provider in (ELEVENLABS, "openai"):
        voice = await admin.set_personality_voice(OPERATOR, "echo", Voice(provider, "alloy"))
        assert voice is not None
        assert voice.provider == provider
    assert away.asked == 1  # the stand-in is never kept, the failure a few seconds
    away.listed = LISTED  # inference is back
    assert (await set_voice(away, OPERATORS_OWN) or Voice("", "")).provider == OPERATORS_OWN


async def test_the_lookup_says_whether_inference_answered() -> None:
    lookup = InferenceProviders(Inference(Unavailable("inference is restarting")))
    assert await lookup.listed() == Listed(ProviderList(KNOWN_PROVIDERS), answered=False)
    assert await lookup.names() == KNOWN_PROVIDERS
    lookup = InferenceProviders(Inference(LISTED))
    assert await lookup.listed() == Listed(ProviderList(LISTED), answered=True)
    assert await FixedProviders(KNOWN_PROVIDERS).listed() == Listed(
        ProviderList(KNOWN_PROVIDERS), answered=True
    )


async def test_inferences_list_is_asked_once_a_minute_not_at_every_voice() -> None:
    inference = Inference(LISTED)
    admin = VoiceSetting(inference)
    for provider in ("kokoro", OPERATORS_OWN, ELEVENLABS):
        await admin.set_personality_voice(OPERATOR, "echo", Voice(provider, "alloy"))
    assert inference.asked == 1


@pytest.mark.parametrize(
    ("provider", "said"),
    [
        ("", "name the voice's provider"),
        ("  ", "name the voice's provider"),
        ("x" * 65, "voice.provider is longer than 64 characters"),
    ],
)
async def test_the_cheap_checks_come_first_and_ask_inference_nothing(
    provider: str, said: str
) -> None:
    inference = Inference(LISTED)
    with pytest.raises(InvalidArgument) as refused:
        await set_voice(inference, provider)
    assert (refused.value.field, str(refused.value)) == ("voice.provider", said)
    assert inference.asked == 0


def test_validate_voice_checks_the_providers_form_only() -> None:
    """What has no inference at hand (a shapes.inc import's ElevenLabs voice) is checked the
    same way, without it."""
    assert validate_voice(Voice("x" * 64, "alloy")).provider == "x" * 64
    with pytest.raises(InvalidArgument, match="longer than 64 characters"):
        validate_voice(Voice("x" * 65, "alloy"))


def test_the_built_in_speech_providers_are_inferences_and_its_fallback_list() -> None:
    """ElevenLabs by its own API; OpenAI and the local speech servers by `/audio/speech`, each
    a built-in provider of inference; when inference cannot answer, what the wallet's
    built-in list leaves once the names that do not speak are taken out."""
    assert rules.BUILT_IN_SPEECH_PROVIDERS[0] == ELEVENLABS
    assert set(rules.BUILT_IN_SPEECH_PROVIDERS[1:]) <= set(DEFAULT_PROVIDERS)
    assert set(rules.LOCAL_SPEECH_PROVIDERS) == LOCAL_PROVIDERS & {*rules.BUILT_IN_SPEECH_PROVIDERS}
    assert rules.speech_providers(KNOWN_PROVIDERS) == tuple(sorted(rules.BUILT_IN_SPEECH_PROVIDERS))
    assert listed_in_a_pod({}) >= {ELEVENLABS, "openai"}  # what is taken without inference


def test_the_voices_words_for_an_absent_inference_and_an_unknown_name_are_the_wallets() -> None:
    assert rules.NO_PROVIDER_LIST == wallet.NO_PROVIDER_LIST
    assert rules.UNKNOWN_PROVIDER == wallet.UNKNOWN_PROVIDER


def test_the_names_that_do_not_speak_are_brave_and_the_built_in_chat_providers() -> None:
    assert rules.NOT_SPEECH_PROVIDERS <= KNOWN_PROVIDERS
    assert rules.NOT_SPEECH_PROVIDERS - {"brave"} <= set(DEFAULT_PROVIDERS)
    assert not rules.NOT_SPEECH_PROVIDERS & set(rules.BUILT_IN_SPEECH_PROVIDERS)
    assert set(rules.speech_providers(LISTED)) == set(TAKEN.split(", "))
