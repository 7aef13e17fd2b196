"""An answer on a keyless provider is not refused for a helper model nobody's key may pay for.

Hearth answers on the operator's own chat server (`my-llm`, declared keyless) and sees no
images: an image must be described, a voice note transcribed and cleaned, by helper models
on a keyed provider (`paidai`). The user holds no key for it and the job is not free (the
gateway sends a keyless config so: review 315 F1). Before, the whole reply was refused
NO_API_KEY for the helper's provider. Now that attachment is left unread, neither fetched nor
sent to any helper, and the message's text says so, naming the provider and `/wallet set`;
the answer is asked for all the same. An answer on a key (hers or the operator's) is still
refused NO_API_KEY: she would pay for an answer that never saw what she sent.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass, field, replace

import httpx2
import pytest
from pydantic import SecretStr

from tzurot.gateway.domain import Attachment
from tzurot.gateway.turn_edits import read_from_files, readings_of_files_shown
from tzurot.gateway.unread_files import UnreadFile, unread_files
from tzurot.inference.attachments import AttachmentLimits, AttachmentReader, HttpDownloader
from tzurot.inference.config import ProviderSetting
from tzurot.inference.domain import (
    AttachmentRead,
    AttachmentRef,
    Character,
    HelperCallPending,
    ModelChoice,
    ReplyEvent,
    ReplyFinished,
    ReplyRequest,
    UsageSpent,
)
from tzurot.inference.keys import KeyResolver
from tzurot.inference.llm import LlmClient
from tzurot.inference.providers import ProviderRegistry
from tzurot.inference.reply_settings import ModelName, ReplySettings
from tzurot.inference.service import Inference
from tzurot.runtime.errors import TzurotError
from tzurot.testing.cdn import local_cdn
from tzurot.testing.fake_provider import FakeProvider

pytestmark = pytest.mark.contract

USER_KEY = "sk-paid-user-3q9ZvW7mKx"
SYSTEM_KEY = "sk-paid-operator-8Hn2Lr5T"
PNG = b"\x89PNG\r\n\x1a\n" + bytes(120)
OGG = b"OggS" + bytes(200)
IMAGE_NOTE = (
    "[Image cat.png: not read; describing it needed an API key for paidai (/wallet set paidai)]"
)
"""Kept in history, it stays true once she adds the key (review 327 L2: "which the user has
not added" did not)."""
VOICE_NOTE = (
    "[Voice message voice.ogg: not read; transcribing it needed an API key for paidai "
    "(/wallet set paidai)]"
)


@dataclass
class Mesh:
    local: FakeProvider
    """The operator's chat server: it takes no key."""
    paid: FakeProvider
    """The helper models' provider: a key for every call."""
    cdn: str
    clients: list[LlmClient | httpx2.AsyncClient] = field(default_factory=list)


class Vault:
    def __init__(self, keys: Mapping[str, str]) -> None:
        self.keys = keys

    async def decrypt(self, user_id: str, provider: str) -> SecretStr | None:
        key = self.keys.get(provider)
        return None if key is None else SecretStr(key)


class NoHistory:
    async def recent_turns(
        self, channel_id: str, personality_id: str, limit: int, *, whole_channel: bool = False
    ) -> list[object]:
        return []


@pytest.fixture
async def mesh() -> AsyncIterator[Mesh]:
    async with (
        FakeProvider(require_key=False, any_model=True) as local,
        FakeProvider(valid_keys={USER_KEY, SYSTEM_KEY}, any_model=True) as paid,
        local_cdn({".ogg": (OGG, "audio/ogg"), "": (PNG, "image/png")}) as cdn,
    ):
        mesh = Mesh(local, paid, cdn)
        try:
            yield mesh
        finally:
            for client in mesh.clients:
                await client.aclose()


def inference(
    mesh: Mesh,
    *,
    user_keys: Mapping[str, str] | None = None,
    system_keys: Mapping[str, str] | None = None,
    transcription: str = "paidai",
    vision_model: str = "fake/vision",
) -> Inference:
    llm = LlmClient(timeout_seconds=10.0)
    downloads = httpx2.AsyncClient()
    mesh.clients += [llm, downloads]
    return Inference(
        providers=ProviderRegistry(
            {
                "my-llm": ProviderSetting(base_url=mesh.local.base_url, keyless=True),
                "keyedai": mesh.local.base_url,  # the same server, asked with a key
                "paidai": mesh.paid.base_url,
            }
        ),
        keys=KeyResolver(
            Vault(user_keys or {}),
            {name: SecretStr(key) for name, key in (system_keys or {}).items()},
            free_models=("*:free",),
        ),
        history=NoHistory(),  # type: ignore[arg-type]  # returns no turns at all
        llm=llm,
        settings=ReplySettings(
            vision=ModelName("paidai", vision_model),
            transcription=ModelName(transcription, "whisper-1"),
            transcript_cleanup=ModelName("paidai", "fake/cheap"),
        ),
        attachments=AttachmentReader(
            HttpDownloader(downloads, ["127.0.0.1"]), llm, AttachmentLimits()
        ),
    )


def cat(mesh: Mesh) -> AttachmentRef:
    return AttachmentRef(
        url=f"{mesh.cdn}/cat.png", content_type="image/png", filename="cat.png", size_bytes=len(PNG)
    )


def voice(mesh: Mesh) -> AttachmentRef:
    return AttachmentRef(
        url=f"{mesh.cdn}/voice.ogg",
        content_type="audio/ogg",
        filename="voice.ogg",
        size_bytes=len(OGG),
    )


def hearth(*attachments: AttachmentRef, provider: str = "my-llm") -> ReplyRequest:
    """A user's message to Hearth, as the gateway sends it: not free (review 315 F1)."""
    return ReplyRequest(
        job_id="j-1",
        user_id="u-1",
        author_name="Ann",
        channel_id="c-1",
        character=Character(id="p-1", name="Hearth"),
        model=ModelChoice(provider=provider, model="local/hearth", free_use=False),
        content="what is this?",
        attachments=attachments,
    )


async def events(service: Inference, request: ReplyRequest) -> list[ReplyEvent]:
    return [event async for event in service.generate_reply(request)]


def asked(server: FakeProvider) -> str:
    """The last answer's request, whole, as text."""
    return json.dumps(server.chat_requests()[-1].body)


async def test_an_image_is_left_unread_with_a_note_and_the_answer_comes(mesh: Mesh) -> None:
    """Before the fix: FAILED_PRECONDITION NO_API_KEY (paidai), and no answer."""
    said = await events(inference(mesh), hearth(cat(mesh)))

    finished = said[-1]
    assert isinstance(finished, ReplyFinished)
    assert finished.provider == "my-llm"
    prompt = asked(mesh.local)
    assert IMAGE_NOTE in prompt
    assert "image_url" not in prompt
    assert "base64" not in prompt
    assert IMAGE_NOTE in finished.user_content  # in history too: Hearth never saw it
    assert finished.attachments == (cat(mesh),)  # undescribed: read once she has a key
    assert mesh.paid.requests == []  # no helper asked, on any key
    assert not [e for e in said if isinstance(e, AttachmentRead | UsageSpent | HelperCallPending)]


async def test_a_voice_note_is_left_unheard_with_a_note(mesh: Mesh) -> None:
    said = await events(inference(mesh), hearth(voice(mesh), cat(mesh)))

    assert isinstance(said[-1], ReplyFinished)
    prompt = asked(mesh.local)
    assert VOICE_NOTE in prompt
    assert IMAGE_NOTE in prompt
    assert mesh.paid.requests == []
    assert mesh.paid.transcription_requests() == []


async def test_the_operators_key_never_reads_them_for_her(mesh: Mesh) -> None:
    """A free vision model and the operator's key for its provider: the job is not free, so
    his key pays for nothing of hers (review 315 F1), and the image is left unread."""
    service = inference(mesh, system_keys={"paidai": SYSTEM_KEY}, vision_model="fake/vision:free")
    said = await events(service, hearth(cat(mesh)))

    assert isinstance(said[-1], ReplyFinished)
    assert IMAGE_NOTE in asked(mesh.local)
    assert mesh.paid.requests == []


async def test_her_own_key_for_the_helper_reads_them(mesh: Mesh) -> None:
    mesh.paid.enqueue("A grey cat.")
    said = await events(inference(mesh, user_keys={"paidai": USER_KEY}), hearth(cat(mesh)))

    assert isinstance(said[-1], ReplyFinished)
    assert "[Image cat.png: A grey cat.]" in asked(mesh.local)
    (described,) = mesh.paid.chat_requests()
    assert described.api_key == USER_KEY
    assert [e.index for e in said if isinstance(e, AttachmentRead)] == [0]


async def test_a_keyless_transcription_without_a_clean_up_key_gives_the_raw_transcript(
    mesh: Mesh,
) -> None:
    """Transcribed on the keyless server; the clean-up on paidai has no key: not asked."""
    mesh.local.transcript = "hello hearth"
    said = await events(inference(mesh, transcription="my-llm"), hearth(voice(mesh)))

    assert isinstance(said[-1], ReplyFinished)
    assert "[Voice message: hello hearth]" in asked(mesh.local)
    assert len(mesh.local.transcription_requests()) == 1
    assert mesh.paid.requests == []


async def test_an_answer_on_her_key_is_still_refused_for_the_helpers(mesh: Mesh) -> None:
    """Unchanged: she pays for that answer; one that never saw her image is not worth it."""
    service = inference(mesh, user_keys={"keyedai": USER_KEY})
    with pytest.raises(TzurotError) as caught:
        await events(service, hearth(cat(mesh), provider="keyedai"))

    assert caught.value.reason == "NO_API_KEY"
    assert caught.value.metadata["provider"] == "paidai"
    assert mesh.paid.requests == []


async def test_a_job_sent_as_free_still_pays_no_helper_with_the_operators_key(
    mesh: Mesh,
) -> None:
    """The gateway sends a keyless answer as not free; were one sent as free all the same
    (it did so for a user holding a stale key for the keyless provider: review 327 M1), its
    helpers still take no operator's key: the image is left unread, with its note."""
    service = inference(mesh, system_keys={"paidai": SYSTEM_KEY}, vision_model="fake/vision:free")
    request = hearth(cat(mesh), voice(mesh))
    request = replace(request, model=replace(request.model, free_use=True))
    said = await events(service, request)

    assert isinstance(said[-1], ReplyFinished)
    prompt = asked(mesh.local)
    assert IMAGE_NOTE in prompt
    assert VOICE_NOTE in prompt
    assert mesh.paid.requests == []  # no helper asked, on the operator's key or any
    assert mesh.paid.transcription_requests() == []


async def test_the_gateway_tells_an_unread_files_note_apart_from_the_others(
    mesh: Mesh,
) -> None:
    """The message's turn as inference stores it (user_content), edited to take a file off:
    the gateway makes each file's line again to drop the removed one's, the note of a file
    left unread included (its own copy of the text: turn_edits.UNREAD_NOTE). Review 327 L1:
    it did not, so no reading could be told apart and every one was kept."""
    described = replace(voice(mesh), description="hello hearth")  # read on an earlier attempt
    unnamed = replace(cat(mesh), url=f"{mesh.cdn}/unnamed.png", filename="")
    sent = (cat(mesh), described, unnamed)
    said = await events(inference(mesh), hearth(*sent))
    finished = said[-1]
    assert isinstance(finished, ReplyFinished)
    unnamed_note = IMAGE_NOTE.replace("cat.png", "attachment 3")
    assert finished.user_content == "\n".join(
        ["what is this?", IMAGE_NOTE, "[Voice message: hello hearth]", unnamed_note]
    )

    files = [
        Attachment(url=a.url, content_type=a.content_type, filename=a.filename)
        for a in finished.attachments
    ]
    reads = {described.url: "hello hearth"}
    readings = read_from_files("what is this?", finished.user_content)
    assert readings is not None
    shown = [sent[0].url, sent[2].url]  # the voice message taken off
    assert readings_of_files_shown(readings, files, reads, shown) == "\n".join(
        [IMAGE_NOTE, unnamed_note]
    )
    assert readings_of_files_shown(readings, files, reads, [sent[1].url]) == (
        "[Voice message: hello hearth]"
    )


async def test_the_gateway_reads_an_empty_transcript_as_inference_writes_it(mesh: Mesh) -> None:
    """A silent voice message transcribed to nothing: inference writes "[Voice message: ]"
    all the same. The gateway makes that line again, live and from the job's row, so the
    photo left unread after it is still said under the answer (review 353 L2: it was not,
    and a contract drift was logged)."""
    mesh.local.transcript = ""
    said = await events(inference(mesh, transcription="my-llm"), hearth(voice(mesh), cat(mesh)))
    finished = said[-1]
    assert isinstance(finished, ReplyFinished)
    assert finished.user_content == f"what is this?\n[Voice message: ]\n{IMAGE_NOTE}"

    live = [
        Attachment(a.url, a.content_type, a.filename, description=a.description)
        for a in finished.attachments
    ]
    stored = [replace(a, description="") for a in live]
    reads = {voice(mesh).url: ""}
    unread = [UnreadFile(image=True, provider="paidai")]
    assert unread_files("what is this?", finished.user_content, live, job_id="j") == unread
    assert unread_files("what is this?", finished.user_content, stored, reads, job_id="j") == unread
