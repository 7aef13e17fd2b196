"""Deletions that finish by themselves: a user's data deletion and a personality's deletion
are recorded before memory is asked to forget, so one cut short after memory forgot is
finished by a sweep, never left half done until someone asks again.

Why: memory's forget leaves a tombstone (memory's tombstones.py), and from then on nothing is
stored for the id. A deletion that stopped after it (a gateway killed, Postgres failing over,
a timeout) used to leave the user or the personality in gateway, answering as before, every
exchange delivered and silently not kept.

How:
- First the request deletes the voices cloned for what it deletes from the ElevenLabs
  accounts they were cloned into, each with its cloner's key (`_delete_clones`; a user's
  keys go with her deletion, so no sweep could): every clone Tzurot recorded
  (voice_clones), also one replaced or removed by hand since, but none whose voice id a
  personality not being deleted still stores (voice_store.py). ElevenLabs unreachable fails
  the request with nothing recorded yet: asking again does it. A key ElevenLabs rejects
  turns inactive in its owner's wallet, as in any other use (`KeyUses.refused`); its clone
  stays in the account (and recorded).
- The request then marks the row it deletes last (`deletion_requested_at`; a user's private
  personalities with theirs) and holds the deletion for `deletion_lease_seconds`. From then
  on the user is refused (USER_DATA_DELETING, gateway_core.refuse_deleting) and the
  personality is found by no lookup (store/rows.LIVE_PERSONALITY): nothing is answered that
  would not be kept.
- Both under the clone locks of what it deletes (clone_locks.py): a clone under way refuses
  the deletion (CLONE_IN_PROGRESS, nothing done; asked again once the clone is over, it
  deletes that clone too), and no clone starts until the deletion is recorded, after which
  none does. Else a clone saved after the lookup would stay in its cloner's account.
- Then the steps, each of which can run again; the row last, and its mark with it. For a
  personality, one step deletes the clones marked for it that were never recorded (their
  answer lost: `_delete_lost_clones`, in its owner's and its cloners' accounts, only for a
  personality that ever had a sample or a clone), after the mark and memory's forget, with a
  short wait for ElevenLabs: a slow or unreachable ElevenLabs hands the deletion to the sweeps,
  which try again, rather than holding the request or dropping those clones. The cloners whose
  recorded clones the request deleted (their voice_clones rows gone with them) are kept with
  the mark (`deletion_cloners`), so a retry lists their accounts too.
- A user's data deletion runs the same step for each of her private personalities, after
  memory forgot them and before her `core` rows and her keys go, and lists her account for
  the personalities under deletion that kept her as a cloner (their own step, finishing
  after her key is gone, could not; `_delete_her_keys`). Why before her keys, and retried
  rather than best effort: her key is the only way into her account, so once it is gone a
  clone left there holds a slot of her plan for good, and nothing of Tzurot's can delete it.
  ElevenLabs unreachable leaves her marked (refused, her key unused) and the sweep tries
  again every RETRY_SECONDS; LOST_CLONES_RETRY_SECONDS after she asked it gives up on those
  clones (logged, `deletion.lost_clones_skipped`) and deletes the rest, her key included: an
  unreachable ElevenLabs never keeps her key more than a day after she asked.
- A personality's deletion marked between her data deletion's look at those deletions and
  her keys' going would find no key of hers: her key-write lock keeps them apart. A deletion
  holds its cloners' locks from its lookup of their clones to its mark, and her keys go
  under hers, after a last look (store/deletions.py says how, and in which order the locks
  are taken).
- A step that fails hands the deletion to the sweeps at once and the request answers
  FAILED_PRECONDITION `DELETION_PENDING` (nothing to ask again); a request that dies (its
  gateway killed) holds it until the lease runs out.
- Every replica sweeps (`run_deletion_sweep`): it claims a deletion nobody holds (FOR UPDATE
  SKIP LOCKED, then a lease) and runs the same steps; one that fails again waits
  RETRY_SECONDS.
- A deletion that keeps failing shows: each sweep counts its failures
  (`tzurot_deletion_sweep_failures_total`) and then the deletions still under way and the age
  of the oldest (`tzurot_deletions_pending`, `tzurot_deletion_oldest_pending_seconds`), by
  kind (docs/OPERATIONS.md, Metrics).
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Collection, Sequence

import structlog

from tzurot.gateway.admin.base import AdminBase
from tzurot.gateway.admin.lost_clones import delete_lost_clones
from tzurot.gateway.clone_locks import (
    CLONE_IN_PROGRESS,
    DELETION_IN_PROGRESS,
    CloneLocks,
    DeletionStart,
)
from tzurot.gateway.store.deletions import Clone, Kind
from tzurot.gateway.voice import ELEVENLABS
from tzurot.gateway.voice_store import VoiceStore
from tzurot.runtime import metrics
from tzurot.runtime.errors import FailedPrecondition, TzurotError, Unavailable
from tzurot.runtime.retry import RETRYABLE

log = structlog.get_logger(__name__)

CLONE_DELETION_UNAVAILABLE = "CLONE_DELETION_UNAVAILABLE"
"""A deletion refused before anything was deleted: a cloned voice could not be deleted from
ElevenLabs for now (unreachable, timed out); asking again does it."""

LOST_CLONES_RETRY_SECONDS = 24 * 3600.0
"""How long a personality's deletion waits for ElevenLabs to list its lost clones (slow or
away) before it finishes without them, logged: the personality stays hidden meanwhile. A
user's data deletion counts from her own mark (a personality of hers left unmarked counts
from nothing)."""
RETRY_SECONDS = 15.0
"""How long a deletion the sweep could not finish waits before the next try."""
KINDS: tuple[Kind, ...] = ("personality", "user")


class DeletionAdmin(AdminBase):
    async def _delete_clones(
        self, clones: Sequence[Clone], *, leaving: Collection[str], user_id: str | None = None
    ) -> int:
        """Deletes each clone Tzurot recorded (voice_clones: also one replaced or removed by
        hand since) from the ElevenLabs account it was cloned into, with its cloner's key;
        how many were still there. One whose voice id a personality other than `leaving`
        (those being deleted) still stores is kept (a voice set by hand is never deleted),
        except one of `user_id`'s own, whose data deletion deletes every voice she cloned:
        her key goes with it, so nothing could delete it later, and a clone speaks only for
        the account holding it. Before a deletion is recorded: ElevenLabs unreachable
        (RETRYABLE) fails the request, nothing else touched yet, so asking again finishes it;
        a clone the key cannot delete (no key, a rejected key) is left in that account, which
        its owner controls, and logged (still recorded), and the deletion goes on."""
        if not clones or self._speech is None:
            return 0
        voices = VoiceStore(self._store.engine)
        deleted = 0
        for clone in clones:
            async with voices.deleting_clone(
                clone, leaving=leaving, even_if_used=clone.cloner_id == user_id
            ) as decision:
                if not decision.go:
                    log.info("deletion.clone_in_use", personality_id=clone.personality_id)
                    continue
                taken_after = self._gateway.key_uses.now()  # the key refused is read after it
                try:
                    found = await self._speech.delete_voice(clone.cloner_id, clone.voice_id)
                except TzurotError as err:
                    if err.code in RETRYABLE:
                        raise Unavailable(
                            "ElevenLabs could not be reached to delete a voice cloned there, "
                            "so nothing was deleted; ask again in a moment",
                            reason=CLONE_DELETION_UNAVAILABLE,
                        ) from err
                    # A key ElevenLabs rejected: inactive in `/wallet list` (a missing
                    # permission, a quota: still a working key, left active).
                    await self._gateway.key_uses.refused(
                        clone.cloner_id, err, ELEVENLABS, taken_after=taken_after
                    )
                    log.warning(
                        "deletion.clone_kept",
                        personality_id=clone.personality_id,
                        reason=err.reason,
                    )
                    continue
                decision.gone = True
                deleted += int(found)
        return deleted

    async def _delete_lost_clones(
        self,
        personality_id: str,
        *,
        leaving: Collection[str] = (),
        only: str | None = None,
        waited: float = 0.0,
    ) -> int:
        """A step of a personality's deletion, after its mark: deletes the clones marked for
        it that voice_clones never recorded (their answer lost, after ElevenLabs made them)
        from the accounts of those who may have made them (`VoiceStore.lost_clone_accounts`:
        none for a personality that never had a sample or a clone, so nothing asks
        ElevenLabs; else its owner, the cloners its deletion kept and its recorded cloners;
        `only`: that account alone, if among them); how many ElevenLabs still had. Never a
        voice id a personality stores other than this one and `leaving` (being deleted with
        it; lost_clones.py). ElevenLabs slow or away (RETRYABLE, DEADLINE_EXCEEDED past
        `marked_clones_wait_seconds`) fails the step, so the deletion sweep tries again, for
        LOST_CLONES_RETRY_SECONDS at most since its mark or `waited` seconds ago (a user's
        data deletion's own start: a personality of hers not marked would never give up);
        an account that cannot be listed for good (no key, a rejected key, one restricted
        without `voices_read`, an inference without ListMarkedClones) is skipped, logged."""
        if self._speech is None:
            return 0
        voices = VoiceStore(self._store.engine)
        accounts, marked = await voices.lost_clone_accounts(personality_id)
        pending = max(marked, waited)
        if only is not None:
            accounts &= {only}
        deleted = 0
        for user_id in sorted(accounts):
            try:
                deleted += await delete_lost_clones(
                    self._speech, voices, user_id, personality_id,
                    wait=self._marked_clones_wait, leaving={personality_id, *leaving},
                )  # fmt: skip
            except TzurotError as err:
                if err.code in RETRYABLE and pending < LOST_CLONES_RETRY_SECONDS:
                    raise
                log.info("deletion.lost_clones_skipped", reason=err.reason)
        return deleted

    async def _delete_for_good(
        self, kind: Kind, target_id: str, *, cloning: str, deleting: str, interrupted: str
    ) -> int:
        """Deletes the voices cloned for what it deletes (`_delete_clones`), marks the
        deletion, then runs it; rows deleted, the clones ElevenLabs still had counted. The
        first two under the clone locks of what it deletes: a clone under way refuses it
        (FAILED_PRECONDITION CLONE_IN_PROGRESS, nothing done, `cloning` saying so to the
        asker), and so does another deletion of it at that stage (DELETION_IN_PROGRESS,
        `deleting`). A failure after the mark hands it to the sweeps and answers
        DELETION_PENDING, `interrupted` saying what that means to the asker."""
        user_id = target_id if kind == "user" else None
        personality_ids = (
            await self._db.private_personality_ids(target_id) if kind == "user" else [target_id]
        )
        locks = CloneLocks(self._store.engine)
        async with locks.deleting(personality_ids, user_id=user_id) as start:
            if start is DeletionStart.CLONING:
                raise FailedPrecondition(cloning, reason=CLONE_IN_PROGRESS)
            if start is DeletionStart.DELETING:
                raise FailedPrecondition(deleting, reason=DELETION_IN_PROGRESS)
            deleted = await self._delete_clones_and_mark(kind, target_id, personality_ids)
        log.info("deletion.started", kind=kind, target_id=target_id)
        try:
            deleted += await self._finish_deletion(kind, target_id)
        except Exception as err:
            log.warning("deletion.interrupted", kind=kind, target_id=target_id, exc_info=True)
            # Postgres away too: the lease runs out instead.
            with contextlib.suppress(Exception):
                await self._db.release_deletion(kind, target_id)
            raise FailedPrecondition(interrupted, reason="DELETION_PENDING") from err
        log.info("deletion.finished", kind=kind, target_id=target_id, deleted=deleted)
        return deleted

    async def _delete_clones_and_mark(
        self, kind: Kind, target_id: str, personality_ids: Sequence[str]
    ) -> int:
        """`_delete_for_good`'s locked part: the recorded clones of what it deletes looked up,
        deleted (`_delete_clones`) and the deletion marked, holding the key-write locks of
        their cloners (and hers, for her data deletion) from the lookup to the mark
        (`DeletionQueries.marking`), so the data deletion of a cloner it keeps with the mark
        (`deletion_cloners`, for the lost clones in her account) lists her account for it
        before her key goes (`_delete_her_keys`). The lookup is made again under the locks:
        a cloner found only then (none should be: its clone locks keep new clones out) has
        the locks taken again with hers."""
        voices = VoiceStore(self._store.engine)
        user_id = target_id if kind == "user" else None

        async def recorded_clones() -> list[Clone]:
            if user_id is not None:
                return await voices.clones_of_user(user_id)
            return await voices.clones_for(target_id)

        cloners = {c.cloner_id for c in await recorded_clones()}
        while True:
            async with self._db.marking(cloners, deleting_user=user_id) as marking:
                recorded = await recorded_clones()
                if not (found := {c.cloner_id for c in recorded} - marking.held):
                    deleted = await self._delete_clones(
                        recorded, leaving=personality_ids, user_id=user_id
                    )
                    # Whose recorded clones went (their rows with them) is kept with the
                    # mark: the lost-clone step, perhaps retried by a sweep, lists their
                    # accounts too.
                    if user_id is None:
                        await marking.mark_personality(
                            target_id, self._deletion_lease, {c.cloner_id for c in recorded}
                        )
                        return deleted
                    by_personality: dict[str, set[str]] = {}
                    for clone in recorded:
                        if clone.personality_id in personality_ids:
                            by_personality.setdefault(clone.personality_id, set()).add(
                                clone.cloner_id
                            )
                    await marking.mark_user(user_id, self._deletion_lease, by_personality)
                    return deleted
            cloners |= found

    async def _finish_deletion(self, kind: Kind, target_id: str) -> int:
        """The steps after the mark (each can run again): for a personality, memory's forget,
        its lost clones, its row."""
        if kind == "personality":
            deleted = await self._forget_personality(target_id)
            deleted += await self._delete_lost_clones(target_id)
            await self._db.delete_personality(target_id, self._gateway.clock.now())
            return deleted
        return await self._finish_user_deletion(target_id)

    async def _finish_user_deletion(self, user_id: str) -> int:
        """A user's deletion once their recorded clones are gone (privacy.py): everything
        memory keeps of their private personalities, while their rows still name them; the
        lost clones, with her key, before it goes; their `core` rows but the `users` row,
        jobs first (no answer of theirs in flight is stored afterwards; one a dead bot left
        half shown is handed to the bot withheld, unfinished.py); their keys, after the lost
        clones in her account of others' deletions (`_delete_her_keys`); memory's turns,
        memories and what waits to be formed from them; the `users` row last."""
        deleted = 0
        waited = await self._db.deletion_age("user", user_id)
        private = await self._db.private_personality_ids(user_id)
        for personality_id in private:
            deleted += await self._forget_personality(personality_id)
        for personality_id in private:  # the lost clones of her private personalities
            deleted += await self._delete_lost_clones(
                personality_id, leaving=private, waited=waited
            )
        deleted += await self._db.delete_user_content(user_id, self._gateway.clock.now())
        self._gateway.events.wake()  # her answers a dead bot left half shown: say why
        deleted += await self._delete_her_keys(user_id, waited=waited)
        deleted += await self._memory.forget_user(user_id)
        return deleted + await self._db.delete_user(user_id)

    async def _delete_her_keys(self, user_id: str, *, waited: float) -> int:
        """A step of a user's data deletion: her keys, once the lost clones in her account
        of the personalities under deletion that kept her as a cloner are gone
        (`_delete_lost_clones` for her account alone: their own step, finishing after her
        key went, could not). The last look at those deletions and the deletes in keyvault
        hold her key-write lock (`DeletionQueries.keys_going`), which a deletion keeping her
        holds from its lookup to its mark (`_delete_clones_and_mark`): one marked after that
        look waited, and looked her clones up after her keys went (her deletion had deleted
        them). One seen there first is listed outside the lock (ElevenLabs can be slow), and
        the look made again. The same waits and retries as a personality's: ElevenLabs slow
        or away fails the step, her key kept, and the sweep tries again, for
        LOST_CLONES_RETRY_SECONDS at most since her deletion began (`waited` seconds ago;
        the module says why)."""
        voices = VoiceStore(self._store.engine)
        listed: set[str] = set()
        deleted = 0
        while True:
            async with self._db.keys_going(user_id):
                late = [p for p in await voices.deletions_listing(user_id) if p not in listed]
                if not late:
                    for key in await self._keyvault.list_keys(user_id):
                        deleted += int(await self._keyvault.delete_key(user_id, key.provider))
                    return deleted
            for personality_id in late:
                deleted += await self._delete_lost_clones(
                    personality_id, only=user_id, waited=waited
                )
            listed.update(late)

    async def finish_pending_deletions(self) -> int:
        """Finishes the deletions nobody runs any more (their request failed or died), the
        personalities' first; how many it finished. Safe on every replica at once. Then the
        deletions still under way go to the metrics (each replica reports the same count)."""
        finished = 0
        for kind in KINDS:
            while (
                target_id := await self._db.claim_deletion(kind, self._deletion_lease)
            ) is not None:
                try:
                    await self._finish_deletion(kind, target_id)
                except Exception:
                    log.warning(
                        "deletion.sweep_failed", kind=kind, target_id=target_id, exc_info=True
                    )
                    metrics.record_deletion_sweep_failure(kind)
                    with contextlib.suppress(Exception):  # else its lease runs out
                        await self._db.release_deletion(kind, target_id, after=RETRY_SECONDS)
                    continue
                finished += 1
                log.info("deletion.finished_by_sweep", kind=kind, target_id=target_id)
        for kind in KINDS:
            metrics.record_deletions_pending(kind, *await self._db.pending_deletions(kind))
        return finished

    async def run_deletion_sweep(self, every: float) -> None:
        """`finish_pending_deletions` every `every` seconds, from the start (what a previous
        process left). Not under the job sweeps' timeout: a deletion takes as long as memory's
        forget does (each call has its own deadline)."""
        while True:
            try:
                await self.finish_pending_deletions()
            except Exception:  # Postgres away: next time
                log.warning("deletion.sweep_failed", exc_info=True)
            await asyncio.sleep(every)
