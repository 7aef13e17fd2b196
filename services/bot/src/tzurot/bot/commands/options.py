"""How long (or how large) what commands take may be, declared on their options so that
Discord itself refuses what the gateway would (a string option otherwise takes up to 6000
characters): no value that could never be accepted reaches the gateway, and the user sees the
limit as they type.

Used as an option's annotation (`personality: PersonalityName`); discord.py sends the bounds
as the option's `min_length` and `max_length` (`min_value`/`max_value` for a number). Each
limit mirrors a gateway rule, named in its docstring (services do not import each other; the
bot's unit tests compare them).
"""

from __future__ import annotations

from discord import app_commands

LONGEST_NAME = 80
"""The most characters a personality's display name, an alias or an LLM config's name has
(the gateway's `MAX_NAME`, counted with a leading '@'); a slug has 63 at most."""
LONGEST_PERSONALITY_NAME = 100
"""What naming a personality may take: its slug, display name or an alias, with an '@' and
spaces around it; also the most an autocomplete choice's value holds (what picking one sends)."""
LONGEST_REFERENCE = 200
"""The gateway's `require(field, value)` without a limit of its own (admin/base.py): a
lorebook by name or id, a denylist entry's id."""
LONGEST_MEMORY_ID = 100
"""`require("memory_id", memory_id, 100)` (the gateway's `forget_memory`)."""
LONGEST_MEMORY_QUERY = 2000
"""`require("query", query, 2000)` (the gateway's `search_memories`)."""
LONGEST_TIMEZONE = 64
"""`require("timezone", tz, 64)` (the gateway's `set_timezone`)."""
LONGEST_PROVIDER = 64
"""`require("config.provider", c.provider, 64)` (the gateway's `create_llm_config`) and a
voice's provider (`MAX_PROVIDER_CHARS`, the gateway's `validate_voice`): the longest name
inference's registry takes."""
LONGEST_MODEL = 200
"""`require("config.model", c.model, 200)` (`create_llm_config`) and a voice's model
("model is longer than 200 characters", the gateway's `validate_voice`)."""
LONGEST_VOICE_ID = 100
"""A voice id the gateway's `validate_voice` takes: `SPEECH_VOICE_NAME` (an OpenAI-compatible
voice name) has at most 100 characters, `ELEVENLABS_VOICE_ID` 64; its coarser 200 is never
reached."""
LONGEST_PERSONA_FIELD = 2000
"""The gateway's `MAX_PERSONA_FIELD` (admin/users.py): each field of a persona."""
LONGEST_CONFIG_DESCRIPTION = 2000
"""`limit_text("config.description", c.description, 2000)` (`create_llm_config`)."""
LONGEST_DENY_REASON = 500
"""`limit_text("entry.reason", entry.reason, 500)` (the gateway's `add_deny`)."""
LONGEST_DISCORD_ID = 20
"""A Discord id (a server's, a channel's) as the gateway's `is_snowflake` (ids.py) takes it:
digits only, within 64 bits, so at most 20 of them."""
LONGEST_LOREBOOK_NAME = 100
"""The gateway's `MAX_LOREBOOK_NAME` (cards/lore_model.py): a lorebook's name, refused (not
cut) when longer."""
WEAKEST_PRUNE_THRESHOLD = 0.01
"""The gateway's `prune_memories` takes a threshold "above 0 and at most 1"; Discord's
`min_value` includes itself, so the least a user may give is a hundredth: 0 itself would
delete nothing (no salience is below it), and anything between 0 and 0.01 only memories
already all but gone."""

PersonalityName = app_commands.Range[str, 1, LONGEST_PERSONALITY_NAME]
"""A personality, by slug, display name or alias (the gateway's name rules)."""
AliasName = app_commands.Range[str, 1, LONGEST_NAME]
"""An alias, given or named (the gateway refuses a longer one)."""
NewName = app_commands.Range[str, 1, LONGEST_NAME]
"""A name being given: a personality's display name, an LLM config's name."""
Reference = app_commands.Range[str, 1, LONGEST_REFERENCE]
"""A lorebook by name or id, a denylist entry's id."""
DiscordId = app_commands.Range[str, 1, LONGEST_DISCORD_ID]
"""A server's or a channel's id, as Discord writes it (its digits)."""
LorebookName = app_commands.Range[str, 1, LONGEST_LOREBOOK_NAME]
MemoryId = app_commands.Range[str, 1, LONGEST_MEMORY_ID]
MemoryQuery = app_commands.Range[str, 1, LONGEST_MEMORY_QUERY]
TimezoneName = app_commands.Range[str, 1, LONGEST_TIMEZONE]
ProviderName = app_commands.Range[str, 1, LONGEST_PROVIDER]
ModelName = app_commands.Range[str, 1, LONGEST_MODEL]
VoiceId = app_commands.Range[str, 1, LONGEST_VOICE_ID]
PersonaText = app_commands.Range[str, 1, LONGEST_PERSONA_FIELD]
ConfigDescription = app_commands.Range[str, 1, LONGEST_CONFIG_DESCRIPTION]
DenyReason = app_commands.Range[str, 1, LONGEST_DENY_REASON]
PruneThreshold = app_commands.Range[float, WEAKEST_PRUNE_THRESHOLD, 1.0]
"""`/memory prune`'s threshold: salience, from a hundredth to 1."""
