"""One error hierarchy for the whole service.

Domain code raises these; `handlers.base` maps them to the JSON error body of DESIGN.md §6 and the
WebSocket layer maps them to 44xx close codes. Never match errors by message text: use the class or
`code`.
"""

from __future__ import annotations

from typing import Any


class AppError(Exception):
    """Base of every error a client may see. `code` is stable and documented in the README."""

    status: int = 400
    code: str = "bad_request"
    ws_close_code: int = 4400

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
    ws_close_code = 4401


class Forbidden(AppError):
    status = 403
    code = "forbidden"
    ws_close_code = 4403


class NotFound(AppError):
    status = 404
    code = "not_found"
    ws_close_code = 4404


class Conflict(AppError):
    status = 409
    code = "conflict"
    ws_close_code = 4409


class Gone(AppError):
    status = 410
    code = "gone"
    ws_close_code = 4410


class PayloadTooLarge(AppError):
    status = 413
    code = "payload_too_large"
    ws_close_code = 4413


class UpgradeRequired(AppError):
    """A WebSocket endpoint asked for without the upgrade handshake (HTTP 426)."""

    status = 426
    code = "upgrade_required"


class RateLimited(AppError):
    status = 429
    code = "rate_limited"
    ws_close_code = 4429

    def __init__(self, message: str, *, retry_after_s: int) -> None:
        super().__init__(message, headers={"Retry-After": str(max(1, retry_after_s))})
        self.retry_after_s = retry_after_s


class Unavailable(AppError):
    """A backing service (Postgres, NATS) is down: the client should retry later."""

    status = 503
    code = "service_unavailable"
    # 1013 = "Try Again Later" (RFC 6455 registry): clients reconnect with backoff.
    ws_close_code = 1013
