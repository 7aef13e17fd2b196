"""Wires inference: providers, the memory and keyvault channels, the LLM client, the server."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field

import grpc
import httpx2 as httpx
import tiktoken

from tzurot.inference.answering import AnswerSettings
from tzurot.inference.attachments import AttachmentLimits, AttachmentReader, HttpDownloader
from tzurot.inference.cleanup import BadRule, compile_rules
from tzurot.inference.clients import GrpcHistory, GrpcKeyVault, GrpcMemories, GrpcReplyContext
from tzurot.inference.config import InferenceSettings
from tzurot.inference.domain import CleanupRule
from tzurot.inference.keys import KeyResolver
from tzurot.inference.llm import LlmClient
from tzurot.inference.providers import ProviderRegistry
from tzurot.inference.reply_settings import ModelName, ReplySettings, SkillRuntime
from tzurot.inference.server import InferenceServicer
from tzurot.inference.service import Inference
from tzurot.inference.skills.base import Skill
from tzurot.inference.skills.egress import EgressPolicy, SafeFetcher
from tzurot.inference.skills.extract import Extractor, ProcessExtractor, WorkerLimits
from tzurot.inference.skills.generate_image import GenerateImageSkill, ImageSettings
from tzurot.inference.skills.loop import LoopSettings
from tzurot.inference.skills.memory_search import MemorySearchSkill
from tzurot.inference.skills.read_url import ReadUrlSkill
from tzurot.inference.skills.registry import SkillRegistry, ToolSupport
from tzurot.inference.skills.search import BraveSearch, SearchBackend, SearxngSearch
from tzurot.inference.skills.web_research import WebResearchSkill
from tzurot.inference.speech import ElevenLabsClient, OpenAISpeechClient
from tzurot.inference.voice import VoiceService
from tzurot.inference.wallet_keys import BraveKeys
from tzurot.inference.warm import warm_up
from tzurot.runtime.client import secure_channel
from tzurot.runtime.errors import StartupError
from tzurot.runtime.server import (
    AuthorizationPolicy,
    RunningServer,
    ServiceRegistration,
    create_server,
)
from tzurot.runtime.tls import load_tls
from tzurot.v1 import inference_pb2_grpc

SERVICE_NAME = "tzurot.v1.InferenceService"
METHODS = (
    "GenerateReply",
    "ValidateKey",
    "ListProviders",
    "ListSkills",
    "SynthesizeSpeech",
    "CloneVoice",
    "DeleteVoice",
    "ListMarkedClones",
    "ExtractFacts",
)

AUTHORIZATION: AuthorizationPolicy = {
    f"/{SERVICE_NAME}/{name}": frozenset({"gateway"}) for name in METHODS
}
"""Who may call each method; anything not listed is refused (default_allowed is empty)."""


@dataclass
class InferenceApp:
    running: RunningServer
    channels: tuple[grpc.aio.Channel, ...]
    llm: LlmClient
    grace: float
    downloads: httpx.AsyncClient
    pages: ProcessExtractor
    """The page-text worker (read_url, web_research), started once the server is."""
    warm_up: asyncio.Future[tiktoken.Encoding] | None = field(default=None, repr=False)
    """Building the o200k encoding (~1 s) in a thread (`warm.py`), so the first reply does
    not wait for it."""

    @property
    def port(self) -> int:
        return self.running.port

    async def stop(self) -> None:
        """Drains the server, then closes the channels and the provider connection pool."""
        try:
            await self.running.stop(self.grace)
        finally:
            await _close(self.channels, self.llm, self.downloads, self.pages)


async def _close(
    channels: tuple[grpc.aio.Channel, ...],
    llm: LlmClient,
    downloads: httpx.AsyncClient,
    pages: ProcessExtractor,
) -> None:
    for channel in channels:
        await channel.close()
    await llm.aclose()
    await downloads.aclose()
    await pages.aclose()


def reply_settings(settings: InferenceSettings) -> ReplySettings:
    """The operator's reply settings; StartupError naming a cleanup rule that is bad."""
    try:
        rules = compile_rules(
            [CleanupRule(rule.pattern, rule.replacement) for rule in settings.cleanup_rules]
        )
    except BadRule as exc:
        raise StartupError(f"TZUROT_CLEANUP_RULES: {exc}") from None
    return ReplySettings(
        history_limit=settings.history_limit,
        default_context_window=settings.default_context_window,
        reference_share=settings.reference_share,
        answer=AnswerSettings(
            first_event_timeout=settings.first_event_timeout_seconds,
            idle_timeout=settings.idle_timeout_seconds,
            total_timeout=settings.total_timeout_seconds,
            failure_retries=settings.provider_max_retries,
            min_attempt_seconds=settings.min_attempt_seconds,
        ),
        cleanup_rules=rules,
        report_grace_seconds=settings.report_grace_seconds,
        vision=ModelName(settings.vision_provider, settings.vision_model),
        transcription=ModelName(settings.transcription_provider, settings.transcription_model),
        transcript_cleanup=ModelName(
            settings.transcript_cleanup_provider, settings.transcript_cleanup_model
        ),
    )


def skill_runtime(
    settings: InferenceSettings,
    *,
    llm: LlmClient,
    memories: GrpcMemories,
    http: httpx.AsyncClient,
    pages: Extractor,
) -> SkillRuntime:
    """The built-in skills as the operator configured them; `pages` parses what read_url
    and web_research fetch."""
    fetcher = SafeFetcher(
        EgressPolicy(
            max_bytes=settings.skill_fetch_max_bytes,
            timeout=settings.skill_fetch_timeout_seconds,
            allow=frozenset(settings.skill_fetch_allow),
        )
    )
    endpoint = settings.image_endpoint
    if endpoint == "auto":
        endpoint = "chat" if settings.image_provider == "openrouter" else "images"
    skills: list[Skill] = [
        MemorySearchSkill(memories),
        ReadUrlSkill(fetcher, pages),
        GenerateImageSkill(
            llm,
            ImageSettings(
                provider=settings.image_provider,
                model=settings.image_model,
                endpoint=endpoint,
                max_count=settings.image_max_count,
                max_bytes=settings.image_max_bytes,
            ),
            fetcher,
        ),
    ]
    backend: SearchBackend | None = None
    if settings.search_backend == "searxng":
        if not settings.searxng_url:
            raise StartupError("TZUROT_SEARCH_BACKEND=searxng needs TZUROT_SEARXNG_URL")
        backend = SearxngSearch(http, settings.searxng_url)
    elif settings.search_backend == "brave":
        backend = BraveSearch(http, settings.brave_url)
    if backend is not None:
        skills.append(WebResearchSkill(backend, fetcher, pages=pages))
    return SkillRuntime(
        registry=SkillRegistry(
            skills, disabled=settings.skills_disabled, enabled=settings.skills_enabled
        ),
        loop=LoopSettings(
            max_steps=settings.skill_max_steps,
            time_budget=settings.skill_time_budget_seconds,
            max_calls=settings.skill_max_calls,
            result_tokens=settings.skill_result_tokens,
            max_files=settings.image_max_count * 2,
        ),
        support=ToolSupport(settings.skill_no_tool_models),
        memory=memories,
    )


async def start_inference(settings: InferenceSettings) -> InferenceApp:
    """Starts inference with its mTLS server and channels to memory and keyvault."""
    # Local configuration fails first, before anything is opened.
    providers = ProviderRegistry(settings.providers, loopback_defaults=settings.loopback_providers)
    options = reply_settings(settings)
    tls = load_tls(settings.tls_dir)
    # Memory's calls fail fast (a reply goes ahead without it, degraded) after a bounded
    # connect wait (clients.MEMORY_CONNECT_WAIT_SECONDS); keyvault's wait for ready within the
    # deadline: without the key there is no answer, and a keyvault still starting or
    # restarting is waited for rather than reported as restarting.
    memory = secure_channel(
        settings.memory_addr,
        tls,
        server_identity="memory",
        default_timeout=settings.default_deadline_seconds,
    )
    keyvault = secure_channel(
        settings.keyvault_addr,
        tls,
        server_identity="keyvault",
        default_timeout=settings.default_deadline_seconds,
        wait_for_ready=True,
    )
    channels = (memory, keyvault)
    llm = LlmClient(timeout_seconds=settings.provider_timeout_seconds)
    downloads = httpx.AsyncClient(timeout=settings.provider_timeout_seconds)
    pages = ProcessExtractor(
        WorkerLimits(
            memory_bytes=settings.skill_extract_memory_mb * 1024 * 1024,
            seconds=settings.skill_extract_seconds,
        )
    )
    memories = GrpcMemories(memory)
    keys = KeyResolver(GrpcKeyVault(keyvault), settings.system_keys, settings.free_models)
    try:
        inference = Inference(
            providers=providers,
            keys=keys,
            history=GrpcHistory(memory),
            llm=llm,
            settings=options,
            memories=memories,
            context=GrpcReplyContext(memory),
            skills=skill_runtime(settings, llm=llm, memories=memories, http=downloads, pages=pages),
            attachments=AttachmentReader(
                HttpDownloader(downloads, settings.attachment_hosts),
                llm,
                AttachmentLimits(
                    max_image_bytes=settings.max_image_bytes,
                    max_audio_bytes=settings.max_audio_bytes,
                    max_attachments=settings.max_attachments,
                ),
            ),
        )
        voice = VoiceService(
            providers=providers,
            keys=keys,
            elevenlabs=ElevenLabsClient(downloads, settings.elevenlabs_url),
            speech=OpenAISpeechClient(downloads, max_retries=settings.provider_max_retries),
            work_at_once=settings.voice_work_at_once,
        )
        brave = BraveKeys(
            BraveSearch(downloads, settings.brave_url),
            keys,
            offered=settings.search_backend == "brave",
        )
        servicer = InferenceServicer(inference, voice, brave)
        running = await create_server(
            service="inference",
            settings=settings,
            registrations=[
                ServiceRegistration(
                    SERVICE_NAME,
                    lambda server: inference_pb2_grpc.add_InferenceServiceServicer_to_server(
                        servicer, server
                    ),
                )
            ],
            authorization=AUTHORIZATION,
            default_allowed=frozenset(),
        )
        encoding = warm_up(channels)
        await running.start()
        # The page worker starts at the first page read (~0.3 s of CPU, 55-100 MB), not here:
        # most replicas, and every mesh a test starts, never read a page.
    except BaseException:
        await _close(channels, llm, downloads, pages)
        raise
    return InferenceApp(
        running=running,
        channels=channels,
        llm=llm,
        grace=settings.grace_seconds,
        downloads=downloads,
        pages=pages,
        warm_up=encoding,
    )
