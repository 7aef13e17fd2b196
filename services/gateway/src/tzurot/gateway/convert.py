"""Proto <-> domain mappings for gateway's own API and the services it calls.

The mappings live in one module per area (message_convert, personality_convert, job_convert,
reply_convert, key_convert, exchange_convert); this module names them all, as its callers
use them as `convert.<name>`.
"""

from __future__ import annotations

from tzurot.gateway.exchange_convert import TURN_ROLES, exchange_turns
from tzurot.gateway.job_convert import (
    generate_event,
    generated_file,
    job,
    job_inspection,
    skill_step,
    unfinished_answer,
    usage,
)
from tzurot.gateway.key_convert import (
    key_check,
    key_record,
    key_restriction,
    key_use,
    listed_key,
    wallet_key,
)
from tzurot.gateway.message_convert import (
    MAX_MENTIONS,
    actor,
    attachment,
    attachment_proto,
    generate_command,
    location,
    referenced_message,
    timestamp,
)
from tzurot.gateway.personality_convert import (
    CONFIG_SOURCE,
    import_format,
    llm_config,
    personality,
    skill_info,
    skill_info_in,
)
from tzurot.gateway.reply_convert import (
    cut_off_usage,
    known_reply_event,
    prompt_report,
    reply_event,
    reply_request,
    usage_spent,
)

__all__ = [
    "CONFIG_SOURCE",
    "MAX_MENTIONS",
    "TURN_ROLES",
    "actor",
    "attachment",
    "attachment_proto",
    "cut_off_usage",
    "exchange_turns",
    "generate_command",
    "generate_event",
    "generated_file",
    "import_format",
    "job",
    "job_inspection",
    "key_check",
    "key_record",
    "key_restriction",
    "key_use",
    "known_reply_event",
    "listed_key",
    "llm_config",
    "location",
    "personality",
    "prompt_report",
    "referenced_message",
    "reply_event",
    "reply_request",
    "skill_info",
    "skill_info_in",
    "skill_step",
    "timestamp",
    "unfinished_answer",
    "usage",
    "usage_spent",
    "wallet_key",
]
