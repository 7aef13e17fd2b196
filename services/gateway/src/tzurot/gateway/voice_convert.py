"""Voice: proto ↔ domain (VoiceConfig, SpeechBilled, SpeechFinished, VoiceSampleInfo)."""

from __future__ import annotations

from tzurot.gateway.voice import Frequency, SpeechBilled, SpeechDone, Voice, VoiceSample
from tzurot.v1 import common_pb2 as common
from tzurot.v1 import gateway_pb2 as gw
from tzurot.v1 import inference_pb2 as inf

_FREQUENCY_IN: dict[int, Frequency] = {
    common.VOICE_FREQUENCY_UNSPECIFIED: "always",
    common.VOICE_FREQUENCY_ALWAYS: "always",
    common.VOICE_FREQUENCY_SOMETIMES: "sometimes",
    common.VOICE_FREQUENCY_ON_REQUEST: "on_request",
}
_FREQUENCY_OUT = {
    "always": common.VOICE_FREQUENCY_ALWAYS,
    "sometimes": common.VOICE_FREQUENCY_SOMETIMES,
    "on_request": common.VOICE_FREQUENCY_ON_REQUEST,
}


def voice(msg: common.VoiceConfig) -> Voice:
    frequency = _FREQUENCY_IN.get(msg.frequency, "always")
    return Voice(
        provider=msg.provider.strip(),
        voice_id=msg.voice_id.strip(),
        model=msg.model.strip(),
        stability=msg.stability if msg.HasField("stability") else None,
        similarity_boost=msg.similarity_boost if msg.HasField("similarity_boost") else None,
        style=msg.style if msg.HasField("style") else None,
        speed=msg.speed if msg.HasField("speed") else None,
        frequency=frequency,
        probability=msg.probability if frequency == "sometimes" else 1.0,
    )


def voice_proto(v: Voice) -> common.VoiceConfig:
    msg = common.VoiceConfig(
        provider=v.provider,
        voice_id=v.voice_id,
        model=v.model,
        frequency=_FREQUENCY_OUT[v.frequency],
        probability=v.probability,
    )
    if v.stability is not None:
        msg.stability = v.stability
    if v.similarity_boost is not None:
        msg.similarity_boost = v.similarity_boost
    if v.style is not None:
        msg.style = v.style
    if v.speed is not None:
        msg.speed = v.speed
    return msg


def speech_billed(msg: inf.SpeechBilled) -> SpeechBilled:
    return SpeechBilled(provider=msg.provider, model=msg.model, characters=msg.characters)


def speech_done(msg: common.SpeechFinished) -> SpeechDone:
    return SpeechDone(
        content_type=msg.content_type,
        size_bytes=msg.size_bytes,
        duration_secs=msg.duration_secs,
        waveform=msg.waveform,
        characters=msg.characters,
        stand_in_voice=msg.stand_in_voice,
        own_clone_missing=msg.own_clone_missing,
    )


def speech_finished(done: SpeechDone) -> common.SpeechFinished:
    return common.SpeechFinished(
        content_type=done.content_type,
        size_bytes=done.size_bytes,
        duration_secs=done.duration_secs,
        waveform=done.waveform,
        characters=done.characters,
        stand_in_voice=done.stand_in_voice,
        own_clone_missing=done.own_clone_missing,
    )


def sample_info(s: VoiceSample) -> gw.VoiceSampleInfo:
    msg = gw.VoiceSampleInfo(
        id=s.id,
        filename=s.filename,
        format=s.format,
        duration_secs=s.duration_secs,
        size_bytes=s.size_bytes,
    )
    msg.created_at.FromDatetime(s.created_at)
    return msg
