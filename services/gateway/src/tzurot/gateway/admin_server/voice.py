"""The voice RPCs (issue 17): thin handlers over VoiceAdmin (admin/voice.py)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import aclosing

from tzurot.gateway import voice_convert
from tzurot.gateway.admin_server.base import AdminRpcs
from tzurot.gateway.server import Context
from tzurot.gateway.voice import SpeechDone
from tzurot.runtime.errors import InvalidArgument
from tzurot.v1 import common_pb2 as common
from tzurot.v1 import gateway_pb2 as gw

_CHOICES = {
    gw.VOICE_CHOICE_UNSPECIFIED: "",
    gw.VOICE_CHOICE_ENABLE: "enable",
    gw.VOICE_CHOICE_DISABLE: "disable",
    gw.VOICE_CHOICE_RESET: "reset",
}
_CHOICES_OUT = {
    "": gw.VOICE_CHOICE_RESET,
    "enable": gw.VOICE_CHOICE_ENABLE,
    "disable": gw.VOICE_CHOICE_DISABLE,
}


class VoiceRpcs(AdminRpcs):
    async def SetPersonalityVoice(
        self, request: gw.SetPersonalityVoiceRequest, context: Context
    ) -> gw.SetPersonalityVoiceResponse:
        wanted = voice_convert.voice(request.voice) if request.voice.provider.strip() else None
        stored = await self._admin.set_personality_voice(
            await self._who(request), request.personality, wanted
        )
        if stored is None:
            return gw.SetPersonalityVoiceResponse()
        return gw.SetPersonalityVoiceResponse(voice=voice_convert.voice_proto(stored))

    async def GetPersonalityVoice(
        self, request: gw.GetPersonalityVoiceRequest, context: Context
    ) -> gw.GetPersonalityVoiceResponse:
        found = await self._admin.personality_voice(await self._who(request), request.personality)
        if found is None:
            return gw.GetPersonalityVoiceResponse()
        return gw.GetPersonalityVoiceResponse(voice=voice_convert.voice_proto(found))

    async def SetVoicePreference(
        self, request: gw.SetVoicePreferenceRequest, context: Context
    ) -> gw.SetVoicePreferenceResponse:
        if request.choice not in _CHOICES:
            raise InvalidArgument("choice", "unknown voice choice")
        choice, limit = await self._admin.set_voice_preference(
            await self._who(request), _CHOICES[request.choice], request.character_limit
        )
        return gw.SetVoicePreferenceResponse(choice=_CHOICES_OUT[choice], character_limit=limit)

    async def SpeakAnswer(
        self, request: gw.SpeakAnswerRequest, context: Context
    ) -> AsyncIterator[gw.SpeakAnswerResponse]:
        events = self._admin.speak_answer(
            await self._who(request), job_id=request.job_id, message_id=request.message_id
        )
        async with aclosing(events):
            async for event in events:
                if isinstance(event, SpeechDone):
                    yield gw.SpeakAnswerResponse(finished=voice_convert.speech_finished(event))
                else:
                    yield gw.SpeakAnswerResponse(chunk=common.AudioChunk(data=event))

    async def UploadVoiceSample(
        self, request: gw.UploadVoiceSampleRequest, context: Context
    ) -> gw.UploadVoiceSampleResponse:
        sample = await self._admin.upload_voice_sample(
            await self._who(request), request.personality, request.filename, request.data
        )
        return gw.UploadVoiceSampleResponse(sample=voice_convert.sample_info(sample))

    async def ListVoiceSamples(
        self, request: gw.ListVoiceSamplesRequest, context: Context
    ) -> gw.ListVoiceSamplesResponse:
        samples = await self._admin.voice_samples(await self._who(request), request.personality)
        return gw.ListVoiceSamplesResponse(samples=[voice_convert.sample_info(s) for s in samples])

    async def RemoveVoiceSample(
        self, request: gw.RemoveVoiceSampleRequest, context: Context
    ) -> gw.RemoveVoiceSampleResponse:
        await self._admin.remove_voice_sample(
            await self._who(request), request.personality, request.sample_id
        )
        return gw.RemoveVoiceSampleResponse()

    async def CloneVoiceFromSamples(
        self, request: gw.CloneVoiceFromSamplesRequest, context: Context
    ) -> gw.CloneVoiceFromSamplesResponse:
        voice, used = await self._admin.clone_voice(await self._who(request), request.personality)
        return gw.CloneVoiceFromSamplesResponse(
            voice=voice_convert.voice_proto(voice), samples_used=used
        )
