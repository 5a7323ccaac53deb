"""Pure codec for the y-websocket binary protocol (no I/O, no Tornado, no NATS).

The server speaks the protocol of the stock npm ``y-websocket`` ``WebsocketProvider`` so that real
Yjs clients work unchanged. Every frame starts with a lib0 varuint message type:

* ``0`` sync: a sync submessage type (step 1 / step 2 / update) and a length-prefixed payload
  (a state vector for step 1, a Yjs v1 update otherwise) -- see y-protocols ``sync.js``;
* ``1`` awareness: a length-prefixed awareness update -- see y-protocols ``awareness.js``;
* ``2`` auth: submessage ``0`` = permission denied + reason string -- see y-protocols ``auth.js``;
* ``3`` query-awareness: no payload; the peer answers with every awareness state it knows.

Why this module exists instead of pycrdt's ``Decoder``/``handle_sync_message``: those helpers trust
their input (an empty or truncated frame raises ``IndexError``/``AssertionError``, a frame with
trailing bytes is silently accepted) and the Rust decoder under ``Doc.apply_update`` has sharper
edges still (measured with pycrdt 0.14.13: an ``Any`` value nested 100k deep overflows its stack and
kills the process with SIGSEGV; client ids >= 2**53 and clocks >= 2**32 are silently truncated, so
the server's doc would diverge from the Yjs clients' docs; trailing bytes after an update are
ignored). Frames come from untrusted sockets and updates are published to JetStream, where a poison
update would break every later load of the document, so this codec is **strict and total**:
decoding any bytes either returns a typed message whose payload is proven well-formed, or raises
:class:`ProtocolError`. No other exception escapes, including the pyo3 ``PanicException`` that
pycrdt raises as a ``BaseException`` subclass.

Lengths and counts are bounded by the bytes actually present before anything is allocated or
looped over, so a 10-byte frame announcing 2**50 items costs microseconds, not memory.

The codec is a package, one module per concern, lowest first: ``wire`` (the strict lib0 reader and
writers, strict JSON, limits), ``validation`` (Yjs v1 updates and state vectors), ``sync`` and
``awareness`` (their messages and frames), ``frames`` (the envelope: decode any frame, encode any
message). Import from here; the submodules are how it is organised, not its interface.
"""

from __future__ import annotations

from pycrdt import YSyncMessageType

from core.yjs import (
    EMPTY_UPDATE,
    ProtocolError,
    call_pycrdt,
)
from live.protocol.awareness import (
    MAX_AWARENESS_STATE_BYTES,
    AwarenessEntry,
    AwarenessMessage,
    QueryAwareness,
    awareness_frame_client_ids,
    decode_awareness,
    encode_awareness,
    encode_awareness_entries,
    encode_query_awareness,
)
from live.protocol.frames import (
    AuthMessage,
    AuthMessageType,
    Message,
    decode_message,
    encode_message,
    encode_permission_denied,
)
from live.protocol.sync import (
    SyncStep1,
    SyncStep2,
    SyncUpdate,
    encode_sync_step1,
    encode_sync_step2,
    encode_update,
)
from live.protocol.validation import (
    validate_state_vector,
    validate_update,
    validate_update_structure,
)
from live.protocol.wire import (
    MAX_NESTING_DEPTH,
    MAX_SAFE_INTEGER,
    MAX_YJS_CLIENT_ID,
    MAX_YJS_CLOCK,
    MessageType,
)

__all__ = [
    "EMPTY_UPDATE",
    "MAX_AWARENESS_STATE_BYTES",
    "MAX_NESTING_DEPTH",
    "MAX_SAFE_INTEGER",
    "MAX_YJS_CLIENT_ID",
    "MAX_YJS_CLOCK",
    "AuthMessage",
    "AuthMessageType",
    "AwarenessEntry",
    "AwarenessMessage",
    "Message",
    "MessageType",
    "ProtocolError",
    "QueryAwareness",
    "SyncStep1",
    "SyncStep2",
    "SyncUpdate",
    "YSyncMessageType",
    "awareness_frame_client_ids",
    "call_pycrdt",
    "decode_awareness",
    "decode_message",
    "encode_awareness",
    "encode_awareness_entries",
    "encode_message",
    "encode_permission_denied",
    "encode_query_awareness",
    "encode_sync_step1",
    "encode_sync_step2",
    "encode_update",
    "validate_state_vector",
    "validate_update",
    "validate_update_structure",
]
