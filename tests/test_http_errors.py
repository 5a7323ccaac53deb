"""Refusals that Tornado would answer in plain text get the JSON error body (issue 17 item 9):
405 with `Allow` on every route, a non-upgrade GET on a WebSocket route, a refused Origin."""

from __future__ import annotations

import uuid

import tornado.httpclient
import tornado.websocket

from handlers.base import implemented_methods
from handlers.ws_auth import AuthenticatedSocketHandler
from server.app import all_routes
from tests.test_cors import concrete_path

WS_ROUTES = [r for r in all_routes() if issubclass(r.handler, AuthenticatedSocketHandler)]
UPGRADE = {
    "Upgrade": "websocket",
    "Connection": "Upgrade",
    "Sec-WebSocket-Key": "dGhlIHNhbXBsZSBub25jZQ==",
    "Sec-WebSocket-Version": "13",
}


def assert_json_error(response, status: int, code: str) -> None:  # type: ignore[no-untyped-def]
    assert response.status == status, (response.status, response.body)
    assert response.headers["Content-Type"].startswith("application/json")
    assert response.error_code == code, response.body
    assert response.body["error"]["message"]


async def test_every_unimplemented_method_is_a_json_405_with_allow(api) -> None:
    checked = 0
    for r in all_routes():
        implemented = implemented_methods(r.handler)
        for method in ("GET", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"):
            if method in implemented:
                continue
            response = await api.request(method, concrete_path(r))
            assert_json_error(response, 405, "method_not_allowed")
            assert response.headers["Allow"].split(", ") == implemented, r.template
            checked += 1
    assert checked > 100  # most routes implement one or two of the six


async def test_methods_tornado_does_not_know_are_405_with_allow(api) -> None:
    response = await api.request("PROPFIND", "/api/v1/auth/login/")
    assert_json_error(response, 405, "method_not_allowed")
    assert response.headers["Allow"] == "POST, OPTIONS"


async def test_plain_get_on_a_websocket_route_is_a_json_426(api) -> None:
    assert {r.template for r in WS_ROUTES} >= {"/ws/documents/{doc_id}/", "/ws/boards/{board_id}/"}
    for r in WS_ROUTES:
        response = await api.get(concrete_path(r))
        assert_json_error(response, 426, "upgrade_required")
        assert response.headers["Upgrade"] == "websocket"
        stripped = await api.get(concrete_path(r), headers={"Upgrade": "websocket"})
        assert_json_error(stripped, 426, "upgrade_required")  # a proxy dropped `Connection`


async def test_refused_origin_is_a_json_403_before_auth(api) -> None:
    for r in WS_ROUTES:
        response = await api.get(
            concrete_path(r), headers={**UPGRADE, "Origin": "https://evil.example"}
        )
        assert_json_error(response, 403, "origin_not_allowed")
        assert "evil.example" in response.body["error"]["message"]


async def test_same_host_origin_still_upgrades(http_server_client, ws_port) -> None:
    """The early Origin check keeps Tornado's rule: the page's own host is always allowed."""
    url = f"ws://127.0.0.1:{ws_port}/ws/documents/{uuid.uuid4()}?token=x"
    request = tornado.httpclient.HTTPRequest(url, headers={"Origin": f"http://127.0.0.1:{ws_port}"})
    conn = await tornado.websocket.websocket_connect(request)
    message = await conn.read_message()
    assert message is None and conn.close_code == 4401  # upgraded, then refused: bad token
