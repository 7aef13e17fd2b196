"""Voice: `/voice enable|disable|reset|limit`, the "Speak" message menu, and `/personality
voice …` and `/personality voice-sample …` for owners (a voice, samples, cloning).

A voice's provider is typed, its built-in ones suggested as you type (`SPEECH_PROVIDERS`):
the gateway takes any inference speaks with, a speech server the operator added among them,
and refuses another naming those it takes."""

from __future__ import annotations

from typing import Literal

import discord
from discord import app_commands

from tzurot.bot.commands.chosen import (
    CANNOT_UNDO,
    REPLACES,
    act_on_chosen,
    exact,
    in_code,
    named,
    with_slug,
)
from tzurot.bot.commands.common import (
    CHOICE_LIMIT,
    actor,
    choice_name,
    choices,
    defer,
    failure_text,
    reply,
    send,
)
from tzurot.bot.commands.lookups import owned_personality_choices, personality_choices
from tzurot.bot.commands.names import display_name, named_reply
from tzurot.bot.commands.options import ModelName, PersonalityName, ProviderName, VoiceId
from tzurot.bot.commands.words import plural
from tzurot.bot.gateway_client import GatewayClient
from tzurot.bot.messages import MessageFlow
from tzurot.bot.voice import fetch_speech, voice_problem
from tzurot.bot.voice_notices import STAND_IN_WHY, own_clone_missing_why
from tzurot.runtime.errors import TzurotError
from tzurot.runtime.graphemes import clipped
from tzurot.v1 import common_pb2 as common
from tzurot.v1 import gateway_pb2 as gw

MAX_SAMPLE_BYTES = 10 * 1024 * 1024
SPEECH_PROVIDERS = ("elevenlabs", "openai", "kokoro", "openedai-speech")
"""The providers inference speaks with out of the box (the gateway's
`BUILT_IN_SPEECH_PROVIDERS`), suggested for a voice's provider; the gateway knows the
operator's own as well."""
_CHOICE_TEXT = {
    gw.VOICE_CHOICE_ENABLE: "on: personalities with a voice speak every answer to you",
    gw.VOICE_CHOICE_DISABLE: "off: you get text only",
    gw.VOICE_CHOICE_RESET: "each personality's own default",
}
_FREQUENCIES = {
    "always": common.VOICE_FREQUENCY_ALWAYS,
    "sometimes": common.VOICE_FREQUENCY_SOMETIMES,
    "on_request": common.VOICE_FREQUENCY_ON_REQUEST,
}
_FREQUENCY_NAMES = {v: k for k, v in _FREQUENCIES.items()}


def render_preference(r: gw.SetVoicePreferenceResponse) -> str:
    return (
        f"Voice: {_CHOICE_TEXT.get(r.choice, 'default')}. "
        f"Answers are spoken up to {plural(r.character_limit, 'character')}."
    )


def render_voice(name: str, voice: common.VoiceConfig | None) -> str:
    if voice is None or not voice.provider:
        return f"{name} has no voice."
    tuning = [
        f"{field} {getattr(voice, field):g}"
        for field in ("stability", "similarity_boost", "style", "speed")
        if voice.HasField(field)
    ]
    frequency = _FREQUENCY_NAMES.get(voice.frequency, "always")
    if frequency == "sometimes":
        frequency += f" ({voice.probability:.0%})"
    extra = f"; {', '.join(tuning)}" if tuning else ""
    model = f", model `{voice.model}`" if voice.model else ""
    return (
        f"{name} speaks with {voice.provider} voice `{voice.voice_id}`{model}{extra}; "
        f"speaks: {frequency}."
    )


def render_samples(name: str, samples: list[gw.VoiceSampleInfo]) -> str:
    if not samples:
        return f"{name} has no voice samples. Add some with `/personality voice-sample upload`."
    total = sum(s.duration_secs for s in samples)
    lines = [f"Voice samples of {name} ({len(samples)}/25, {total:.0f} s):"]
    lines += [
        f"- `{s.id}` {s.filename}: {s.format}, {s.duration_secs:.1f} s, "
        f"{s.size_bytes / 1024:.0f} KiB"
        for s in samples
    ]
    return "\n".join(lines)


class VoiceCommands(app_commands.Group):
    def __init__(self, gateway: GatewayClient) -> None:
        super().__init__(name="voice", description="Hear personalities speak their answers")
        self.gateway = gateway

    async def _set(
        self, interaction: discord.Interaction, choice: gw.VoiceChoice.ValueType, limit: int = 0
    ) -> None:
        await reply(
            interaction,
            self.gateway,
            lambda: self.gateway.stub.SetVoicePreference(
                gw.SetVoicePreferenceRequest(
                    actor=actor(interaction), choice=choice, character_limit=limit
                )
            ),
            render_preference,
        )

    @app_commands.command(name="enable", description="Personalities with a voice speak to you")
    async def enable(self, interaction: discord.Interaction) -> None:
        await self._set(interaction, gw.VOICE_CHOICE_ENABLE)

    @app_commands.command(name="disable", description="Text only for you")
    async def disable(self, interaction: discord.Interaction) -> None:
        await self._set(interaction, gw.VOICE_CHOICE_DISABLE)

    @app_commands.command(name="reset", description="Back to each personality's default")
    async def reset(self, interaction: discord.Interaction) -> None:
        await self._set(interaction, gw.VOICE_CHOICE_RESET)

    @app_commands.command(name="limit", description="Most characters of an answer spoken")
    @app_commands.describe(characters="1-10000; your own keys pay for every character")
    async def limit(
        self, interaction: discord.Interaction, characters: app_commands.Range[int, 1, 10_000]
    ) -> None:
        await self._set(interaction, gw.VOICE_CHOICE_UNSPECIFIED, characters)


def speak_menu(gateway: GatewayClient, flow: MessageFlow) -> app_commands.ContextMenu:
    """Speak: one answer of a personality, spoken into the channel (the user's key pays).
    Only in a server: answers are posted only in a server's channels, and a DM gives the bot
    no permission to post a voice message that anyone could grant."""

    @app_commands.guild_only()
    async def speak(interaction: discord.Interaction, message: discord.Message) -> None:
        await defer(interaction)
        channel = interaction.channel
        if not isinstance(channel, discord.abc.Messageable):
            await send(interaction, "I cannot speak here.")
            return
        problem = voice_problem(channel, interaction.app_permissions)
        if problem is not None:  # told before the speech is paid for, not after
            await send(interaction, problem)
            return
        try:
            spoken = await fetch_speech(
                gateway,
                gw.SpeakAnswerRequest(actor=actor(interaction), message_id=str(message.id)),
            )
            shown = common.Personality(
                display_name=message.author.display_name,
                avatar_url=str(message.author.display_avatar.url),
            )
            await flow.voice.post(channel, spoken, reply_to=message.id, shown=shown)
        except TzurotError as err:
            await send(interaction, failure_text(err))
            return
        except discord.HTTPException:
            await send(interaction, "Discord refused the voice message here.")
            return
        done = f"Spoken ({spoken.finished.duration_secs:.0f} s)"
        if spoken.finished.stand_in_voice:
            name = discord.utils.escape_mentions(message.author.display_name)
            why = (
                own_clone_missing_why(name)
                if spoken.finished.own_clone_missing
                else STAND_IN_WHY.format(name=name)
            )
            done += f" in a stock ElevenLabs voice: {why}"
        await send(interaction, done if done.endswith(".") else f"{done}.")

    return app_commands.ContextMenu(name="Speak", callback=speak)


class PersonalityVoiceCommands(app_commands.Group):
    """`/personality voice show|set|remove|clone` and `/personality voice-sample …`."""

    def __init__(self, gateway: GatewayClient, description: str = "A personality's voice") -> None:
        super().__init__(name="personality", description=description)
        self.gateway = gateway
        self.voice = app_commands.Group(name="voice", description="Its voice", parent=self)
        self.sample = app_commands.Group(
            name="voice-sample", description="Recordings to clone its voice from", parent=self
        )
        self._add_voice_commands()
        self._add_sample_commands()

    async def _personalities(
        self, interaction: discord.Interaction, current: str
    ) -> list[app_commands.Choice[str]]:
        return await personality_choices(self.gateway, interaction, current)

    async def _owned_slugs(
        self, interaction: discord.Interaction, current: str
    ) -> list[app_commands.Choice[str]]:
        return await owned_personality_choices(self.gateway, interaction, current)

    def _add_voice_commands(self) -> None:
        gateway = self.gateway

        @self.voice.command(name="show", description="Its voice and how often it speaks")
        @app_commands.describe(personality="The personality whose voice to show")
        async def show(interaction: discord.Interaction, personality: PersonalityName) -> None:
            await named_reply(
                interaction,
                gateway,
                personality,
                lambda: gateway.stub.GetPersonalityVoice(
                    gw.GetPersonalityVoiceRequest(actor=actor(interaction), personality=personality)
                ),
                lambda r, name: render_voice(name, r.voice if r.HasField("voice") else None),
            )

        @self.voice.command(name="set", description="Owners: its voice (provider and voice id)")
        @app_commands.describe(
            personality="A personality you own",
            provider="elevenlabs, openai, kokoro, openedai-speech, or a speech server the "
            "operator added",
            voice_id="ElevenLabs voice id, or the voice's name (alloy)",
            model="The provider's speech model, e.g. eleven_multilingual_v2 or tts-1 "
            "(default: its own)",
            stability="ElevenLabs, 0-1: higher is steadier, lower more expressive "
            "(default: provider's)",
            similarity_boost="ElevenLabs, 0-1: how closely it keeps to the original voice "
            "(default: provider's)",
            style="ElevenLabs, 0-1: how much its speaking style is exaggerated "
            "(default: provider's)",
            speed="Speaking speed: ElevenLabs 0.7-1.2, OpenAI-compatible 0.25-4 "
            "(default: provider's)",
            frequency="How often it speaks its answers",
            probability="With 'sometimes': the chance an answer is spoken (0-1)",
        )
        async def set_voice(  # noqa: PLR0917  # one option per voice setting
            interaction: discord.Interaction,
            personality: PersonalityName,
            provider: ProviderName,
            voice_id: VoiceId,
            model: ModelName = "",
            stability: app_commands.Range[float, 0.0, 1.0] | None = None,
            similarity_boost: app_commands.Range[float, 0.0, 1.0] | None = None,
            style: app_commands.Range[float, 0.0, 1.0] | None = None,
            speed: app_commands.Range[float, 0.25, 4.0] | None = None,
            frequency: Literal["always", "sometimes", "on_request"] = "always",
            probability: app_commands.Range[float, 0.0, 1.0] = 0.5,
        ) -> None:
            voice = common.VoiceConfig(
                provider=provider.strip().lower(),  # provider names are lowercase
                voice_id=voice_id.strip(),
                model=model.strip(),
                frequency=_FREQUENCIES[frequency],
                probability=probability,
            )
            for field, value in (
                ("stability", stability),
                ("similarity_boost", similarity_boost),
                ("style", style),
                ("speed", speed),
            ):
                if value is not None:
                    setattr(voice, field, value)
            await act_on_chosen(
                interaction,
                gateway,
                personality,
                nothing="Nothing changed",
                why=REPLACES,
                again=lambda p: with_slug("/personality voice set", p),
                rpc=lambda p: gateway.stub.SetPersonalityVoice(
                    gw.SetPersonalityVoiceRequest(
                        actor=actor(interaction), personality=exact(p), voice=voice
                    )
                ),
                render=lambda r, p: render_voice(
                    named(p), r.voice if r.HasField("voice") else None
                ),
            )

        @self.voice.command(name="remove", description="Owners: it speaks no more")
        @app_commands.describe(personality="A personality you own")
        async def remove_voice(
            interaction: discord.Interaction, personality: PersonalityName
        ) -> None:
            await act_on_chosen(
                interaction,
                gateway,
                personality,
                nothing="Nothing removed",
                why=CANNOT_UNDO,
                again=lambda p: with_slug("/personality voice remove", p),
                rpc=lambda p: gateway.stub.SetPersonalityVoice(
                    gw.SetPersonalityVoiceRequest(actor=actor(interaction), personality=exact(p))
                ),
                render=lambda _, p: f"{p.display_name or p.slug} has no voice now.",
            )

        @self.voice.command(
            name="clone", description="Owners: clone its voice from the samples (your key)"
        )
        @app_commands.describe(personality="A personality you own, with voice samples uploaded")
        async def clone(interaction: discord.Interaction, personality: PersonalityName) -> None:
            # By slug: a new clone deletes the user's earlier clones of it (chosen.py).
            await act_on_chosen(
                interaction,
                gateway,
                personality,
                nothing="Nothing cloned",
                why=CANNOT_UNDO,
                again=lambda p: with_slug("/personality voice clone", p),
                rpc=lambda p: gateway.stub.CloneVoiceFromSamples(
                    gw.CloneVoiceFromSamplesRequest(actor=actor(interaction), personality=exact(p))
                ),
                render=lambda r, p: (
                    f"Cloned from {plural(r.samples_used, 'sample')}. "
                    + render_voice(named(p), r.voice)
                ),
            )

        show.autocomplete("personality")(self._personalities)
        # By slug: these act only on a personality named by its slug (chosen.py).
        set_voice.autocomplete("personality")(self._owned_slugs)
        set_voice.autocomplete("provider")(_speech_providers)
        remove_voice.autocomplete("personality")(self._owned_slugs)
        clone.autocomplete("personality")(self._owned_slugs)

    def _add_sample_commands(self) -> None:
        gateway = self.gateway

        @self.sample.command(name="upload", description="Owners: add an MP3, WAV or OGG recording")
        @app_commands.describe(
            personality="A personality you own",
            file="A recording of its voice: MP3, WAV or OGG, 10 MB at most",
        )
        async def upload(
            interaction: discord.Interaction, personality: PersonalityName, file: discord.Attachment
        ) -> None:
            await defer(interaction)
            if file.size > MAX_SAMPLE_BYTES:
                await send(interaction, f"{file.filename} is larger than 10 MB.")
                return
            try:
                data = await file.read()
                added = await gateway.call(
                    gateway.stub.UploadVoiceSample(
                        gw.UploadVoiceSampleRequest(
                            actor=actor(interaction),
                            personality=personality,
                            filename=file.filename,
                            data=data,
                        )
                    )
                )
            except TzurotError as err:
                await send(interaction, f"Sample refused: {failure_text(err)}")
                return
            except discord.HTTPException:
                await send(interaction, "The file could not be read from Discord.")
                return
            sample = added.sample
            name = await display_name(gateway, interaction, personality)
            await send(
                interaction,
                f"Added {sample.filename} ({sample.format}, {sample.duration_secs:.1f} s) "
                f"to {name}'s voice samples.",
            )

        @self.sample.command(name="list", description="Owners: the recordings kept")
        @app_commands.describe(personality="A personality you own")
        async def list_samples(
            interaction: discord.Interaction, personality: PersonalityName
        ) -> None:
            await named_reply(
                interaction,
                gateway,
                personality,
                lambda: gateway.stub.ListVoiceSamples(
                    gw.ListVoiceSamplesRequest(actor=actor(interaction), personality=personality)
                ),
                lambda r, name: render_samples(name, list(r.samples)),
            )

        @self.sample.command(name="remove", description="Owners: delete one recording")
        @app_commands.describe(
            personality="A personality you own",
            sample="The recording to delete (its file name autocompletes)",
        )
        async def remove(
            interaction: discord.Interaction, personality: PersonalityName, sample: str
        ) -> None:
            await act_on_chosen(
                interaction,
                gateway,
                personality,
                nothing="Nothing removed",
                why=CANNOT_UNDO,
                again=lambda p: with_slug(
                    "/personality voice-sample remove", p, f" and `sample: {in_code(sample)}`"
                ),
                rpc=lambda p: gateway.stub.RemoveVoiceSample(
                    gw.RemoveVoiceSampleRequest(
                        actor=actor(interaction), personality=exact(p), sample_id=sample
                    )
                ),
                render=lambda _, p: f"Removed the sample from {named(p)}'s voice samples.",
            )

        @remove.autocomplete("sample")
        async def _sample_auto(
            interaction: discord.Interaction, current: str
        ) -> list[app_commands.Choice[str]]:
            name = str(getattr(interaction.namespace, "personality", "") or "")
            try:
                listed = await gateway.call(
                    gateway.stub.ListVoiceSamples(
                        gw.ListVoiceSamplesRequest(actor=actor(interaction), personality=name)
                    )
                )
            except TzurotError:
                return []
            return [
                app_commands.Choice(name=sample_label(s), value=s.id)
                for s in listed.samples
                if current.casefold() in s.filename.casefold()
            ][:25]

        upload.autocomplete("personality")(self._personalities)
        list_samples.autocomplete("personality")(self._personalities)
        remove.autocomplete("personality")(self._owned_slugs)  # by slug (chosen.py)


def sample_label(sample: gw.VoiceSampleInfo) -> str:
    """A voice sample as an autocomplete names it, "take.ogg (12 s)": the file's name cut
    (`clipped`) so that the duration shows, the whole within `CHOICE_LIMIT` (`choice_name`)."""
    duration = f" ({sample.duration_secs:.0f} s)"
    return choice_name(clipped(sample.filename, CHOICE_LIMIT - len(duration)) + duration)


async def _speech_providers(
    interaction: discord.Interaction, current: str
) -> list[app_commands.Choice[str]]:
    """The built-in speech providers matching what was typed (as /wallet suggests its own);
    any other name may still be typed."""
    return choices(list(SPEECH_PROVIDERS), current)
