"""The OpenAPI document is complete enough to generate an SDK from (issue 17 item 10): valid
OpenAPI 3, an operationId everywhere, the headers and bodies clients must handle described."""

from __future__ import annotations

from typing import Any

import pytest
from openapi_spec_validator import validate

from handlers.base import BaseHandler, implemented_methods
from server.app import all_routes
from server.openapi import build_spec

HTTP_METHODS = {"get", "post", "put", "patch", "delete"}


@pytest.fixture(scope="module")
def spec() -> dict[str, Any]:
    return build_spec(all_routes())


def operations(spec: dict[str, Any]) -> list[tuple[str, str, dict[str, Any]]]:
    return [
        (path, method, op)
        for path, item in spec["paths"].items()
        for method, op in item.items()
        if method in HTTP_METHODS
    ]


def resolve(spec: dict[str, Any], obj: dict[str, Any]) -> dict[str, Any]:
    while "$ref" in obj:
        node: Any = spec
        for part in obj["$ref"].removeprefix("#/").split("/"):
            node = node[part]
        obj = node
    return obj


def parameters(spec: dict[str, Any], op: dict[str, Any], where: str) -> dict[str, Any]:
    found = (resolve(spec, p) for p in op.get("parameters", []))
    return {p["name"]: p for p in found if p["in"] == where}


def test_the_document_is_valid_openapi_3(spec) -> None:
    validate(spec)


def test_every_operation_has_a_unique_operation_id(spec) -> None:
    ids = [op.get("operationId") for _, _, op in operations(spec)]
    assert all(ids), [(p, m) for p, m, op in operations(spec) if not op.get("operationId")]
    assert len(ids) == len(set(ids))


def test_every_implemented_method_is_documented(spec) -> None:
    for route in all_routes():
        if not issubclass(route.handler, BaseHandler):
            continue
        methods = {m.lower() for m in implemented_methods(route.handler)} & HTTP_METHODS
        assert methods == set(spec["paths"][route.template]), route.template


def test_path_ids_are_uuids(spec) -> None:
    for path, _method, op in operations(spec):
        for name, param in parameters(spec, op, "path").items():
            expected = "uuid" if name.endswith("_id") else None
            assert param["schema"].get("format") == expected, (path, name)


def test_versioned_writes_document_if_match_etag_and_the_409_body(spec) -> None:
    card = spec["paths"]["/api/v1/cards/{card_id}/"]
    patch = card["patch"]
    assert "If-Match" in parameters(spec, patch, "header")
    assert "ETag" in patch["responses"]["200"]["headers"]
    assert "ETag" in card["get"]["responses"]["200"]["headers"]
    either = patch["responses"]["409"]["content"]["application/json"]["schema"]["oneOf"]
    conflict = resolve(spec, either[1])
    assert set(conflict["required"]) == {"error", "current"}
    assert conflict["properties"]["current"]["required"] == ["version"]
    versioned = [
        (path, method)
        for path, method, op in operations(spec)
        if "If-Match" in parameters(spec, op, "header")
    ]
    assert len(versioned) >= 13  # board, list and card writes


def test_retry_after_request_id_and_idempotency_key_are_documented(spec) -> None:
    for path, method, op in operations(spec):
        if "x-websocket" in op:
            continue
        limited = resolve(spec, op["responses"]["429"]["headers"]["Retry-After"])
        assert limited["required"] is True, (path, method)
        for status, response in op["responses"].items():
            assert "X-Request-Id" in response.get("headers", {}), (path, method, status)
    restore = spec["paths"]["/api/v1/documents/{doc_id}/versions/{version_id}/restore/"]["post"]
    key = parameters(spec, restore, "header")["Idempotency-Key"]
    assert key["schema"]["maxLength"] == 128
    assert {"200", "201"} <= set(restore["responses"])  # a retry answers 200, applied: false


def test_bodies_are_required_only_when_the_server_requires_them(spec) -> None:
    ops = {(path, method): op for path, method, op in operations(spec)}
    for (path, method), op in ops.items():
        if method == "delete" and "requestBody" in op:
            assert op["requestBody"]["required"] is False, path
    archive = ops[("/api/v1/cards/{card_id}/archive/", "post")]
    assert archive["requestBody"]["required"] is False  # `{}`, empty or only `version`
    assert ops[("/api/v1/auth/login/", "post")]["requestBody"]["required"] is True


def test_url_and_email_formats_are_declared(spec) -> None:
    schemas = spec["components"]["schemas"]
    assert schemas["CardCreate"]["properties"]["cover_url"]["format"] == "uri"
    assert schemas["CardCreate"]["properties"]["cover_url"]["pattern"] == "^(https)://"
    assert schemas["BoardUpdate"]["properties"]["background"]["format"] == "uri"
    assert schemas["Register"]["properties"]["email"]["format"] == "email"


def test_websocket_entries_describe_the_real_handshake(spec) -> None:
    for path in ("/ws/documents/{doc_id}/", "/ws/boards/{board_id}/"):
        op = spec["paths"][path]["get"]
        headers = parameters(spec, op, "header")
        assert headers["Upgrade"]["required"] and headers["Upgrade"]["schema"]["enum"] == [
            "websocket"
        ]
        assert headers["Sec-WebSocket-Protocol"]["required"] is False
        assert {"101", "403", "426"} <= set(op["responses"])
        assert op["x-websocket"]["close_codes"]["4401"] == "invalid or expired token"
        assert "4401" in op["description"] and "subprotocol" in op["description"]
