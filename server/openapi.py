"""The OpenAPI 3 document, generated from the routes and their marshmallow schemas.

Each handler declares `openapi = {"get": {"summary", "body", "query", "response", "status",
"auth"}}` (`status` may be a tuple when an operation answers more than one success code;
`idempotency_key: True` documents the retry header; `media` lists the media types of an operation
that answers a file instead of JSON; `frames` names the JSON frames of a WebSocket, registered
as components; `html: True` marks a page answered as `text/html`, besides the JSON if there is a response schema). Everything else is derived,
so it cannot drift from the code: the `operationId` (method + handler), path parameter formats
(`*_id` are UUIDs: `parse_uuid`), whether a body is required (a schema with a required field; DELETE bodies
never), `If-Match`/`ETag`/409 `version_conflict` on the versioned board writes, `Retry-After` on
429, `X-Request-Id` everywhere, and the WebSocket handshake. A test checks every route and method
is documented, and tests/test_openapi_fuzz.py drives every operation from this document.
"""

from __future__ import annotations

import re
from typing import Any

import marshmallow
import marshmallow.validate
from apispec import APISpec
from apispec.ext.marshmallow import MarshmallowPlugin

from core.errors import CloseCode
from handlers.input_guard import IDEMPOTENCY_HEADER, MAX_IDEMPOTENCY_KEY_CHARS
from handlers.routing import Route
from handlers.schemas.common import ErrorSchema

_ERROR_STATUSES = {
    "400": "Invalid input (`validation_error`, `fields` names what)",
    "401": "Missing or invalid token",
    "403": "Not allowed",
    "404": "Not found (or not visible to you)",
    "409": "Conflict",
    "410": "Gone (a used, revoked or expired invitation or account link)",
    "413": "Body too large",
    "429": "Rate limited (see `Retry-After`)",
    "503": "A backing service is unavailable: retry",
    "507": "The document log is full",
}
_WS_ERROR_STATUSES = {
    "400": "A path or query parameter that is not UTF-8 or contains NUL",
    "403": "`origin_not_allowed`: a browser page on an origin not in COLLAB_WS_ALLOWED_ORIGINS",
    "426": "`upgrade_required`: a plain request (no `Upgrade: websocket`, `Connection: Upgrade`)",
}
_WS_HEADERS = [
    ("Upgrade", True, {"type": "string", "enum": ["websocket"]}),
    ("Connection", True, {"type": "string", "enum": ["Upgrade"]}),
    ("Sec-WebSocket-Key", True, {"type": "string"}),
    ("Sec-WebSocket-Version", True, {"type": "string", "enum": ["13"]}),
    ("Sec-WebSocket-Protocol", False, {"type": "string", "example": "collab, <access JWT>"}),
]
_UUID_PARAM = re.compile(r"_id$")


def operation_id(route: Route, method: str) -> str:
    """`get_document`, `post_restore`, `patch_card`…: stable names for generated SDK methods."""
    name = route.handler.__name__.removesuffix("Handler")
    snake = re.sub(r"(?<!^)(?=[A-Z])", "_", name).lower()
    return f"{method}_{snake}"


def _path_parameter(name: str) -> dict[str, Any]:
    schema: dict[str, Any] = {"type": "string"}
    if _UUID_PARAM.search(name):
        schema["format"] = "uuid"  # the handler refuses anything else (404, `not a UUID`)
    return {"in": "path", "name": name, "required": True, "schema": schema}


def _load_fields(schema: type[marshmallow.Schema]) -> dict[str, marshmallow.fields.Field]:
    return dict(schema().load_fields)


def _versioned(route: Route, method: str, spec: dict[str, Any]) -> bool:
    """A board/list/card write that takes the version the client saw (If-Match or `version`)."""
    body = spec.get("body")
    return (
        getattr(route.handler, "versioned_writes", False)
        and method != "get"
        and body is not None
        and "version" in _load_fields(body)
    )


def _success_statuses(spec: dict[str, Any]) -> tuple[int, ...]:
    status = spec.get("status", 200)
    return tuple(status) if isinstance(status, (tuple, list)) else (status,)


def _success_response(route: Route, spec: dict[str, Any], status: int) -> dict[str, Any]:
    response: dict[str, Any] = {"description": spec.get("summary", "OK"), "headers": {}}
    response["headers"]["X-Request-Id"] = "RequestId"
    schema = spec.get("response")
    media = spec.get("media")  # a file, not JSON: media type → description
    page = {"text/html": {"schema": {"type": "string"}}}
    if spec.get("html") and schema is None:  # a page for a person who followed a mail's link
        response["content"] = page
    elif media is not None:
        response["content"] = {
            kind: {"schema": {"type": "string", "format": "binary"}} for kind in media
        }
        response["headers"]["Content-Disposition"] = {
            "description": "`attachment; filename=…` (RFC 6266, UTF-8 `filename*` too)",
            "schema": {"type": "string"},
        }
    elif schema is not None and status != 204:
        response["content"] = {"application/json": {"schema": schema}}
        if spec.get("html"):  # JSON, or a page when the client accepts text/html
            response["content"].update(page)
        if getattr(route.handler, "versioned_writes", False) and "version" in schema().fields:
            response["headers"]["ETag"] = "ETag"
    return response


def _error_responses(versioned: bool) -> dict[str, Any]:
    responses: dict[str, Any] = {}
    for code, text in _ERROR_STATUSES.items():
        response: dict[str, Any] = {
            "description": text,
            "headers": {"X-Request-Id": "RequestId"},
            "content": {"application/json": {"schema": "Error"}},
        }
        if code == "429":
            response["headers"]["Retry-After"] = "RetryAfter"
        if code == "409" and versioned:
            response["description"] = (
                "`version_conflict`: the entity changed since the version you sent; `current` is"
                " the entity as it is now (its version also in `ETag`): merge and retry. Other"
                " conflicts (e.g. `board_archived`) are the plain error body."
            )
            response["headers"]["ETag"] = "ETag"
            either = {"oneOf": [_ref("Error"), _ref("VersionConflict")]}
            response["content"]["application/json"]["schema"] = either
        responses[code] = response
    return responses


def _ref(schema: str) -> dict[str, str]:
    return {"$ref": f"#/components/schemas/{schema}"}


def _request_body(method: str, body: type[marshmallow.Schema]) -> dict[str, Any]:
    # An empty body is read as `{}`: required only if the schema has a required field.
    required = method != "delete" and any(f.required for f in _load_fields(body).values())
    return {"required": required, "content": {"application/json": {"schema": body}}}


def _operation(route: Route, method: str, spec: dict[str, Any]) -> dict[str, Any]:
    if 101 in _success_statuses(spec):
        return _websocket_operation(route, method, spec)
    versioned = _versioned(route, method, spec)
    op: dict[str, Any] = {
        "operationId": operation_id(route, method),
        "summary": spec.get("summary", ""),
        "tags": [_tag(route)],
        "parameters": [_path_parameter(name) for name in route.params],
        "responses": {},
    }
    if spec.get("query") is not None:
        op["parameters"].append({"in": "query", "schema": spec["query"]})
    op["parameters"].append("XRequestId")
    if versioned:
        op["parameters"].append("IfMatch")
    if spec.get("idempotency_key"):
        op["parameters"].append("IdempotencyKey")
    if spec.get("body") is not None:
        op["requestBody"] = _request_body(method, spec["body"])
    if spec.get("text_body") is not None:  # a text body (an import), not JSON
        text = {"schema": {"type": "string"}}
        op["requestBody"] = {"required": True, "content": dict.fromkeys(spec["text_body"], text)}
    for status in _success_statuses(spec):
        op["responses"][str(status)] = _success_response(route, spec, status)
    op["responses"].update(_error_responses(versioned))
    if spec.get("auth", True):
        op["security"] = [{"bearer": []}]
    return op


def _websocket_operation(route: Route, method: str, spec: dict[str, Any]) -> dict[str, Any]:
    closes = ", ".join(f"{code} ({reason})" for code, reason in _close_codes().items())
    parameters: list[Any] = [_path_parameter(name) for name in route.params]
    if spec.get("query") is not None:
        parameters.append({"in": "query", "schema": spec["query"]})
    parameters += [
        {"in": "header", "name": name, "required": required, "schema": schema}
        for name, required, schema in _WS_HEADERS
    ]
    errors = {
        code: {"description": text, "content": {"application/json": {"schema": "Error"}}}
        for code, text in _WS_ERROR_STATUSES.items()
    }
    return {
        "operationId": operation_id(route, "connect"),
        "summary": spec.get("summary", ""),
        "description": (
            "A WebSocket handshake (RFC 6455), not a JSON endpoint. Send the access token as the"
            " subprotocol (`Sec-WebSocket-Protocol: collab, <access JWT>`; the server selects"
            " `collab`), or `Authorization: Bearer`, or `?token=`. Authentication and access are"
            " checked before the upgrade, but a refused client is still upgraded and then closed"
            " at once with a 44xx close code and a human reason (browsers cannot read a failed"
            " handshake's status). Only a forbidden `Origin` (403) and a request that is not an"
            " upgrade (426) are answered over HTTP, with the JSON error body. Close codes the"
            f" server sends: {closes}."
        ),
        "tags": ["realtime"],
        "parameters": parameters,
        "responses": {
            "101": {
                "description": "Switching Protocols: the socket is open (frames: README)",
                "headers": {
                    name: {"schema": {"type": "string"}}
                    for name in ("Upgrade", "Connection", "Sec-WebSocket-Accept")
                }
                | {"Sec-WebSocket-Protocol": {"schema": {"type": "string", "enum": ["collab"]}}},
            },
            **errors,
        },
        "x-websocket": {"subprotocol": "collab", "close_codes": _close_codes()}
        # The JSON frames of the kinds that declare them (components, registered by name).
        | ({"frames": [_ref(name) for name in spec["frames"]]} if spec.get("frames") else {}),
    }


def _close_codes() -> dict[str, str]:
    """Every close code the server sends, with its default reason (core.errors.CloseCode)."""
    return {str(code.value): code.reason for code in CloseCode}


def _tag(route: Route) -> str:
    return route.template.strip("/").split("/")[2] if route.template.startswith("/api/") else "ops"


def _components(spec: APISpec) -> None:
    spec.components.schema("Error", schema=ErrorSchema)
    spec.components.schema(
        "VersionConflict",
        {
            "type": "object",
            "additionalProperties": False,
            "required": ["error", "current"],
            "properties": {
                "error": {"$ref": "#/components/schemas/ErrorDetail"},
                "current": {
                    "type": "object",
                    "description": "the entity as it is now",
                    "required": ["version"],
                    "properties": {"version": {"type": "integer"}},
                    "additionalProperties": True,
                },
            },
        },
    )
    spec.components.security_scheme(
        "bearer", {"type": "http", "scheme": "bearer", "bearerFormat": "JWT"}
    )
    request_id = {"type": "string", "maxLength": 64}
    spec.components.parameter(
        "XRequestId",
        "header",
        {
            "name": "X-Request-Id",
            "required": False,
            "description": "Correlation id, echoed back (printable, ≤ 64 chars; else replaced)",
            "schema": {"type": "string"},
        },
    )
    spec.components.parameter(
        "IfMatch",
        "header",
        {
            "name": "If-Match",
            "required": False,
            "description": 'The version you last saw, `"<n>"` (or `W/"<n>"`, `*` = any); the'
            " same as `version` in the body (both must agree). A stale one is 409.",
            "schema": {"type": "string", "pattern": r'^(\*|(W/)?"?[0-9]{1,9}"?)$'},
        },
    )
    spec.components.parameter(
        "IdempotencyKey",
        "header",
        {
            "name": IDEMPOTENCY_HEADER,
            "required": False,
            "description": "Retry key: a retry with the same key is answered with the first"
            " result and not applied again (else a 400 if malformed)",
            "schema": {
                "type": "string",
                "minLength": 1,
                "maxLength": MAX_IDEMPOTENCY_KEY_CHARS,
                "pattern": r"^[\x20-\x7e]+$",
            },
        },
    )
    spec.components.header(
        "RequestId",
        {"description": "The request's correlation id", "required": True, "schema": request_id},
    )
    spec.components.header(
        "ETag",
        {
            "description": 'The entity\'s version, `"<n>"`: send it back as If-Match',
            "schema": {"type": "string"},
        },
    )
    spec.components.header(
        "RetryAfter",
        {
            "description": "Seconds to wait before retrying",
            "required": True,
            "schema": {"type": "integer", "minimum": 1},
        },
    )


def _url_format(converter: Any, field: marshmallow.fields.Field, **kwargs: Any) -> dict[str, Any]:
    """apispec maps `validate.URL` to nothing: declare the format and the schemes checked."""
    for validator in field.validators:
        if isinstance(validator, marshmallow.validate.URL):
            schemes = sorted(validator.schemes or ())
            pattern = {"pattern": f"^({'|'.join(schemes)})://"} if schemes else {}
            return {"format": "uri", **pattern}
    return {}


def build_spec(routes: list[Route]) -> dict[str, Any]:
    plugin = MarshmallowPlugin()
    spec = APISpec(
        title="Collab API",
        version="1.0.0",
        openapi_version="3.0.3",
        plugins=[plugin],
        info={"description": "Real-time collaboration backend. Errors: DESIGN.md §6 body."},
    )
    assert plugin.converter is not None  # set by APISpec when it initialises the plugin
    plugin.converter.add_attribute_function(_url_format)
    _components(spec)
    for route in routes:
        declared = getattr(route.handler, "openapi", None)
        if not declared:
            continue
        for op in declared.values():
            for name, schema in op.get("frames", {}).items():
                spec.components.schema(name, schema=schema)
        operations = {method: _operation(route, method, op) for method, op in declared.items()}
        spec.path(path=route.template, operations=operations)
    return spec.to_dict()
