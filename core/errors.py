"""One error hierarchy for the whole service.

Domain code raises these; `handlers.base` maps them to the JSON error body of DESIGN.md §6 and the
WebSocket layer maps them to 44xx close codes. Never match errors by message text: use the class or
`code`.
"""

from __future__ import annotations

from enum import IntEnum
from typing import Any


class CloseCode(IntEnum):
    """Every WebSocket close code this service sends, with the human reason used when the closer
    has nothing more specific to say. RFC 6455 codes where one fits (clients reconnect on them);
    4400-4499 mirror the HTTP status of the same refusal (y-websocket-style clients stop
    reconnecting on them, which is what a refusal should do). Documented in the README."""

    reason: str

    def __new__(cls, value: int, reason: str) -> CloseCode:
        member = int.__new__(cls, value)
        member._value_ = value
        member.reason = reason
        return member

    GOING_AWAY = 1001, "server shutting down, reconnect"
    # 1008 "policy violation": the client did not read what it was sent. Not a 44xx, so the stock
    # provider reconnects and resyncs (a board client resumes with ?since=).
    SLOW_READER = 1008, "client is not reading: too much pending, reconnect"
    TOO_BIG = 1009, "frame too large"
    INTERNAL_ERROR = 1011, "internal error"
    TRY_AGAIN_LATER = 1013, "service unavailable, retry later"
    BAD_REQUEST = 4400, "invalid request"
    UNAUTHORIZED = 4401, "invalid or expired token"
    FORBIDDEN = 4403, "access denied"
    NOT_FOUND = 4404, "not found"
    CONFLICT = 4409, "conflict"
    GONE = 4410, "gone"
    PAYLOAD_TOO_LARGE = 4413, "payload too large"
    RATE_LIMITED = 4429, "rate limit exceeded"
    # A document whose JetStream subject is full (bus/doc_log.py); its refusals are error
    # frames on an open socket, never a close, but the error carries a code like every other.
    DOCUMENT_LOG_FULL = 4507, "document log full"


class AppError(Exception):
    """Base of every error a client may see. `code` is stable and documented in the README."""

    status: int = 400
    code: str = "bad_request"
    ws_close_code: CloseCode = CloseCode.BAD_REQUEST

    def __init__(
        self,
        message: str,
        *,
        code: str | None = None,
        fields: dict[str, Any] | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        if code:
            self.code = code
        self.fields = fields or {}
        self.headers = headers or {}

    def to_body(self) -> dict[str, Any]:
        return {"error": {"code": self.code, "message": self.message, "fields": self.fields}}


class ValidationFailed(AppError):
    status = 400
    code = "validation_error"


class Unauthorized(AppError):
    status = 401
    code = "unauthorized"
    ws_close_code = CloseCode.UNAUTHORIZED


class Forbidden(AppError):
    status = 403
    code = "forbidden"
    ws_close_code = CloseCode.FORBIDDEN


class NotFound(AppError):
    status = 404
    code = "not_found"
    ws_close_code = CloseCode.NOT_FOUND


class Conflict(AppError):
    status = 409
    code = "conflict"
    ws_close_code = CloseCode.CONFLICT


class Gone(AppError):
    status = 410
    code = "gone"
    ws_close_code = CloseCode.GONE


class PayloadTooLarge(AppError):
    status = 413
    code = "payload_too_large"
    ws_close_code = CloseCode.PAYLOAD_TOO_LARGE


class UpgradeRequired(AppError):
    """A WebSocket endpoint asked for without the upgrade handshake (HTTP 426)."""

    status = 426
    code = "upgrade_required"


class RateLimited(AppError):
    status = 429
    code = "rate_limited"
    ws_close_code = CloseCode.RATE_LIMITED

    def __init__(self, message: str, *, retry_after_s: int) -> None:
        super().__init__(message, headers={"Retry-After": str(max(1, retry_after_s))})
        self.retry_after_s = retry_after_s


class Unavailable(AppError):
    """A backing service (Postgres, NATS) is down: the client should retry later."""

    status = 503
    code = "service_unavailable"
    # "Try Again Later" (RFC 6455 registry): clients reconnect with backoff.
    ws_close_code = CloseCode.TRY_AGAIN_LATER
