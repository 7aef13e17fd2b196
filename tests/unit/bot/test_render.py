"""Command answers as text."""

from tzurot.bot.commands import render
from tzurot.bot.commands.wallet import checked_text, describe_keys, saved_text
from tzurot.v1 import common_pb2 as common
from tzurot.v1 import gateway_pb2 as gw


def test_wallet_keys_show_provider_state_and_hint_only() -> None:
    text = describe_keys([gw.WalletKey(provider="openrouter", active=True, hint="cdef")])
    assert "**openrouter** (…cdef): active" in text
    assert "no API keys" in describe_keys([])


def test_a_saved_key_the_provider_restricts_says_what_it_lacks_and_what_depends() -> None:
    """ElevenLabs' refusal named no permission: what works depends on each one Tzurot uses."""
    saved = gw.SetWalletKeyResponse(
        key=gw.WalletKey(provider="elevenlabs", hint="cdef"), restriction=common.KeyRestriction()
    )
    assert saved_text("elevenlabs", saved) == (
        "Saved your elevenlabs key (…cdef). It is stored encrypted.\n"
        "ElevenLabs restricts this key to part of its API. What works depends on its "
        "permissions: `text_to_speech` for spoken answers, `voices_write` for cloning a voice, "
        "`voices_read` for listing your ElevenLabs voices (how Tzurot finds and cleans up a "
        "clone whose answer got lost). Allow what it lacks for the key in ElevenLabs, or store "
        "another key with `/wallet set elevenlabs`."
    )
    plain = gw.SetWalletKeyResponse(key=gw.WalletKey(provider="openrouter", hint="cdef"))
    assert saved_text("openrouter", plain) == (
        "Saved your openrouter key (…cdef). It is stored encrypted."
    )


def test_a_tested_key_the_provider_restricts_works_and_says_what_it_lacks() -> None:
    lacking = common.KeyRestriction(missing_permissions=["voices_write", "models_read"])
    text = checked_text("elevenlabs", gw.TestWalletKeyResponse(valid=True, restriction=lacking))
    assert text.startswith(
        "Your elevenlabs key works.\nElevenLabs restricts this key: it lacks `voices_write`, "
        "`models_read`, so cloning a voice won't work with it. The rest works if the key has "
        "its permission: `text_to_speech` for spoken answers, `voices_read` for listing"
    )
    refused = gw.TestWalletKeyResponse(valid=False, detail="the key was rejected by elevenlabs")
    assert checked_text("elevenlabs", refused) == (
        "Your elevenlabs key does not work: the key was rejected by elevenlabs"
    )


def test_usage_totals_per_model_and_overall() -> None:
    reply = gw.GetUsageResponse(
        totals=[
            gw.UsageTotal(
                provider="openrouter", model="a", requests=2, input_tokens=1000, output_tokens=50
            ),
            gw.UsageTotal(
                provider="openai", model="b", requests=1, input_tokens=10, output_tokens=5
            ),
        ]
    )
    text = render.usage(reply, "week")
    assert "`openrouter/a`: 2 requests, 1,000 in / 50 out tokens" in text
    assert text.endswith("Total: 1,010 in / 55 out tokens")
    assert render.usage(gw.GetUsageResponse(), "day") == "No usage in the last day."


def test_usage_names_what_helper_models_were_paid_for() -> None:
    reply = gw.GetUsageResponse(
        totals=[
            gw.UsageTotal(
                provider="openai",
                model="whisper-1",
                requests=2,
                audio_seconds=61.4,
                request_type="transcription",
            ),
            gw.UsageTotal(
                provider="openrouter",
                model="m",
                requests=1,
                input_tokens=30,
                output_tokens=9,
                request_type="transcript_cleanup",
            ),
            gw.UsageTotal(provider="openrouter", model="m", requests=3, request_type="chat"),
        ]
    )
    text = render.usage(reply, "day")
    assert (
        "`openai/whisper-1` (transcription): 2 requests, 0 in / 0 out tokens, 61 s of audio" in text
    )
    assert "`openrouter/m` (transcript cleanup): 1 request, 30 in / 9 out tokens" in text
    assert "`openrouter/m`: 3 requests" in text


def test_usage_shows_speech_in_characters_and_what_was_paid_but_not_delivered() -> None:
    """Speech is billed by the character, not by tokens; a speech whose audio broke off after
    the provider billed it is counted as paid but not delivered."""
    reply = gw.GetUsageResponse(
        totals=[
            gw.UsageTotal(
                provider="elevenlabs",
                model="eleven_multilingual_v2",
                requests=3,
                request_type="speech",
                characters=5400,
                failed_requests=1,
            ),
            gw.UsageTotal(provider="openai", model="tts-1", requests=1, request_type="speech"),
            gw.UsageTotal(
                provider="openrouter", model="m", requests=1, input_tokens=30, output_tokens=9
            ),
        ]
    )
    text = render.usage(reply, "day")
    assert (
        "- `elevenlabs/eleven_multilingual_v2` (speech): 3 requests, 5,400 characters, "
        "1 paid but not delivered\n" in text
    )
    assert "- `openai/tts-1` (speech): 1 request, 0 characters\n" in text
    assert "`openrouter/m`: 1 request, 30 in / 9 out tokens" in text
    assert "(speech): 3 requests, 0 in" not in text
    assert text.endswith("Total: 30 in / 9 out tokens, 5,400 characters of speech")


def test_usage_says_how_many_requests_were_estimated() -> None:
    """A broken-off or cancelled answer's tokens are Tzurot's estimate: `/usage` says how
    many of a line's requests are, and nothing where none is."""
    reply = gw.GetUsageResponse(
        totals=[
            gw.UsageTotal(
                provider="openrouter",
                model="m",
                requests=3,
                input_tokens=900,
                output_tokens=80,
                failed_requests=2,
                estimated_requests=1,
            ),
            gw.UsageTotal(provider="openai", model="n", requests=1, input_tokens=5),
        ]
    )
    text = render.usage(reply, "day")
    assert (
        "- `openrouter/m`: 3 requests, 900 in / 80 out tokens, 2 paid but not delivered "
        "(1 estimated)\n" in text
    )
    assert "- `openai/n`: 1 request, 5 in / 0 out tokens\n" in text


def test_timezones_autocomplete_prefix_first_and_validate() -> None:
    names = render.timezone_names("new")
    assert names[0].startswith("America/New_York") or names[0].lower().startswith("new")
    assert "America/New_York" in render.timezone_names("new york")
    assert len(render.timezone_names("")) == 25
    assert render.check_timezone("Europe/Berlin") is None
    assert "not an IANA" in (render.check_timezone("Mars/Base") or "")


def test_effective_config_names_its_source() -> None:
    resolved = common.ResolvedLlmConfig(
        config=common.LlmConfig(name="Fast", provider="openrouter", model="x/y"),
        source=common.CONFIG_SOURCE_USER_PERSONALITY,
    )
    assert render.effective("Lilith", resolved) == (
        "**Lilith** now uses **Fast** (`openrouter/x/y`), from your choice for this personality."
    )


def test_character_export_has_no_ids() -> None:
    p = common.Personality(id="9", slug="lilith", display_name="Lilith", owner_user_id="u1")
    document = render.character_json(p).decode()
    assert '"display_name": "Lilith"' in document
    assert '"id"' not in document
    assert "owner_user_id" not in document


def test_memory_stats_by_sector() -> None:
    reply = gw.GetMemoryStatsResponse(
        total=3,
        sectors=[
            gw.SectorCount(sector=common.MEMORY_SECTOR_EPISODIC, count=2),
            gw.SectorCount(sector=common.MEMORY_SECTOR_SEMANTIC, count=1),
        ],
    )
    assert render.memory_stats(reply, "Lilith") == (
        "Lilith has 3 memories of you (episodic: 2, semantic: 1)."
    )


def test_persona_and_empty_persona() -> None:
    empty = render.persona(gw.GetPersonaResponse())
    assert "/persona set" in empty
    shown = render.persona(
        gw.GetPersonaResponse(persona=gw.Persona(preferred_name="Al", pronouns="they/them"))
    )
    assert shown == "Your persona: **Al**\nPronouns: they/them"
