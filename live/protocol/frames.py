"""The envelope of every y-websocket frame: a message type, then its payload. Decodes any frame
into a typed message (or :class:`ProtocolError`) and encodes any typed message back, exactly."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from enum import IntEnum

from core.yjs import ProtocolError
from live.protocol.awareness import (
    AwarenessMessage,
    QueryAwareness,
    decode_awareness_frame,
    decode_query_awareness,
    encode_awareness,
    encode_query_awareness,
)
from live.protocol.sync import (
    SyncStep1,
    SyncStep2,
    SyncUpdate,
    decode_sync,
    encode_sync_step1,
    encode_sync_step2,
    encode_update,
)
from live.protocol.wire import MessageType, Reader, write_var_string


class AuthMessageType(IntEnum):
    """Submessage of an auth frame; y-protocols ``auth.js`` defines only permission-denied."""

    PERMISSION_DENIED = 0


@dataclass(frozen=True, slots=True)
class AuthMessage:
    """Permission denied (the only auth submessage y-protocols defines), with a human reason.

    The stock provider only logs it; the connection stays open, which is what the server wants for
    a viewer whose update was rejected.
    """

    reason: str


Message = SyncStep1 | SyncStep2 | SyncUpdate | AwarenessMessage | QueryAwareness | AuthMessage


def encode_permission_denied(reason: str) -> bytes:
    """Frame y-protocols ``writePermissionDenied`` (e.g. a viewer's update was dropped)."""
    return bytes((MessageType.AUTH, AuthMessageType.PERMISSION_DENIED)) + write_var_string(reason)


def encode_message(message: Message) -> bytes:
    """Encode any typed message; ``decode_message(encode_message(m)) == m`` for valid messages."""
    match message:
        case SyncStep1(state_vector=state_vector):
            return encode_sync_step1(state_vector)
        case SyncStep2(update=update):
            return encode_sync_step2(update)
        case SyncUpdate(update=update):
            return encode_update(update)
        case AwarenessMessage(payload=payload):
            return encode_awareness(payload)
        case QueryAwareness():
            return encode_query_awareness()
        case AuthMessage(reason=reason):
            return encode_permission_denied(reason)
    raise TypeError(f"not a protocol message: {message!r}")


def decode_message(frame: bytes) -> Message:
    """Decode one binary WebSocket frame into a typed, fully validated message.

    Sync payloads are validated too (state vectors by :func:`validate_state_vector`, updates by
    :func:`validate_update`), so a caller may publish a returned update without re-checking it.
    Raises :class:`ProtocolError` for anything else, never another exception.
    """
    frame = bytes(frame)
    if not frame:
        raise ProtocolError("empty frame")
    reader = Reader(frame)
    message_type = reader.read_var_uint("message type")
    decoder = _FRAME_DECODERS.get(message_type)
    if decoder is None:
        raise ProtocolError(f"unknown message type {message_type}")
    message = decoder(reader)
    reader.expect_end(type(message).__name__)
    return message


def _decode_auth(reader: Reader) -> AuthMessage:
    auth_type = reader.read_var_uint("auth message type")
    if auth_type != AuthMessageType.PERMISSION_DENIED:
        raise ProtocolError(f"unknown auth message type {auth_type}")
    return AuthMessage(reason=reader.read_var_string("permission denied reason"))


_FRAME_DECODERS: dict[int, Callable[[Reader], Message]] = {
    MessageType.SYNC: decode_sync,
    MessageType.AWARENESS: decode_awareness_frame,
    MessageType.AUTH: _decode_auth,
    MessageType.QUERY_AWARENESS: decode_query_awareness,
}
