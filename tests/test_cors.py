"""CORS (issue 17 item 4): a browser app on an allowed origin can preflight and call every route.

The routes come from the app's own route table, so a new route is covered the day it is added.
"""

from __future__ import annotations

import dataclasses
import uuid

import pytest
import tornado.web

from handlers.base import BaseHandler, implemented_methods
from handlers.routing import Route
from handlers.ws_auth import AuthenticatedSocketHandler
from server.app import all_routes, make_app

ALLOWED = "https://app.example"
REQUESTED_HEADERS = ["authorization", "content-type", "if-match", "idempotency-key", "x-request-id"]


def concrete_path(route: Route) -> str:
    """The route's template with a fresh UUID for every path parameter."""
    path = route.template
    for name in route.params:
        path = path.replace("{" + name + "}", str(uuid.uuid4()))
    return path


def http_routes() -> list[Route]:
    return [r for r in all_routes() if issubclass(r.handler, BaseHandler)]


def header_list(value: str) -> set[str]:
    return {item.strip().lower() for item in value.split(",") if item.strip()}


@pytest.fixture
def app(ctx) -> tornado.web.Application:
    settings = dataclasses.replace(ctx.settings, cors_origins=(ALLOWED,))
    object.__setattr__(ctx, "settings", settings)
    return make_app(ctx)


def test_every_route_is_either_http_or_a_websocket() -> None:
    """Browsers do not preflight WebSocket handshakes (they check Origin instead, see
    test_http_errors); every other route must be a BaseHandler so it gets the preflight."""
    for r in all_routes():
        assert issubclass(r.handler, (BaseHandler, AuthenticatedSocketHandler)), r.template
    assert len(http_routes()) > 40


async def test_preflight_succeeds_on_every_route_from_an_allowed_origin(api) -> None:
    failures = []
    for r in http_routes():
        methods = [m for m in implemented_methods(r.handler) if m != "OPTIONS"]
        for method in methods:
            response = await api.request(
                "OPTIONS",
                concrete_path(r),
                headers={
                    "Origin": ALLOWED,
                    "Access-Control-Request-Method": method,
                    "Access-Control-Request-Headers": ", ".join(REQUESTED_HEADERS),
                },
            )
            h = response.headers
            ok = (
                response.status == 204
                and h.get("Access-Control-Allow-Origin") == ALLOWED
                and method in h.get("Access-Control-Allow-Methods", "").split(", ")
                and set(REQUESTED_HEADERS) <= header_list(h.get("Access-Control-Allow-Headers", ""))
                and {"etag", "retry-after", "x-request-id"}
                <= header_list(h.get("Access-Control-Expose-Headers", ""))
                and "Origin" in h.get("Vary", "")
            )
            if not ok:
                failures.append((r.template, method, response.status, dict(h)))
    assert not failures, failures[:3]


async def test_preflight_from_a_disallowed_origin_gets_no_grant(api) -> None:
    for r in http_routes():
        response = await api.request(
            "OPTIONS",
            concrete_path(r),
            headers={"Origin": "https://evil.example", "Access-Control-Request-Method": "GET"},
        )
        assert response.status == 204, (r.template, response.body)
        assert not any(name.lower().startswith("access-control-") for name in response.headers), (
            r.template
        )


async def test_error_responses_keep_the_cors_grant(api) -> None:
    """A 401 or a 404 must be readable by the browser app, not surface as a network error."""
    unauthorized = await api.get("/api/v1/auth/me/", headers={"Origin": ALLOWED})
    assert unauthorized.status == 401
    assert unauthorized.headers["Access-Control-Allow-Origin"] == ALLOWED
    assert "X-Request-Id" in unauthorized.headers
    no_route = await api.get("/api/v1/no-such-thing/", headers={"Origin": ALLOWED})
    assert no_route.status == 404
    assert no_route.headers["Access-Control-Allow-Origin"] == ALLOWED
    denied = await api.get("/api/v1/auth/me/", headers={"Origin": "https://evil.example"})
    assert "Access-Control-Allow-Origin" not in denied.headers
