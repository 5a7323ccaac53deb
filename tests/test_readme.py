"""The README stays true: every setting, every endpoint and the capability matrix are in it.

* every environment variable `server/settings.py` reads is in the README's Configuration section,
  and every `COLLAB_*` variable that section names is still read there;
* every route of `server.app.all_routes()` is an endpoint-table row `| METHOD | `template` |` for
  each method it serves (`WS` for WebSocket routes);
* the capability matrix between the markers is what `python -m ops.capability_table` prints.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from bus.jetstream import DOCS_STREAM, EVENTS_STREAM
from ops import capability_table
from server.app import all_routes

ROOT = Path(__file__).resolve().parent.parent
README = (ROOT / "README.md").read_text()
SETTINGS_SOURCE = (ROOT / "server" / "settings.py").read_text()
ENV_PATTERN = re.compile(r"\b(COLLAB_[A-Z0-9_]+|DATABASE_URL|NATS_URL|REDIS_URL)\b")
# Names in the Configuration section that are not environment variables (the stream names).
NOT_VARIABLES = {DOCS_STREAM, EVENTS_STREAM}


def section(title: str) -> str:
    """The README text from `## <title>` up to the next `## ` heading."""
    start = README.index(f"\n## {title}\n")
    end = README.find("\n## ", start + 1)
    return README[start : end if end != -1 else len(README)]


def settings_variables() -> set[str]:
    return set(ENV_PATTERN.findall(SETTINGS_SOURCE))


def test_settings_variables_are_found() -> None:
    variables = settings_variables()
    assert {"DATABASE_URL", "NATS_URL", "REDIS_URL", "COLLAB_JWT_SECRET"} <= variables
    assert len(variables) > 40


@pytest.mark.parametrize("name", sorted(settings_variables()))
def test_every_setting_is_documented(name: str) -> None:
    assert re.search(rf"`{name}`", section("Configuration")), (
        f"{name} is read in server/settings.py but missing from the README's Configuration table"
    )


def test_configuration_lists_no_stale_variables() -> None:
    documented = set(ENV_PATTERN.findall(section("Configuration"))) - NOT_VARIABLES
    stale = documented - settings_variables()
    assert not stale, f"the README documents variables settings.py no longer reads: {stale}"


def route_methods() -> list[tuple[str, str]]:
    """(method, template) for every route and every method its handler documents."""
    pairs = []
    for route in all_routes():
        declared = getattr(route.handler, "openapi", {})
        assert declared, f"{route.template}: handler declares no methods"
        if route.template.startswith("/ws/"):
            pairs.append(("WS", route.template))
            continue
        pairs.extend((method.upper(), route.template) for method in sorted(declared))
    return pairs


def table_rows() -> set[tuple[str, str]]:
    """(method, path) of every README table row shaped `| METHOD | `path` | ...`."""
    pattern = re.compile(r"^\|\s*([A-Z]+)\s*\|\s*`([^`]+)`\s*\|", re.MULTILINE)
    return set(pattern.findall(README))


@pytest.mark.parametrize("method,template", route_methods())
def test_every_endpoint_is_listed(method: str, template: str) -> None:
    assert (method, template) in table_rows(), (
        f"README has no endpoint row `| {method} | `{template}` |`"
    )


def test_every_route_template_appears() -> None:
    missing = [r.template for r in all_routes() if f"`{r.template}`" not in README]
    assert not missing, f"route templates missing from the README: {missing}"


def test_endpoint_rows_name_existing_routes() -> None:
    """No row documents an endpoint that does not exist (paths under /api/, /ws/ and ops)."""
    known = set(route_methods())
    documented = {
        (method, path)
        for method, path in table_rows()
        if path.startswith(("/api/", "/ws/")) or path in {"/healthz", "/readyz", "/metrics"}
    }
    unknown = documented - known
    assert not unknown, f"the README lists endpoints the app does not serve: {sorted(unknown)}"


def test_capability_matrix_is_the_generated_one() -> None:
    start, end = capability_table.START, capability_table.END
    documented = README[README.index(start) + len(start) : README.index(end)].strip()
    assert documented == capability_table.render().strip(), (
        "regenerate: python -m ops.capability_table --write README.md"
    )
