"""InferenceService over gRPC: thin. Convert the request, call the use-case, convert the reply.

Domain errors (tzurot.runtime.errors) propagate to the runtime's interceptor, which maps
them to rich statuses. Authorization per method is the server's policy (see app.py). The
caller's deadline (`time_remaining`) bounds the provider calls' retries (retries.py).
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import aclosing
from datetime import UTC

import grpc
from pydantic import SecretStr

from tzurot.inference import convert
from tzurot.inference.domain import (
    HelperCallPending,
    KeyRefused,
    PaidCall,
    PromptSent,
    RoundsBilled,
    UsageSpent,
)
from tzurot.inference.fact_extraction import KnownFact, SaidTurn, extraction_messages
from tzurot.inference.key_checks import _check_api_key
from tzurot.inference.reply_settings import ModelName
from tzurot.inference.service import Inference
from tzurot.inference.skills.search import BRAVE
from tzurot.inference.speech import ELEVENLABS, Sample
from tzurot.inference.voice import MAX_CLONE_SAMPLES, SpeechBilled, VoiceService
from tzurot.inference.wallet_keys import BraveKeys, speech_providers, wallet_providers
from tzurot.runtime.errors import InvalidArgument, TzurotError
from tzurot.v1 import common_pb2 as common
from tzurot.v1 import inference_pb2 as inf
from tzurot.v1 import inference_pb2_grpc as inf_grpc

Context = grpc.aio.ServicerContext[object, object]

PROMPT_TOKENS_METADATA = "tzurot-prompt-tokens"
"""Initial metadata of ExtractFacts, sent once the provider accepted its request (the 200's
headers, before any chunk; never while connecting, backing off or waiting out a 429): the
prompt's tokens, estimated with the model's tokenizer (a unary call's PromptSent). A call its
caller cuts (its deadline) can carry no status details, but the caller still reads these
headers, and counts that prompt as billed (gateway's cancelled_usage.py, the same name)."""


def not_implemented(method: str) -> TzurotError:
    return TzurotError(
        f"{method} is not implemented yet",
        reason="NOT_IMPLEMENTED",
        code=grpc.StatusCode.UNIMPLEMENTED,
    )


class InferenceServicer(inf_grpc.InferenceServiceServicer):
    def __init__(
        self,
        inference: Inference,
        voice: VoiceService | None = None,
        brave: BraveKeys | None = None,
    ) -> None:
        self._inference = inference
        self._voice = voice
        self._brave = brave

    def _voices(self) -> VoiceService:
        if self._voice is None:
            raise not_implemented("voice")
        return self._voice

    async def SynthesizeSpeech(
        self, request: inf.SynthesizeSpeechRequest, context: Context
    ) -> AsyncIterator[inf.SynthesizeSpeechResponse]:
        events = self._voices().synthesize(
            request.user_id, convert.voice_spec(request.voice), request.text
        )
        async with aclosing(events):
            async for event in events:
                if isinstance(event, bytes):
                    yield inf.SynthesizeSpeechResponse(chunk=common.AudioChunk(data=event))
                elif isinstance(event, SpeechBilled):
                    yield inf.SynthesizeSpeechResponse(billed=convert.speech_billed(event))
                else:
                    yield inf.SynthesizeSpeechResponse(finished=convert.speech_finished(event))

    async def CloneVoice(
        self, request_iterator: AsyncIterator[inf.CloneVoiceRequest], context: Context
    ) -> inf.CloneVoiceResponse:
        voices = self._voices()
        # Up to 250 MiB of samples: read (gRPC's flow control holds the sender meanwhile) and
        # sent only in one of the voice work slots, as a conversion is.
        async with voices.audio_slot("clone"):
            header: inf.CloneVoiceHeader | None = None
            samples: list[Sample] = []
            async for part in request_iterator:
                if not isinstance(part, inf.CloneVoiceRequest):  # one that did not parse
                    raise InvalidArgument("request", "the request is not a valid protobuf message")
                if part.WhichOneof("part") == "header":
                    header = part.header
                elif part.WhichOneof("part") == "sample":
                    samples.append(Sample(part.sample.filename, part.sample.data))
                    if len(samples) > MAX_CLONE_SAMPLES:
                        raise InvalidArgument("sample", f"at most {MAX_CLONE_SAMPLES} samples")
            if header is None:
                raise InvalidArgument("header", "the first message must be the header")
            try:
                voice_id = await voices.clone(
                    header.user_id,
                    header.name,
                    header.description,
                    samples,
                    personality_id=header.personality_id,
                    keep_voice_id=header.keep_voice_id,
                    keep_voice_ids=tuple(header.keep_voice_ids),
                    mark_personality_id=header.mark_personality_id,
                )
            finally:
                samples.clear()  # freed before the next one in the slot reads its own
        return inf.CloneVoiceResponse(voice_id=voice_id)

    async def DeleteVoice(
        self, request: inf.DeleteVoiceRequest, context: Context
    ) -> inf.DeleteVoiceResponse:
        deleted = await self._voices().delete_voice(request.user_id, request.voice_id)
        return inf.DeleteVoiceResponse(deleted=deleted)

    async def ListMarkedClones(
        self, request: inf.ListMarkedClonesRequest, context: Context
    ) -> inf.ListMarkedClonesResponse:
        found = await self._voices().marked_clones(request.user_id, request.personality_id)
        return inf.ListMarkedClonesResponse(voice_ids=found)

    async def GenerateReply(
        self, request: inf.GenerateReplyRequest, context: Context
    ) -> AsyncIterator[inf.GenerateReplyResponse]:
        events = self._inference.generate_reply(
            convert.reply_request(request), time_limit=context.time_remaining()
        )
        async with aclosing(events):
            async for event in events:
                if not _accepts(request, event):
                    continue  # an older gateway would read it as the finished answer
                if isinstance(event, HelperCallPending) and not request.accepts_helper_call_pending:
                    yield convert.transcription_pending(event)  # the event it reads
                    continue
                yield convert.reply_event(event)

    async def ListSkills(
        self, request: inf.ListSkillsRequest, context: Context
    ) -> inf.ListSkillsResponse:
        return inf.ListSkillsResponse(
            skills=[convert.skill_info(skill) for skill in self._inference.list_skills()]
        )

    async def ValidateKey(
        self, request: inf.ValidateKeyRequest, context: Context
    ) -> inf.ValidateKeyResponse:
        which = request.WhichOneof("key")
        if which == "api_key":
            # Every provider's new key, ElevenLabs' too: one with CR/LF or another control
            # character would otherwise reach the HTTP client, whose refusal of the header
            # value is logged with the value whole (httpcore at DEBUG).
            _check_api_key(SecretStr(request.api_key))
        if request.provider == BRAVE and self._brave is not None:
            brave = (
                await self._brave.check_key(SecretStr(request.api_key))
                if which == "api_key"
                else await self._brave.check_stored_key(request.user_id)
            )
            return inf.ValidateKeyResponse(
                unchecked=brave.unchecked, billed_requests=brave.billed_requests
            )
        if request.provider == ELEVENLABS:
            voices = self._voices()
            check = (
                await voices.check_key(SecretStr(request.api_key))
                if which == "api_key"
                else await voices.check_stored_key(request.user_id)
            )
            return convert.key_check(check)
        count = await self._inference.validate_key(
            request.provider,
            api_key=SecretStr(request.api_key) if which == "api_key" else None,
            user_id=request.user_id if which == "user_id" else None,
            time_limit=context.time_remaining(),
        )
        return inf.ValidateKeyResponse(model_count=count)

    async def ListProviders(
        self, request: inf.ListProvidersRequest, context: Context
    ) -> inf.ListProvidersResponse:
        return inf.ListProvidersResponse(
            providers=wallet_providers(
                self._inference.provider_names(),
                voice=self._voice is not None,
                brave=self._brave is not None and self._brave.offered,
            ),
            speech_providers=speech_providers(
                self._inference.speech_provider_names(), voice=self._voice is not None
            ),
            speech_providers_listed=True,
            keyless_providers=self._inference.keyless_provider_names(),
            keyless_providers_listed=True,
        )

    async def ExtractFacts(
        self, request: inf.ExtractFactsRequest, context: Context
    ) -> inf.ExtractFactsResponse:
        config = request.config.config
        known = [KnownFact(m.id, m.text) for m in request.known_facts]
        messages = extraction_messages(
            request.user_name or "the user",
            request.personality_name or "the personality",
            [
                SaidTurn(
                    turn.author_name or ("the user" if turn.role == common.ROLE_USER else "them"),
                    convert.said_text(turn),
                    turn.created_at.ToDatetime(tzinfo=UTC) if turn.HasField("created_at") else None,
                )
                for turn in request.turns
            ],
            known,
        )
        cut_off: list[PaidCall] = []
        try:
            facts, usage = await self._inference.extract_facts(
                request.user_id,
                ModelName(config.provider, config.model),
                config.free_use,
                messages,
                {fact.id for fact in known},
                time_limit=context.time_remaining(),
                cut_off=cut_off,
                announce=lambda tokens: context.send_initial_metadata(
                    ((PROMPT_TOKENS_METADATA, str(tokens)),)
                ),
            )
        except TzurotError as err:
            _attach_cut_off(err, cut_off)
            raise
        return inf.ExtractFactsResponse(
            facts=[inf.ExtractedFact(text=f.text, supersedes=f.supersedes) for f in facts],
            usage=common.Usage(
                provider=config.provider,
                model=config.model,
                input_tokens=usage.input_tokens,
                output_tokens=usage.output_tokens,
                estimated=usage.estimated,  # a stream without a usage chunk
            ),
        )


def _attach_cut_off(err: TzurotError, cut_off: list[PaidCall]) -> None:
    """Puts in `err`'s status details the calls that failed once their request went out
    (UsageSpent, failed, estimated): an error has no body, and the provider may have billed
    them. The caller records them; an older caller ignores the detail."""
    detail = convert.cut_off_detail(cut_off)
    if detail is not None:
        err.attach(detail)


def _accepts(request: inf.GenerateReplyRequest, event: object) -> bool:
    """Whether the caller reads `event`: an older gateway read any event it did not know as
    the finished answer (and gateways of 3c3cebc..3ba29af knew PromptSent and RoundsBilled
    only as fields, reading them so too: review 159). KeyRefused and HelperCallPending have
    their own flags: a gateway that knows the field only (its stubs regenerated, its code
    not) would read it so too. A gateway that reads only TranscriptionPending is sent that
    (GenerateReply)."""
    if isinstance(event, KeyRefused):
        return request.accepts_key_refused
    if isinstance(event, HelperCallPending):
        return request.accepts_helper_call_pending or request.accepts_transcription_pending
    if isinstance(event, PromptSent | RoundsBilled):
        return request.accepts_answer_progress
    if isinstance(event, UsageSpent):
        return request.accepts_usage_spent
    return True
