"""The document log: every CRDT update of a document on `collab.doc.<id>.update` in `COLLAB_DOCS`.

JetStream is the log (DESIGN.md §1): an update exists once JetStream acknowledged it, its stream
sequence is the document's version, and a document's state is the latest Postgres snapshot plus the
subject's messages after the snapshot's sequence. This module is the only code that publishes,
reads or purges document updates.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import hmac
import time
from collections.abc import Callable
from dataclasses import dataclass

import nats.errors
import nats.js.errors
import structlog
from nats.aio.msg import Msg
from nats.js.api import ConsumerConfig, DeliverPolicy

from bus.connection import NatsConnection
from bus.jetstream import DOCS_STREAM, doc_update_subject
from bus.nats_client import deliver_directly
from core.errors import AppError, CloseCode, Unavailable

log = structlog.get_logger(__name__)

# A publish whose PubAck does not come back has an unknown outcome: it is retried with the same
# Nats-Msg-Id (JetStream dedupes it) until this deadline, then the sender gets an error.
PUBLISH_ATTEMPT_TIMEOUT_S = 2.0
PUBLISH_DEADLINE_S = 6.0
# Ordered consumers: a missing heartbeat makes nats-py recreate the consumer from last seq + 1.
CONSUMER_IDLE_HEARTBEAT_S = 2.0
READ_TIMEOUT_S = 30.0

# JSStreamStoreFailedF: the stream refused to store the message (limits with discard-new).
JS_STORE_FAILED_ERR_CODE = 10077

HEADER_MSG_ID = "Nats-Msg-Id"
# A read that got no answer: the caller gets Unavailable (retry later), never a wrong "not found".
_UNREACHABLE = (
    nats.errors.TimeoutError,
    nats.errors.NoRespondersError,
    nats.errors.ConnectionClosedError,
)
_V1_ACK_TOKENS = 9
HEADER_CLIENT = "Collab-Client"
HEADER_USER = "Collab-User"
HEADER_NODE = "Collab-Node"
# An HMAC by the publishing node (`DocLog.vouched`): this update passed a node's validation.
HEADER_SIGNATURE = "Collab-Sig"


class DocLogRejected(AppError):
    """JetStream refused the update (stream limits reached, message too large): never retried,
    never acknowledged; the client keeps its state and is told why."""

    status = 507
    code = "document_log_full"
    ws_close_code = CloseCode.DOCUMENT_LOG_FULL


@dataclass(frozen=True, slots=True)  # rooms keep a tail of them (live/recent_entries.py)
class LogEntry:
    seq: int
    update: bytes
    msg_id: str | None = None
    client: str | None = None
    user: str | None = None
    node: str | None = None
    signature: str | None = None

    @classmethod
    def from_msg(cls, msg: Msg) -> LogEntry:
        headers = msg.headers or {}
        return cls(
            seq=stream_seq(msg),
            update=msg.data,
            msg_id=headers.get(HEADER_MSG_ID),
            client=headers.get(HEADER_CLIENT),
            user=headers.get(HEADER_USER),
            node=headers.get(HEADER_NODE),
            signature=headers.get(HEADER_SIGNATURE),
        )


def stream_seq(msg: Msg) -> int:
    """The stream sequence of a pushed JetStream message, from its reply subject.

    Why not `msg.metadata`: it also builds a datetime and the other counters for every message,
    and this runs for every update of every open document (issue 15). The common v1 reply
    (`$JS.ACK.<stream>.<consumer>.<delivered>.<sseq>.<dseq>.<ts>.<pending>`) is read directly;
    any other form goes through nats-py.
    """
    tokens = (msg.reply or "").split(".")
    if len(tokens) == _V1_ACK_TOKENS and tokens[0] == "$JS" and tokens[1] == "ACK":
        return int(tokens[5])
    return msg.metadata.sequence.stream


@dataclass(frozen=True)
class PublishAck:
    seq: int
    duplicate: bool


# Called as nats-py's reader parses each entry (bus/nats_client.deliver_directly): synchronous.
EntryHandler = Callable[[LogEntry], None]
PublishListener = Callable[[str, int], None]


class LogSubscription:
    """A live, ordered view of one document's updates from a start sequence onwards."""

    def __init__(self, sub: object) -> None:
        self._sub = sub

    async def stop(self) -> None:
        with contextlib.suppress(nats.errors.Error, nats.js.errors.Error, asyncio.TimeoutError):
            await self._sub.unsubscribe()  # type: ignore[attr-defined]


class DocLog:
    def __init__(
        self, nats_conn: NatsConnection, node_id: str, signing_key: bytes | None = None
    ) -> None:
        self.nats = nats_conn
        self.node_id = node_id
        self._listeners: list[PublishListener] = []
        self._signing_key = signing_key

    def _signature(self, doc_id: str, update: bytes) -> str | None:
        key = self._signing_key
        if key is None:
            return None
        return hmac.new(key, doc_id.encode() + b"\0" + update, hashlib.sha256).hexdigest()

    def vouched(self, doc_id: str, entry: LogEntry) -> bool:
        """Whether a node of this deployment validated `entry`'s update before publishing it to
        this document: its `Collab-Sig` is the HMAC of the document id and the exact bytes under
        the deployment's key (derived from its JWT secret, which every node shares).

        Why: a reader must walk every entry strictly before pycrdt's decoder sees it (S3: anyone
        who can publish to the subject could store crafted bytes), and that pure-Python walk was
        most of a cold room load's CPU -- 0.32 s of the 0.45 s for a 100k-update log (issue 15,
        the late joiner). An entry with a valid signature was walked and test-applied by the
        node that published it, so readers skip the walk; anything else (no signature, another
        document's, bytes changed, another deployment's key) is walked as before.
        """
        signature = entry.signature
        if signature is None:
            return False
        expected = self._signature(doc_id, entry.update)
        return expected is not None and hmac.compare_digest(signature, expected)

    def on_published(self, listener: PublishListener) -> None:
        """Call `listener(doc_id, seq)` after each new update this node stored (not for
        duplicates), with the stream seq it was stored at.

        Why: the projection refresher needs to know which documents changed. The node that
        published an update is exactly one node per update, so this replaces a core-NATS queue
        subscription to every update (one more message parsed per edit, on the hot path).
        """
        self._listeners.append(listener)

    def stored(self, doc_id: str, seq: int) -> None:
        """A new update of `doc_id` from this node is stored at `seq`: the `on_published`
        listeners run.
        `publish` calls it on a new PubAck; a caller that confirmed a `send` by its echo calls
        it then (once per update: an echo comes back once)."""
        for listener in self._listeners:
            listener(doc_id, seq)

    async def publish(
        self,
        doc_id: str,
        update: bytes,
        *,
        msg_id: str,
        client: str,
        user: str,
        validated: bool = False,
    ) -> PublishAck:
        """Append one update; returns the PubAck's sequence (the original one for a duplicate).
        `validated`: the caller ran the full validation on `update` (live/protocol); it is
        signed so that readers need not walk it again (`vouched`)."""
        headers = self._headers(doc_id, update, msg_id, client, user, validated)
        subject = doc_update_subject(doc_id)
        deadline = time.monotonic() + PUBLISH_DEADLINE_S
        while True:
            try:
                ack = await self.nats.jetstream.publish(
                    subject, update, timeout=PUBLISH_ATTEMPT_TIMEOUT_S, headers=headers
                )
                result = PublishAck(ack.seq, bool(ack.duplicate))
                if not result.duplicate:
                    self.stored(doc_id, result.seq)
                return result
            except nats.js.errors.APIError as err:
                # 503 is also how nats-server reports a store refusal (a discard-new limit:
                # err_code 10077, "maximum messages per subject exceeded"): that is final, not
                # a missing leader, and retrying it for seconds would hide "log full" (R21).
                if err.code == 503 and err.err_code != JS_STORE_FAILED_ERR_CODE:
                    last: Exception = err
                else:
                    raise DocLogRejected(
                        f"document log refused the update: {err.description}"
                    ) from err
            except nats.errors.MaxPayloadError as err:
                # Over the server's max_payload: refused by the client before sending, as final
                # as the stream's own size limit (a whole-state write of a large document).
                raise DocLogRejected(
                    f"document log refused the update: {len(update)} bytes is over the "
                    "message size limit"
                ) from err
            except (
                nats.errors.TimeoutError,
                nats.errors.NoRespondersError,
                # nats-py's name for "no responders" on a publish: the stream has no leader
                # right now (an R3 leader was just killed, or the stream is being created).
                nats.js.errors.NoStreamResponseError,
                nats.errors.ConnectionClosedError,
                nats.errors.ConnectionReconnectingError,
                nats.errors.OutboundBufferLimitError,
            ) as err:
                last = err
            if time.monotonic() >= deadline:
                log.warning("doc_log.publish_failed", doc_id=doc_id, error=repr(last))
                raise Unavailable("document log unavailable, retry") from last
            await asyncio.sleep(0.1)

    async def send(
        self,
        doc_id: str,
        update: bytes,
        *,
        msg_id: str,
        client: str,
        user: str,
        validated: bool = False,
    ) -> bool:
        """Append one update without asking JetStream for a PubAck (a plain publish to the
        stream's subject, the same message `publish` sends). False if the connection refused it.

        Why: for a caller that follows the document's subject anyway (a room), the stored message
        coming back through its ordered consumer is proof of storage at its sequence, and the
        PubAck is one more message per update for nats-server to build and for this node to
        parse, plus a request's inbox, future and timer (issue 15). What it cannot tell is a
        refusal (a full subject) or a duplicate: neither comes back, so a caller that waited in
        vain publishes again with `publish` and the same msg id, which answers both. A caller
        whose update came back calls `stored` (the `on_published` listeners)."""
        headers = self._headers(doc_id, update, msg_id, client, user, validated)
        try:
            await self.nats.nc.publish(doc_update_subject(doc_id), update, headers=headers)
        except nats.errors.Error as err:
            log.info("doc_log.send_refused", doc_id=doc_id, error=repr(err))
            return False
        return True

    def _headers(
        self, doc_id: str, update: bytes, msg_id: str, client: str, user: str, validated: bool
    ) -> dict[str, str]:
        headers = {
            HEADER_MSG_ID: msg_id,
            HEADER_CLIENT: client,
            HEADER_USER: user,
            HEADER_NODE: self.node_id,
        }
        signature = self._signature(doc_id, update) if validated else None
        if signature is not None:
            headers[HEADER_SIGNATURE] = signature
        return headers

    async def update_at(self, seq: int) -> bytes | None:
        """The update stored at stream sequence `seq` (None: purged or never stored)."""
        try:
            msg = await self.nats.jetstream.get_msg(DOCS_STREAM, seq=seq, direct=True)
        except nats.js.errors.NotFoundError:
            return None
        except _UNREACHABLE as err:
            raise Unavailable("document log unavailable") from err
        return bytes(msg.data or b"")

    async def last_seq(self, doc_id: str) -> int:
        """The sequence of the document's newest update still in the stream (0 if none)."""
        try:
            msg = await self.nats.jetstream.get_last_msg(
                DOCS_STREAM, doc_update_subject(doc_id), direct=True
            )
        except nats.js.errors.NotFoundError:
            return 0
        except _UNREACHABLE as err:
            raise Unavailable("document log unavailable") from err
        return int(msg.seq or 0)

    async def subscribe(
        self, doc_id: str, after_seq: int, handler: EntryHandler
    ) -> LogSubscription:
        """Deliver every update with seq > `after_seq` in order, then live ones.

        JetStream silently starts at the first message still stored if `after_seq + 1` was purged;
        callers re-check their snapshot afterwards (see `load_state`).
        """
        if after_seq > 0:
            config = ConsumerConfig(
                deliver_policy=DeliverPolicy.BY_START_SEQUENCE, opt_start_seq=after_seq + 1
            )
        else:
            config = ConsumerConfig(deliver_policy=DeliverPolicy.ALL)

        def on_msg(msg: Msg) -> None:
            handler(LogEntry.from_msg(msg))

        try:
            sub = await self.nats.jetstream.subscribe(
                doc_update_subject(doc_id),
                stream=DOCS_STREAM,
                config=config,
                ordered_consumer=True,
                idle_heartbeat=CONSUMER_IDLE_HEARTBEAT_S,
            )
        except (nats.errors.Error, nats.js.errors.Error) as err:
            raise Unavailable("document log unavailable") from err
        deliver_directly(sub._sub, on_msg)
        return LogSubscription(sub)

    async def read(self, doc_id: str, after_seq: int) -> list[LogEntry]:
        """The document's updates after `after_seq`, up to the newest one at call time."""
        target = await self.last_seq(doc_id)
        if target <= after_seq:
            return []
        entries: list[LogEntry] = []
        done = asyncio.Event()

        def collect(entry: LogEntry) -> None:
            if entry.seq <= target:
                entries.append(entry)
            if entry.seq >= target:
                done.set()

        sub = await self.subscribe(doc_id, after_seq, collect)
        try:
            await asyncio.wait_for(done.wait(), READ_TIMEOUT_S)
        except TimeoutError as err:
            raise Unavailable("document log read timed out") from err
        finally:
            await sub.stop()
        return entries

    async def purge_through(self, doc_id: str, seq: int) -> None:
        """Drop the document's updates with sequence ≤ `seq` (covered by a committed snapshot).

        JetStream's purge `seq` removes messages *below* it, so we send `seq + 1`; a value ≤ 1 is
        never sent (older servers purged the whole subject for it).
        """
        if seq < 1:
            return
        await self.nats.jetstream.purge_stream(
            DOCS_STREAM, subject=doc_update_subject(doc_id), seq=seq + 1
        )


def signing_key(jwt_secret: str) -> bytes | None:
    """The deployment's key for `Collab-Sig`: derived from the JWT secret (every node has the
    same one, and it is already the secret that must not leak), never the secret itself. None
    without a secret: nothing is signed, every entry is walked."""
    if not jwt_secret:
        return None
    return hashlib.sha256(b"collab doc-log signatures\0" + jwt_secret.encode()).digest()
