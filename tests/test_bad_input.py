"""Text the database or the parser cannot hold (issue 17 item 5, RELIABILITY S22): a NUL byte, a
lone surrogate, JSON nested 100k deep, a 5,000-digit integer, NaN/Infinity — in any body field,
query or path parameter — is a 400 `validation_error` naming the field, stores nothing and logs
no traceback. The generic tests walk every schema the routes declare, so a new endpoint is
covered the day it is added."""

from __future__ import annotations

import json
import logging
import uuid

import marshmallow
import pytest

from handlers.input_guard import MAX_JSON_DEPTH
from server.app import all_routes
from tests.test_cors import concrete_path

NUL = '"a\\u0000b"'
SURROGATE = '"a\\ud800b"'
HUGE_INT = "9" * 5000
DEEP = "[" * 100_000 + "]" * 100_000
BAD_VALUES = {
    "nul": NUL,
    "surrogate": SURROGATE,
    "huge_int": HUGE_INT,
    "int_over_64_bits": str(2**64),
    "float_overflow": "1e400",
    "nan": "NaN",
    "infinity": "-Infinity",
    "deep": DEEP,
}


def body_with(field: str, raw_value: str) -> bytes:
    return ("{" + json.dumps(field) + ": " + raw_value + "}").encode()


def assert_refused(response, field: str) -> None:  # type: ignore[no-untyped-def]
    assert response.status == 400, (field, response.status, response.body)
    assert response.error_code == "validation_error", response.body
    assert field in response.body["error"]["fields"], (field, response.body)


def assert_no_traceback(caplog: pytest.LogCaptureFixture) -> None:
    bad = [r for r in caplog.records if r.exc_info or r.levelno >= logging.ERROR]
    assert not bad, [r.getMessage() for r in bad[:3]]


def body_operations() -> list[tuple[str, str, type[marshmallow.Schema]]]:
    """(method, template, schema) for every documented operation that takes a JSON body."""
    found = []
    for r in all_routes():
        for method, spec in getattr(r.handler, "openapi", {}).items():
            if spec.get("body") is not None and spec["body"]().fields:
                found.append((method.upper(), r.template, spec["body"]))
    return found


def query_operations() -> list[tuple[str, str, type[marshmallow.Schema]]]:
    found = []
    for r in all_routes():
        if r.template.startswith("/ws/"):
            continue
        for method, spec in getattr(r.handler, "openapi", {}).items():
            if spec.get("query") is not None:
                found.append((method.upper(), r.template, spec["query"]))
    return found


@pytest.mark.parametrize("kind", sorted(BAD_VALUES))
async def test_unauthenticated_login_email(api, caplog, kind) -> None:
    caplog.set_level(logging.INFO)
    response = await api.post(
        "/api/v1/auth/login/", raw=body_with("email", BAD_VALUES[kind])[:-1] + b', "password": "x"}'
    )
    assert_refused(response, "email")
    assert_no_traceback(caplog)


@pytest.mark.parametrize("kind", ["nul", "surrogate"])
async def test_register_display_name_stores_nothing(api, caplog, kind) -> None:
    caplog.set_level(logging.INFO)
    email = f"bad-{uuid.uuid4().hex[:8]}@example.com"
    valid = json.dumps({"email": email, "password": "correct horse battery"})
    raw = valid[:-1].encode() + b', "display_name": ' + BAD_VALUES[kind].encode() + b"}"
    assert_refused(await api.post("/api/v1/auth/register/", raw=raw), "display_name")
    assert_no_traceback(caplog)
    again = await api.post(
        "/api/v1/auth/register/",
        {"email": email, "password": "correct horse battery", "display_name": "Fine"},
    )
    assert again.status == 201, again.body  # the refused attempt left no account behind


async def test_the_field_is_named_inside_nested_values(api, make_user) -> None:
    user = await make_user()
    raw = b'{"title": "ok", "x": {"y": [1, "\\u0000"]}}'
    response = await api.post("/api/v1/workspaces/", raw=raw, token=user.access_token)
    assert_refused(response, "x")
    assert response.body["error"]["fields"]["x"] == {"y": {"1": ["contains a NUL character"]}}
    deep_but_parseable = "[" * (MAX_JSON_DEPTH + 5) + "]" * (MAX_JSON_DEPTH + 5)
    response = await api.post(
        "/api/v1/workspaces/", raw=body_with("name", deep_but_parseable), token=user.access_token
    )
    assert_refused(response, "name")
    key = await api.post("/api/v1/workspaces/", raw=b'{"a\\u0000": 1}', token=user.access_token)
    assert key.status == 400 and "a\\x00" in key.body["error"]["fields"]


async def test_bad_utf8_body_is_400(api) -> None:
    response = await api.post("/api/v1/auth/login/", raw=b'{"email": "\xed\xa0\x80"}')
    assert_refused(response, "_body")


@pytest.mark.parametrize("kind", sorted(BAD_VALUES))
async def test_every_body_schema_refuses_at_the_boundary(api, make_user, caplog, kind) -> None:
    """Every field of every body schema, on every operation that takes one, with a valid token
    and well-formed path ids: the bad value is refused before the handler uses it."""
    caplog.set_level(logging.INFO)
    user = await make_user()
    operations = body_operations()
    assert len(operations) > 25
    for method, template, schema in operations:
        for field in schema().load_fields:
            route = next(r for r in all_routes() if r.template == template)
            response = await api.request(
                method,
                concrete_path(route),
                raw=body_with(field, BAD_VALUES[kind]),
                token=user.access_token,
            )
            assert_refused(response, field)
    assert_no_traceback(caplog)


@pytest.mark.parametrize("encoded", ["a%00b", "%ED%A0%80", "%FF"])
async def test_every_query_schema_refuses_at_the_boundary(api, make_user, caplog, encoded) -> None:
    caplog.set_level(logging.INFO)
    user = await make_user()
    operations = query_operations()
    assert len(operations) > 5
    for method, template, schema in operations:
        route = next(r for r in all_routes() if r.template == template)
        for field in schema().load_fields:
            response = await api.request(
                method, f"{concrete_path(route)}?{field}={encoded}", token=user.access_token
            )
            assert_refused(response, field)
    assert_no_traceback(caplog)


async def test_every_path_parameter_refuses_at_the_boundary(api, make_user, caplog) -> None:
    caplog.set_level(logging.INFO)
    user = await make_user()
    for r in all_routes():
        for param in r.params:
            path = r.template  # fresh UUIDs, and the bad text in `param`
            for name in r.params:
                bad = "a%00b" if name == param else str(uuid.uuid4())
                path = path.replace("{" + name + "}", bad)
            response = await api.get(path, token=user.access_token)
            assert_refused(response, param)
    assert_no_traceback(caplog)
