"""Keeps the `blocks` projection within seconds of live edits, not only at snapshot time.

Every document update is published through this node's `DocLog` (sockets and REST writes alike);
after each new stored update the log tells this component which document changed
(`DocLog.on_published`). So each update marks its document dirty on exactly one node of the
cluster -- the one that published it -- with no subscription to the update subjects (a queue
subscription to `collab.doc.*.update` did the same at the price of one more NATS message parsed
per edit on the hot path, issue 15). After `projection_refresh_s` this component re-projects every
dirty document once (`services.documents.refresh_projection_now`) from the state its last refresh
read plus the log after it (snapshot + log the first time, or when a snapshot passed it): a burst of
keystrokes costs one refresh per document per period. Projections are fenced by stream sequence
(a slow refresher never installs an older one), so two nodes refreshing the same document is
harmless.

Each refresh also scans the state it projected for new body mentions (services/body_mentions.py):
the refresher is what already follows every update within seconds, so mentions are detected from
the updates as they arrive, on one node per update, with no second subscription.

A refresh missed because its node stopped before the period ended is made up by the next edit or
by the snapshot, which projects in its own transaction (the projection is a cache of the CRDT doc,
never its source); a missed mention scan by the next edit's scan, which starts where the last one
ended (its cursor).
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections import OrderedDict
from collections.abc import Awaitable
from typing import TYPE_CHECKING, Any, TypeVar

import structlog

from core.errors import AppError
from server.metrics import PROJECTION_REFRESHES
from services import body_mentions
from services.doc_state import DocState, RecentEntriesReader
from services.documents import refresh_projection_now
from services.ydoc_roots import ContentError

if TYPE_CHECKING:
    from services.deps import Deps

log = structlog.get_logger(__name__)

# A refresh is CPU work (the whole state loaded into pycrdt docs): for a large document one takes
# seconds. It runs in the projection worker, off the event loop (services/projection_worker.py),
# but still on one of the host's cores: the pause after a batch is at least this many times the
# batch's duration, so refreshing takes at most 1 / (1 + this) of a core (bench/FINDINGS.md §6.1).
PAUSE_PER_REFRESH_TIME = 4.0
# The state each refresh read is kept (most recently refreshed first, up to this many bytes in
# all), so the next refresh of that document reads only the log after it instead of everything
# since the snapshot (which at 20 edits/s was most of the node's NATS messages, issue 15).
KEPT_STATES_MAX_BYTES = 64 * 1024 * 1024
_T = TypeVar("_T")


class ProjectionRefresher:
    def __init__(self, ctx: Deps, recent: RecentEntriesReader | None = None) -> None:
        self.ctx = ctx
        self.period_s = ctx.settings.projection_refresh_s
        # The room's tail of the log, where the entries after a kept state usually are already.
        self._recent = recent
        self.dirty: dict[str, int] = {}  # document -> the newest seq this node stored of it
        self._wake = asyncio.Event()
        self._task: asyncio.Task[Any] | None = None
        self._states: OrderedDict[str, DocState] = OrderedDict()

    async def start(self) -> None:
        if self.period_s <= 0:
            return
        self.ctx.doc_log.on_published(self.mark_dirty)
        self._task = self.ctx.spawn(self._run(), name="projection-refresher")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            self._task = None

    def mark_dirty(self, doc_id: str, seq: int) -> None:
        """An update of `doc_id` was stored by this node at `seq`: refresh it after the period."""
        if seq > self.dirty.get(doc_id, 0):
            self.dirty[doc_id] = seq
        self._wake.set()

    async def _run(self) -> None:
        pause = self.period_s
        while True:
            await self._wake.wait()
            await asyncio.sleep(pause)  # let the burst finish: one refresh per period
            self._wake.clear()
            batch, self.dirty = self.dirty, {}
            started = time.monotonic()
            for doc_id in sorted(batch):
                await self.refresh(doc_id, batch[doc_id])
            pause = max(self.period_s, PAUSE_PER_REFRESH_TIME * (time.monotonic() - started))

    async def refresh(self, doc_id: str, through_seq: int = 0) -> None:
        """One document, at least up to `through_seq`; a failure is logged and never stops the
        others (the next edit or the snapshot retries it).

        The entries after the kept state are taken from the document's room on this node when
        it holds all of them up to `through_seq` (it applied them moments ago), else read from
        the log: the same entries either way, with one consumer's round of NATS messages per
        document and period less."""
        try:
            uuid.UUID(doc_id)
        except ValueError:
            return  # not a document subject of ours (S3: injected); the snapshot job purges it
        base = self._states.pop(doc_id, None)
        entries = None
        if base is not None and self._recent is not None:
            entries = self._recent(doc_id, base.seq, through_seq)
        read = "full" if base is None else "log" if entries is None else "room"
        PROJECTION_REFRESHES.labels(read).inc()
        work = refresh_projection_now(self.ctx, doc_id, base, entries)
        done = await _guarded("projection", doc_id, work)
        if done is not None:
            self._keep(doc_id, done.state)  # the scan reads the state the projection was made from
            scan = body_mentions.scan(self.ctx, doc_id, done.state, done.projection)
            await _guarded("mentions", doc_id, scan)

    def _keep(self, doc_id: str, state: DocState) -> None:
        """Remember `state` as the base of the document's next refresh (its entries are not
        needed for that), dropping the least recently refreshed beyond the byte budget."""
        self._states[doc_id] = DocState(state.update, state.seq, state.seq, [], state.update)
        total = sum(len(kept.update) for kept in self._states.values())
        while total > KEPT_STATES_MAX_BYTES and self._states:
            _, dropped = self._states.popitem(last=False)
            total -= len(dropped.update)


async def _guarded(step: str, doc_id: str, work: Awaitable[_T]) -> _T | None:
    """One step of a refresh; a failure is logged (as `<step>.refresh_failed` / `_error`) and
    never stops the others: the next edit or the snapshot retries it."""
    try:
        return await work
    except (AppError, ContentError) as err:  # NATS/Postgres down, unreadable state
        log.warning(f"{step}.refresh_failed", doc_id=doc_id, error=repr(err))
    except Exception as err:  # e.g. the document was deleted meanwhile (foreign key)
        log.error(f"{step}.refresh_error", doc_id=doc_id, error=repr(err))
    return None
