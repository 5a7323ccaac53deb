"""The JSON envelope spoken on text frames of `/ws/documents/<id>` (wire types, no I/O).

Inbound messages are validated with marshmallow (unknown fields are an error, as in the REST API);
outbound ones are built by the small functions at the bottom so every shape is written once.
docs/realtime.md documents each message with an example.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

import marshmallow
from marshmallow import fields, validate

from live.protocol import MAX_AWARENESS_STATE_BYTES, MAX_SAFE_INTEGER

# Client message ids become part of a JetStream Nats-Msg-Id and a Postgres key: short and printable.
MAX_MESSAGE_ID_CHARS = 128
PRESENCE_TYPES = ("presence", "cursor", "typing")


class EnvelopeError(ValueError):
    """An invalid text frame; answered with an `error` message, the connection is kept."""

    def __init__(self, code: str, message: str, msg_id: str | None = None) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.msg_id = msg_id


class _OperationSchema(marshmallow.Schema):
    type = fields.String(required=True, validate=validate.OneOf(["update"]))
    payload = fields.String(required=True)
    client_id = fields.Integer(
        load_default=None, allow_none=True, validate=validate.Range(0, MAX_SAFE_INTEGER)
    )


class _OperationDataSchema(marshmallow.Schema):
    operation = fields.Nested(_OperationSchema, required=True)
    # The version the client had when it made the operation. CRDT updates commute, so it is
    # informational (logged), never a precondition.
    version = fields.Integer(load_default=None, allow_none=True, validate=validate.Range(min=0))


def _message_id(*, required: bool) -> fields.String:
    rules = [
        validate.Length(1, MAX_MESSAGE_ID_CHARS),
        validate.Regexp(r"^[\x21-\x7e]+$", error="must be printable ASCII without spaces"),
    ]
    if required:
        return fields.String(required=True, validate=rules)
    return fields.String(load_default=None, allow_none=True, validate=rules)


class OperationMessageSchema(marshmallow.Schema):
    type = fields.String(required=True)
    id = _message_id(required=True)
    data = fields.Nested(_OperationDataSchema, required=True)


class PresenceMessageSchema(marshmallow.Schema):
    type = fields.String(required=True)
    id = _message_id(required=False)
    data = fields.Dict(required=True, allow_none=True)


class PingMessageSchema(marshmallow.Schema):
    type = fields.String(required=True)
    id = _message_id(required=False)


_SCHEMAS: dict[str, marshmallow.Schema] = {
    "operation": OperationMessageSchema(),
    "presence": PresenceMessageSchema(),
    "cursor": PresenceMessageSchema(),
    "typing": PresenceMessageSchema(),
    "ping": PingMessageSchema(),
}


@dataclass(frozen=True)
class OperationMessage:
    id: str
    update: bytes
    client_id: int | None
    base_version: int | None


@dataclass(frozen=True)
class PresenceMessage:
    """`presence` replaces the connection's awareness fields; `cursor`/`typing` set one field."""

    type: str
    data: dict[str, Any] | None
    id: str | None


@dataclass(frozen=True)
class PingMessage:
    id: str | None


Inbound = OperationMessage | PresenceMessage | PingMessage


def parse(text: str) -> Inbound:
    """Decode one text frame; raises EnvelopeError with a stable code."""
    try:
        raw = json.loads(text)
    except (ValueError, RecursionError) as err:
        raise EnvelopeError("invalid_json", f"text frame is not JSON: {err}") from err
    if not isinstance(raw, dict):
        raise EnvelopeError("invalid_message", "a message must be a JSON object")
    msg_id = raw.get("id") if isinstance(raw.get("id"), str) else None
    kind = raw.get("type")
    schema = _SCHEMAS.get(kind) if isinstance(kind, str) else None
    if schema is None or not isinstance(kind, str):
        known = ", ".join(sorted(_SCHEMAS))
        raise EnvelopeError("unknown_type", f"unknown message type {kind!r} ({known})", msg_id)
    try:
        loaded = schema.load(raw)
    except marshmallow.ValidationError as err:
        raise EnvelopeError("validation_error", _describe(err), msg_id) from err
    return _build(kind, loaded)


def _build(kind: str, loaded: dict[str, Any]) -> Inbound:
    if kind == "operation":
        operation = loaded["data"]["operation"]
        return OperationMessage(
            id=loaded["id"],
            update=_decode_hex(operation["payload"], loaded["id"]),
            client_id=operation["client_id"],
            base_version=loaded["data"]["version"],
        )
    if kind == "ping":
        return PingMessage(loaded["id"])
    data = loaded["data"]
    if data is not None and len(_dumps(data)) > MAX_AWARENESS_STATE_BYTES:
        raise EnvelopeError(
            "presence_too_large",
            f"{kind} data exceeds {MAX_AWARENESS_STATE_BYTES} bytes",
            loaded["id"],
        )
    return PresenceMessage(kind, data, loaded["id"])


def _decode_hex(payload: str, msg_id: str) -> bytes:
    try:
        return bytes.fromhex(payload)
    except ValueError as err:
        raise EnvelopeError("invalid_payload", "payload must be a hex string", msg_id) from err


def _describe(err: marshmallow.ValidationError) -> str:
    return "invalid message: " + json.dumps(err.messages, sort_keys=True)


def _dumps(value: Any) -> str:
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False, allow_nan=False)


# --- outbound --------------------------------------------------------------------------------


def ack(msg_id: str, version: int, *, duplicate: bool) -> str:
    return _dumps({"type": "ack", "id": msg_id, "version": version, "duplicate": duplicate})


def error(code: str, message: str, msg_id: str | None = None) -> str:
    return _dumps({"type": "error", "code": code, "message": message, "id": msg_id})


def sync(version: int, state: bytes, reason: str | None = None) -> str:
    body: dict[str, Any] = {"type": "sync", "version": version, "state": state.hex()}
    if reason:
        body["reason"] = reason
    return _dumps(body)


def operation_body(
    update: bytes, version: int, user_id: str | None, client_id: int | None
) -> dict[str, Any]:
    """One operation as listed in `operations` (catch-up after `?since=`)."""
    return {
        "operation": {"type": "update", "payload": update.hex(), "client_id": client_id},
        "version": version,
        "user_id": user_id,
    }


def operation(update: bytes, version: int, user_id: str | None, client_id: int | None) -> str:
    body = operation_body(update, version, user_id, client_id)
    return _dumps(
        {
            "type": "operation",
            "data": {"operation": body["operation"]},
            "version": version,
            "user_id": user_id,
        }
    )


def operations(since: int, version: int, items: list[dict[str, Any]]) -> str:
    return _dumps({"type": "operations", "since": since, "version": version, "operations": items})


def presence(kind: str, client_id: int, user_id: str | None, payload: Any) -> str:
    key = "state" if kind == "presence" else "data"
    return _dumps({"type": kind, "client_id": client_id, "user_id": user_id, key: payload})


# Awareness fields that JSON clients get as their own message types when only they changed.
_FIELD_MESSAGES = ("cursor", "typing")


def presence_messages(
    client_id: int,
    user_id: str | None,
    state: dict[str, Any] | None,
    previous: dict[str, Any] | None,
) -> list[str]:
    """How one awareness change reads to a JSON client: `cursor`/`typing` when only those fields
    changed (the frequent case), otherwise `presence` with the whole state (null = left)."""
    if state is not None and previous is not None:
        changed = {k for k in state.keys() | previous.keys() if state.get(k) != previous.get(k)}
        if changed and changed <= set(_FIELD_MESSAGES):
            return [presence(k, client_id, user_id, state.get(k)) for k in sorted(changed)]
    return [presence("presence", client_id, user_id, state)]


def permission(role: str | None, read_only: bool, reason: str) -> str:
    return _dumps({"type": "permission", "role": role, "read_only": read_only, "reason": reason})


def pong(msg_id: str | None) -> str:
    return _dumps({"type": "pong", "id": msg_id})


def events_position(seq: int, refetch: str | None = None) -> str:
    """The document's events (comment threads) after stream sequence `seq` follow; `refetch`:
    the ones before could not be replayed (reload the threads over REST)."""
    frame: dict[str, Any] = {"type": "events", "seq": seq}
    if refetch is not None:
        frame["refetch"] = refetch
    return _dumps(frame)


def document_event(seq: int, event: dict[str, Any]) -> str:
    """One document event (`bus/schemas/doc_events.py`) at its stream sequence."""
    return _dumps({"type": "event", "seq": seq, "event": event})
