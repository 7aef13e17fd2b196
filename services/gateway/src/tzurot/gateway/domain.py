"""Gateway's domain types: plain data, no gRPC and no SQL.

The types live in one module per area (domain_jobs, domain_replies, domain_messages,
domain_personalities, domain_configs, domain_users, domain_usage, domain_keys,
domain_channels); this module names them all, as its many callers import them from here.
"""

from __future__ import annotations

from tzurot.gateway.domain_channels import (
    ChannelActivation,
    DenyEntry,
    DenyMode,
    DenyScope,
    DenyTarget,
)
from tzurot.gateway.domain_configs import ConfigSource, LlmConfig, ResolvedConfig
from tzurot.gateway.domain_jobs import (
    GenerateEvent,
    GenerationFinished,
    GroupJob,
    Job,
    JobAccepted,
    JobContext,
    JobError,
    JobStatus,
    UnfinishedAnswer,
)
from tzurot.gateway.domain_keys import (
    KeyCheck,
    KeyRestriction,
    KeyUse,
    ListedKey,
    StoredKey,
    WalletKey,
)
from tzurot.gateway.domain_messages import (
    Attachment,
    GenerateCommand,
    HistoryTurn,
    Location,
    Mention,
    ReferencedMessage,
)
from tzurot.gateway.domain_personalities import (
    CharacterFields,
    CleanupRule,
    GroupMember,
    Personality,
)
from tzurot.gateway.domain_replies import (
    AttachmentRead,
    GeneratedFile,
    HelperCallPending,
    KeyRefused,
    MemoryNote,
    PromptReport,
    PromptSent,
    ReplyChunk,
    ReplyEvent,
    ReplyFinished,
    ReplyRequest,
    RoundsBilled,
    SkillActivity,
    SkillInfo,
    SkillStep,
    UsageSpent,
)
from tzurot.gateway.domain_usage import Usage, UsageTotal
from tzurot.gateway.domain_users import Actor, Persona, User

__all__ = [
    "Actor",
    "Attachment",
    "AttachmentRead",
    "ChannelActivation",
    "CharacterFields",
    "CleanupRule",
    "ConfigSource",
    "DenyEntry",
    "DenyMode",
    "DenyScope",
    "DenyTarget",
    "GenerateCommand",
    "GenerateEvent",
    "GeneratedFile",
    "GenerationFinished",
    "GroupJob",
    "GroupMember",
    "HelperCallPending",
    "HistoryTurn",
    "Job",
    "JobAccepted",
    "JobContext",
    "JobError",
    "JobStatus",
    "KeyCheck",
    "KeyRefused",
    "KeyRestriction",
    "KeyUse",
    "ListedKey",
    "LlmConfig",
    "Location",
    "MemoryNote",
    "Mention",
    "Persona",
    "Personality",
    "PromptReport",
    "PromptSent",
    "ReferencedMessage",
    "ReplyChunk",
    "ReplyEvent",
    "ReplyFinished",
    "ReplyRequest",
    "ResolvedConfig",
    "RoundsBilled",
    "SkillActivity",
    "SkillInfo",
    "SkillStep",
    "StoredKey",
    "UnfinishedAnswer",
    "Usage",
    "UsageSpent",
    "UsageTotal",
    "User",
    "WalletKey",
]
