"""HTTP conventions shared by every endpoint: JSON errors, request ids, CORS, ops endpoints."""

from __future__ import annotations

import dataclasses

import pytest
import tornado.web

from server.app import all_routes, make_app


async def test_unknown_path_is_json_404(api):
    response = await api.get("/no/such/thing")
    assert response.status == 404
    assert response.error_code == "not_found"
    assert response.headers["Content-Type"].startswith("application/json")


async def test_wrong_method_is_json_405(api):
    response = await api.request("DELETE", "/api/v1/auth/login/")
    assert response.status == 405
    assert response.error_code == "method_not_allowed"


async def test_trailing_slash_is_optional(api):
    with_slash = await api.post("/api/v1/auth/login/", {"email": "a@b.c", "password": "x"})
    without = await api.post("/api/v1/auth/login", {"email": "a@b.c", "password": "x"})
    assert with_slash.status == without.status == 401


async def test_wrong_content_type_is_400(api):
    response = await api.post(
        "/api/v1/auth/login/", raw=b"email=a", headers={"Content-Type": "text/plain"}
    )
    assert response.status == 400
    assert "Content-Type" in response.body["error"]["message"]


async def test_request_id_is_echoed_or_generated(api):
    echoed = await api.get("/healthz", headers={"X-Request-Id": "abc-123"})
    assert echoed.headers["X-Request-Id"] == "abc-123"
    generated = await api.get("/healthz")
    assert len(generated.headers["X-Request-Id"]) == 32


async def test_healthz_readyz_metrics(api):
    assert (await api.get("/healthz")).body["status"] == "ok"
    ready = await api.get("/readyz")
    assert ready.status == 200
    assert ready.body["checks"] == {"postgres": True, "nats": True, "redis": True}
    await api.get("/healthz")
    metrics = await api.get("/metrics")
    assert metrics.status == 200
    assert 'collab_http_requests_total{method="GET",route="/healthz",status="200"}' in metrics.body


async def test_readyz_reports_redis_down_without_failing(api, ctx):
    """Redis is a cache: its outage is reported ("degraded") but the node stays in rotation."""
    original = ctx.cache.client
    ctx.cache.client = type(original).from_url(
        "redis://127.0.0.1:1/0", socket_timeout=0.2, socket_connect_timeout=0.2
    )
    try:
        ready = await api.get("/readyz")
        assert ready.status == 200
        assert ready.body["status"] == "degraded"
        assert ready.body["checks"] == {"postgres": True, "nats": True, "redis": False}
    finally:
        await ctx.cache.client.aclose()
        ctx.cache.client = original


async def test_readyz_is_503_while_draining(api, ctx):
    ctx.draining = True
    try:
        ready = await api.get("/readyz")
    finally:
        ctx.draining = False
    assert ready.status == 503
    assert ready.body["status"] == "unavailable"


@pytest.fixture
def app(ctx) -> tornado.web.Application:
    settings = dataclasses.replace(ctx.settings, cors_origins=("https://app.example",))
    object.__setattr__(ctx, "settings", settings)
    return make_app(ctx)


async def test_cors_allows_only_configured_origins(api):
    allowed = await api.request(
        "OPTIONS", "/api/v1/auth/login/", headers={"Origin": "https://app.example"}
    )
    assert allowed.status == 204
    assert allowed.headers["Access-Control-Allow-Origin"] == "https://app.example"
    denied = await api.request(
        "OPTIONS", "/api/v1/auth/login/", headers={"Origin": "https://evil.example"}
    )
    assert "Access-Control-Allow-Origin" not in denied.headers


async def test_openapi_documents_every_route_and_method(api):
    spec = (await api.get("/api/v1/openapi.json")).body
    assert spec["openapi"].startswith("3.")
    for route in all_routes():
        declared = getattr(route.handler, "openapi", None)
        if getattr(route.handler, "openapi_exempt", False):
            continue
        assert declared, f"{route.handler.__name__} declares no OpenAPI operations"
        methods = {
            m.lower()
            for m in ("GET", "POST", "PUT", "PATCH", "DELETE")
            if m.lower() in vars(route.handler)
            or any(
                m.lower() in vars(base)
                for base in route.handler.__mro__[1:-1]
                if base.__module__.startswith("handlers.") and base.__name__ != "BaseHandler"
            )
        }
        assert methods <= set(declared), (route.template, methods - set(declared))
        assert route.template in spec["paths"], route.template
    error_schema = spec["components"]["schemas"]["Error"]
    assert "error" in error_schema["properties"]


async def test_access_log_redacts_tokens(api, caplog):
    import logging

    caplog.set_level(logging.INFO)
    await api.get("/healthz?token=supersecretvalue&x=1")
    text = caplog.text
    assert "supersecretvalue" not in text
    assert "token=[REDACTED]" in text
