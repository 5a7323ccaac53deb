"""The base of every HTTP handler: parse → authorize → call a service → serialize.

One funnel turns every failure (domain errors, Tornado's own 404/405/413, unexpected exceptions)
into the JSON error body of DESIGN.md §6, so a client never sees an HTML page or a stack trace.
"""

from __future__ import annotations

import functools
import json
import urllib.parse
import uuid
from collections.abc import Awaitable, Callable
from typing import Any

import marshmallow
import structlog
import tornado.web
from tornado.http1connection import HTTP1Connection

from core.errors import AppError, NotFound, PayloadTooLarge, ValidationFailed
from handlers.input_guard import check_text, parse_json, safe_name
from handlers.redaction import RedactedRequestLogging
from server.context import AppContext
from services.auth_guard import Principal, authenticate_bearer
from services.mail_messages import render_page

log = structlog.get_logger("collab.http")

_TORNADO_STATUS_CODES = {
    400: "bad_request",
    401: "unauthorized",
    403: "forbidden",
    404: "not_found",
    405: "method_not_allowed",
    413: "payload_too_large",
    429: "rate_limited",
    500: "internal_error",
    503: "service_unavailable",
}


# What a browser app may send and read cross-origin (the API's own conventions, README "CORS").
CORS_ALLOWED_HEADERS = (
    "Authorization",
    "Content-Type",
    "If-Match",
    "If-None-Match",
    "Idempotency-Key",
    "X-Request-Id",
)
CORS_EXPOSED_HEADERS = ("ETag", "Retry-After", "X-Request-Id", "Allow")
CORS_MAX_AGE_S = 600  # browsers cap it anyway (Chromium: 2 h); 10 min keeps a config change quick


def implemented_methods(handler: type[tornado.web.RequestHandler]) -> list[str]:
    """The HTTP methods a handler class really implements (for `Allow` and CORS preflights):
    Tornado's stub for a missing method is `RequestHandler._unimplemented_method`."""
    stub = tornado.web.RequestHandler._unimplemented_method
    return [
        method
        for method in handler.SUPPORTED_METHODS
        if getattr(handler, method.lower(), stub) is not stub
    ]


def parse_uuid(value: str, field: str = "id") -> str:
    """Path ids are UUIDs; anything else is a 404 (it cannot name an object) with a clear reason."""
    try:
        return str(uuid.UUID(value))
    except (ValueError, AttributeError) as err:
        raise NotFound(f"{field} is not a valid UUID", fields={field: ["not a UUID"]}) from err


SignedInMethod = Callable[..., Awaitable[None]]


def signed_in(method: SignedInMethod) -> Callable[..., Awaitable[None]]:
    """The common head of an API method, so the method itself reads parse → authorize → call a
    service → serialize: the caller must be signed in (401 first), and every `*_id` path argument
    must be a UUID (404 naming it); the method gets the principal and the normalised ids.

        @signed_in
        async def get(self, principal: Principal, card_id: str) -> None: ...
    """

    @functools.wraps(method)
    async def head(self: BaseHandler, **path: str) -> None:
        principal = await self.require_user()
        args = {
            name: parse_uuid(value, name) if name.endswith("_id") else value
            for name, value in path.items()
        }
        await method(self, principal, **args)

    return head


def validation_error(err: marshmallow.ValidationError) -> ValidationFailed:
    messages = err.messages if isinstance(err.messages, dict) else {"_schema": err.messages}
    return ValidationFailed("request validation failed", fields=messages)


def _load(schema: marshmallow.Schema, data: dict[str, Any], *, partial: bool = False) -> Any:
    try:
        return schema.load(data, partial=partial)
    except marshmallow.ValidationError as err:
        raise validation_error(err) from err
    except RecursionError as err:  # a recursive schema deeper than MAX_JSON_DEPTH allows for
        raise ValidationFailed("body nested too deeply", fields={"_body": ["too deep"]}) from err


class JsonErrors(RedactedRequestLogging, tornado.web.RequestHandler):
    """The error funnel shared by the JSON handlers and the WebSocket handshakes: every refusal
    (domain errors, Tornado's own 404/405/413, unexpected exceptions) is the JSON body of
    DESIGN.md §6, and a 405 says in `Allow` which methods the route has. Expected refusals
    (`AppError`) are not logged as failures; the rest go to Tornado's lines, redacted."""

    request_id: str

    def set_default_headers(self) -> None:
        """Every response, refusals included, carries the request's correlation id: the
        client's `X-Request-Id` if printable, else a fresh one."""
        if not hasattr(self, "request_id"):
            incoming = self.request.headers.get("X-Request-Id", "")
            printable = incoming.isprintable() and incoming
            self.request_id = incoming[:64] if printable else uuid.uuid4().hex
        self.set_header("X-Request-Id", self.request_id)

    def write_error(self, status_code: int, **kwargs: Any) -> None:
        exc = kwargs.get("exc_info", (None, None, None))[1]
        if isinstance(exc, AppError):
            body = exc.to_body()
            for name, value in exc.headers.items():
                self.set_header(name, value)
        else:
            code = _TORNADO_STATUS_CODES.get(status_code, "error")
            reason = self._reason if status_code < 500 else "internal server error"
            if isinstance(exc, tornado.web.HTTPError) and exc.log_message and status_code < 500:
                reason = exc.log_message
            body = {"error": {"code": code, "message": reason, "fields": {}}}
        if status_code == 405:
            self.set_header("Allow", ", ".join(implemented_methods(type(self))))
        self.set_header("Content-Type", "application/json; charset=utf-8")
        self.finish(json.dumps(body))

    def send_error(self, status_code: int = 500, **kwargs: Any) -> None:
        exc = kwargs.get("exc_info", (None, None, None))[1]
        if isinstance(exc, AppError):
            status_code = exc.status
        super().send_error(status_code, **kwargs)

    def decode_argument(self, value: bytes, name: str | None = None) -> str:
        """Every path and query parameter passes here (Tornado decodes them all through it):
        strict UTF-8 and storable text, else a 400 naming the parameter."""
        field = safe_name(name or "url")
        try:
            text = value.decode("utf-8")
        except UnicodeDecodeError as err:
            raise ValidationFailed(
                f"{field} is not valid UTF-8", fields={field: ["not valid UTF-8"]}
            ) from err
        return check_text(field, text)

    def log_exception(self, typ: Any, value: Any, tb: Any) -> None:
        if isinstance(value, AppError):
            if value.status >= 500:
                log.warning("request.unavailable", code=value.code, error=value.message)
            return
        super().log_exception(typ, value, tb)


@tornado.web.stream_request_body
class BaseHandler(JsonErrors):
    """JSON API handler with the shared error funnel and authentication helpers.

    Bodies are streamed so an oversized one is refused with 413 from its `Content-Length` (or as soon
    as a chunked body passes the limit) instead of being buffered first.
    """

    ctx: AppContext
    principal: Principal | None = None
    # Writes take the version the client saw (If-Match / `version`) and answer with an ETag
    # (the board handlers): the OpenAPI document describes those headers and the 409 body.
    versioned_writes = False
    _body_size = 0

    def initialize(self, ctx: AppContext) -> None:
        self.ctx = ctx

    # --- request lifecycle -------------------------------------------------------------

    def prepare(self) -> None:
        structlog.contextvars.bind_contextvars(request_id=self.request_id)
        self._apply_cors()
        self._body_chunks: list[bytes] = []
        self._check_declared_length()

    def _check_declared_length(self) -> None:
        limit = self.ctx.settings.max_body_bytes
        declared = self.request.headers.get("Content-Length", "0")
        if not declared.isdigit():
            raise ValidationFailed("invalid Content-Length")
        if int(declared) > limit:
            raise PayloadTooLarge(f"body exceeds {limit} bytes")
        if isinstance(self.request.connection, HTTP1Connection):
            self.request.connection.set_max_body_size(limit)

    def data_received(self, chunk: bytes) -> None:
        self._body_size += len(chunk)
        if self._body_size > self.ctx.settings.max_body_bytes:
            raise PayloadTooLarge(f"body exceeds {self.ctx.settings.max_body_bytes} bytes")
        self._body_chunks.append(chunk)

    def on_finish(self) -> None:
        structlog.contextvars.unbind_contextvars("request_id")

    def set_default_headers(self) -> None:
        """Also called by `send_error` (via `clear()`): error responses keep the request id and
        the CORS grant, so a browser app can read a 401 or 409 body, not just a network error."""
        self.set_header("Content-Type", "application/json; charset=utf-8")
        self.set_header("Cache-Control", "no-store")
        self.set_header("X-Content-Type-Options", "nosniff")
        super().set_default_headers()
        if hasattr(self, "ctx"):  # not yet during __init__; prepare() applies it then
            self._apply_cors()

    def _apply_cors(self) -> None:
        allowed = self.ctx.settings.cors_origins
        if not allowed:
            return
        self.set_header("Vary", "Origin")  # the answer depends on Origin: caches must key on it
        origin = self.request.headers.get("Origin")
        if not origin or not ("*" in allowed or origin.rstrip("/") in allowed):
            return
        self.set_header("Access-Control-Allow-Origin", origin)
        self.set_header("Access-Control-Allow-Headers", ", ".join(CORS_ALLOWED_HEADERS))
        self.set_header("Access-Control-Allow-Methods", ", ".join(implemented_methods(type(self))))
        self.set_header("Access-Control-Expose-Headers", ", ".join(CORS_EXPOSED_HEADERS))
        self.set_header("Access-Control-Max-Age", str(CORS_MAX_AGE_S))

    async def options(self, *args: Any, **kwargs: Any) -> None:
        """CORS preflight (route arguments are ignored: the answer is the same for any id)."""
        self.set_header("Allow", ", ".join(implemented_methods(type(self))))
        self.set_status(204)
        self.finish()

    # --- input ------------------------------------------------------------------------

    def json_body(self) -> Any:
        body = b"".join(self._body_chunks)
        if not body:
            return {}
        ctype = self.request.headers.get("Content-Type", "application/json")
        if not ctype.split(";")[0].strip().lower().endswith("json"):
            raise ValidationFailed("Content-Type must be application/json")
        return parse_json(body)

    def text_body(self, media_types: tuple[str, ...]) -> str:
        """A text body (e.g. Markdown to import): one of `media_types`, strict UTF-8, storable
        (no NUL, no lone surrogate), else a 400 naming the body."""
        ctype = self.request.headers.get("Content-Type", "").split(";")[0].strip().lower()
        if ctype not in media_types:
            raise ValidationFailed(
                f"Content-Type must be {' or '.join(media_types)}",
                fields={"_body": [f"not {' or '.join(media_types)}"]},
            )
        try:
            text = b"".join(self._body_chunks).decode("utf-8")
        except UnicodeDecodeError as err:
            raise ValidationFailed(
                "body is not valid UTF-8", fields={"_body": ["not valid UTF-8"]}
            ) from err
        return check_text("_body", text)

    def load_body(self, schema: marshmallow.Schema, *, partial: bool = False) -> dict[str, Any]:
        """Validate the JSON body; unknown fields are an error (no mass assignment)."""
        data = self.json_body()
        if not isinstance(data, dict):
            raise ValidationFailed(
                "JSON body must be an object", fields={"_body": ["not an object"]}
            )
        return _load(schema, data, partial=partial)

    # An HTML form's fields (the pages a mail's links open post forms, `handlers/auth.py`).
    FORM_TYPE = "application/x-www-form-urlencoded"
    MAX_FORM_FIELDS = 20

    def is_form(self) -> bool:
        ctype = self.request.headers.get("Content-Type", "")
        return ctype.split(";")[0].strip().lower() == self.FORM_TYPE

    def load_form(self, schema: marshmallow.Schema) -> dict[str, Any]:
        """Validate an urlencoded form body like a JSON one: strict UTF-8, storable text, each
        field once, unknown fields refused (the schema)."""
        try:
            text = b"".join(self._body_chunks).decode("utf-8")
            pairs = urllib.parse.parse_qsl(
                text,
                keep_blank_values=True,
                strict_parsing=bool(text),
                max_num_fields=self.MAX_FORM_FIELDS,
                errors="strict",  # %ff is not text: a 400, not a U+FFFD
            )
        except (UnicodeDecodeError, ValueError) as err:
            raise ValidationFailed(
                "the form body is not valid", fields={"_body": ["not a valid form"]}
            ) from err
        data: dict[str, str] = {}
        for name, value in pairs:
            if name in data:
                raise ValidationFailed(
                    "a form field is repeated", fields={safe_name(name): ["given twice"]}
                )
            data[check_text(name, name)] = check_text(name, value)
        return _load(schema, data)

    def load_query(self, schema: marshmallow.Schema) -> dict[str, Any]:
        # get_query_argument decodes through decode_argument: NULs and bad UTF-8 are refused there.
        raw = {key: self.get_query_argument(key) for key in self.request.query_arguments}
        return _load(schema, raw)

    # --- auth -------------------------------------------------------------------------

    async def require_user(self) -> Principal:
        """The authenticated caller (access token in `Authorization: Bearer`), or 401."""
        self.principal = await authenticate_bearer(
            self.ctx, self.request.headers.get("Authorization")
        )
        structlog.contextvars.bind_contextvars(user_id=self.principal.user_id)
        return self.principal

    # --- output -----------------------------------------------------------------------

    def wants_page(self) -> bool:
        """A browser (a person who followed a link from a mail), not an API client."""
        return "text/html" in self.request.headers.get("Accept", "")

    def send_html(self, template: str, context: dict[str, Any]) -> None:
        """One of the small pages a mail's links open (`services/mail_templates/`)."""
        self.set_header("Content-Type", "text/html; charset=utf-8")
        self.finish(render_page(template, context))

    def send(self, payload: Any, status: int = 200) -> None:
        self.set_status(status)
        if status == 204:
            self.finish()
            return
        self.finish(json.dumps(payload, default=str, separators=(",", ":")))


class NotFoundHandler(BaseHandler):
    """Catch-all route: unknown paths get the JSON 404 too."""

    def prepare(self) -> None:
        super().prepare()
        raise tornado.web.HTTPError(404, "no such endpoint")
