"""Sync in the y-websocket codec (y-protocols ``sync.js``): SyncStep1 (a state vector), SyncStep2
and Update (Yjs v1 updates), each payload validated before it is returned."""

from __future__ import annotations

from dataclasses import dataclass

from pycrdt import YSyncMessageType

from core.yjs import ProtocolError
from live.protocol.validation import validate_state_vector, validate_update
from live.protocol.wire import MessageType, Reader, write_var_bytes


@dataclass(frozen=True, slots=True)
class SyncStep1:
    """A peer's state vector: "send me everything I have not seen"."""

    state_vector: bytes


@dataclass(frozen=True, slots=True)
class SyncStep2:
    """The answer to a :class:`SyncStep1`: a Yjs v1 update with everything the peer lacked."""

    update: bytes


@dataclass(frozen=True, slots=True)
class SyncUpdate:
    """An incremental Yjs v1 update made after the initial sync."""

    update: bytes


def encode_sync_step1(state_vector: bytes) -> bytes:
    """Frame a state vector as SyncStep1 (what the server sends first on every connection)."""
    return _encode_sync(YSyncMessageType.SYNC_STEP1, state_vector)


def encode_sync_step2(update: bytes) -> bytes:
    """Frame the answer to a SyncStep1; the stock provider marks itself synced on receiving it."""
    return _encode_sync(YSyncMessageType.SYNC_STEP2, update)


def encode_update(update: bytes) -> bytes:
    """Frame an incremental update for broadcast."""
    return _encode_sync(YSyncMessageType.SYNC_UPDATE, update)


def _encode_sync(sync_type: YSyncMessageType, payload: bytes) -> bytes:
    return bytes((MessageType.SYNC, sync_type)) + write_var_bytes(bytes(payload))


def decode_sync(reader: Reader) -> SyncStep1 | SyncStep2 | SyncUpdate:
    sync_type = reader.read_var_uint("sync message type")
    payload = reader.read_var_bytes("sync payload")
    if sync_type == YSyncMessageType.SYNC_STEP1:
        validate_state_vector(payload)
        return SyncStep1(state_vector=payload)
    if sync_type == YSyncMessageType.SYNC_STEP2:
        validate_update(payload)
        return SyncStep2(update=payload)
    if sync_type == YSyncMessageType.SYNC_UPDATE:
        validate_update(payload)
        return SyncUpdate(update=payload)
    raise ProtocolError(f"unknown sync message type {sync_type}")
