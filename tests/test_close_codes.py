"""One close-code vocabulary (issue 9 item 2): the `CloseCode` enum, the socket error funnel
(`live.hub.close_for`) and human close reasons that fit a close frame."""

from __future__ import annotations

import ast
import re
import uuid
from pathlib import Path

import pytest
import tornado.websocket

import core.errors
from core.errors import AppError, CloseCode, NotFound, ValidationFailed
from live.hub import CLOSE_REASON_MAX_BYTES, close_for, close_reason

ROOT = Path(__file__).resolve().parent.parent
PACKAGES = ("core", "models", "bus", "services", "live", "handlers", "server", "ops")


def all_subclasses(cls: type) -> set[type]:
    found = set()
    for sub in cls.__subclasses__():
        found |= {sub} | all_subclasses(sub)
    return found


def test_every_domain_error_maps_to_a_close_code() -> None:
    import server.app  # noqa: F401  (imports every module that defines an AppError)

    for error in {AppError} | all_subclasses(AppError):
        assert isinstance(error.ws_close_code, CloseCode), error


def test_every_close_code_has_a_human_reason_that_fits() -> None:
    for code in CloseCode:
        assert code.reason and not re.search(r"[{}\[\]]", code.reason), code
        assert len(code.reason.encode()) <= CLOSE_REASON_MAX_BYTES
        assert 1000 <= code <= 4999


def test_the_funnel_maps_domain_errors_and_hides_our_bugs() -> None:
    assert close_for(NotFound("no such board")) == (CloseCode.NOT_FOUND, "no such board")
    assert close_for(KeyError("secret detail")) == (CloseCode.INTERNAL_ERROR, "internal error")
    long = close_for(ValidationFailed("é" * 200))[1]
    assert len(long.encode()) <= CLOSE_REASON_MAX_BYTES == 123
    assert long == "é" * 61  # cut on a character boundary, never half a UTF-8 sequence
    assert close_reason("short") == "short"


def close_calls_with_literal_codes(tree: ast.AST) -> list[int]:
    lines = []
    for node in ast.walk(tree):
        if (
            isinstance(node, ast.Call)
            and isinstance(node.func, ast.Attribute)
            and node.func.attr == "close"
            and node.args
            and isinstance(node.args[0], ast.Constant)
            and isinstance(node.args[0].value, int)
        ):
            lines.append(node.lineno)
    return lines


def test_no_literal_close_codes_outside_the_enum() -> None:
    """Close codes are `CloseCode` members everywhere: no `.close(4403, ...)`, no second table."""
    offenders = []
    for package in PACKAGES:
        for path in (ROOT / package).rglob("*.py"):
            text = path.read_text()
            tree = ast.parse(text)
            offenders += [f"{path}:{line}" for line in close_calls_with_literal_codes(tree)]
            offenders += [
                f"{path}: {name}"
                for name in re.findall(r"^\s*(\w*CLOSE\w*)\s*=\s*[14]\d{3}\s*(?:#.*)?$", text, re.M)
            ]
    assert offenders == []


def test_readme_close_code_table_uses_the_enum() -> None:
    readme = (ROOT / "README.md").read_text()
    table = readme.split("### Close codes", 1)[1].split("\n\n", 2)[1]
    documented = {int(code) for code in re.findall(r"^\| (\d{4}) \|", table, re.M)}
    assert documented, "no close-code table in the README"
    assert documented <= {int(code) for code in CloseCode}
    assert "4408" not in table  # the board socket's slow reader is 1008 like the document's


@pytest.mark.parametrize(
    "path",
    [
        "/ws/documents/{id}/?format=json&since=abc",
        "/ws/boards/{id}/?since=-1",
        "/ws/boards/{id}/?since=" + str(2**63),
    ],
)
async def test_refused_query_closes_with_a_human_reason(ws_port: int, path: str) -> None:
    """Issue 17 item 9: the reason names the field in words, not a Python dict repr."""
    url = f"ws://127.0.0.1:{ws_port}" + path.format(id=uuid.uuid4())
    conn = await tornado.websocket.websocket_connect(url)
    while await conn.read_message() is not None:
        pass
    assert conn.close_code == CloseCode.BAD_REQUEST
    reason = conn.close_reason or ""
    assert reason.startswith("invalid query: since: "), reason
    assert not re.search(r"[{}\[\]']", reason), reason


def test_enum_is_the_one_in_core() -> None:
    assert core.errors.CloseCode is CloseCode
