"""The voice RPCs (issue 17): a personality's voice, users' choices, samples and cloning."""

from __future__ import annotations

from collections.abc import AsyncIterator

from tzurot.gateway.admin_server.base import AdminRpcs
from tzurot.gateway.server import Context
from tzurot.runtime.errors import Unimplemented
from tzurot.v1 import gateway_pb2 as gw


def _not_yet(method: str) -> Unimplemented:
    return Unimplemented(f"{method} is not built yet")


class VoiceRpcs(AdminRpcs):
    async def SetPersonalityVoice(
        self, request: gw.SetPersonalityVoiceRequest, context: Context
    ) -> gw.SetPersonalityVoiceResponse:
        raise _not_yet("SetPersonalityVoice")

    async def GetPersonalityVoice(
        self, request: gw.GetPersonalityVoiceRequest, context: Context
    ) -> gw.GetPersonalityVoiceResponse:
        raise _not_yet("GetPersonalityVoice")

    async def SetVoicePreference(
        self, request: gw.SetVoicePreferenceRequest, context: Context
    ) -> gw.SetVoicePreferenceResponse:
        raise _not_yet("SetVoicePreference")

    async def SpeakAnswer(
        self, request: gw.SpeakAnswerRequest, context: Context
    ) -> AsyncIterator[gw.SpeakAnswerResponse]:
        raise _not_yet("SpeakAnswer")
        yield gw.SpeakAnswerResponse()  # pragma: no cover  # makes this a generator

    async def UploadVoiceSample(
        self, request: gw.UploadVoiceSampleRequest, context: Context
    ) -> gw.UploadVoiceSampleResponse:
        raise _not_yet("UploadVoiceSample")

    async def ListVoiceSamples(
        self, request: gw.ListVoiceSamplesRequest, context: Context
    ) -> gw.ListVoiceSamplesResponse:
        raise _not_yet("ListVoiceSamples")

    async def RemoveVoiceSample(
        self, request: gw.RemoveVoiceSampleRequest, context: Context
    ) -> gw.RemoveVoiceSampleResponse:
        raise _not_yet("RemoveVoiceSample")

    async def CloneVoiceFromSamples(
        self, request: gw.CloneVoiceFromSamplesRequest, context: Context
    ) -> gw.CloneVoiceFromSamplesResponse:
        raise _not_yet("CloneVoiceFromSamples")
