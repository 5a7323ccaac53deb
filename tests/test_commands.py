"""Typed commands built from request bodies, and helpers that read a body without changing it."""

from __future__ import annotations

import uuid
from types import SimpleNamespace

import pytest

from core.errors import ValidationFailed
from handlers.boards import BoardApiHandler
from services.cards import CardMove, Placement
from services.profile import PasswordChange, ProfileChange


def test_expected_version_reads_the_body_without_changing_it() -> None:
    stand_in = SimpleNamespace(request=SimpleNamespace(headers={"If-Match": '"3"'}))
    body = {"name": "x", "version": 3}
    assert BoardApiHandler.expected_version(stand_in, body) == 3  # type: ignore[arg-type]
    assert body == {"name": "x", "version": 3}


def test_placement_takes_only_the_neighbours() -> None:
    after = uuid.uuid4()
    placement = Placement.of({"after_id": after, "list_id": uuid.uuid4(), "version": 2})
    assert placement == Placement(str(after), None)
    assert CardMove("l", placement).expected_version is None


def test_profile_change_from_a_body() -> None:
    assert ProfileChange.of({"display_name": "  Ada  "}) == ProfileChange("Ada", None)
    change = ProfileChange.of({"current_password": "a" * 12, "new_password": "b" * 12})
    assert change == ProfileChange(None, PasswordChange("a" * 12, "b" * 12))
    with pytest.raises(ValidationFailed):
        ProfileChange.of({})
    with pytest.raises(ValidationFailed) as err:
        ProfileChange.of({"new_password": "b" * 12})
    assert "current_password" in err.value.fields


async def test_signed_in_checks_the_caller_before_the_ids(api, make_user) -> None:
    """`@signed_in` heads every id-taking API method: 401 without a token (even for a bad id),
    then 404 naming the path argument that is not a UUID."""
    anonymous = await api.get("/api/v1/cards/not-a-uuid/")
    assert anonymous.status == 401
    user = await make_user()
    bad = await api.get("/api/v1/cards/not-a-uuid/", token=user.access_token)
    assert bad.status == 404
    assert bad.body["error"]["fields"] == {"card_id": ["not a UUID"]}
