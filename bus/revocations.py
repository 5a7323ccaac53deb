"""Cross-node revocation signals on core NATS (`collab.internal.revocation`).

When a session is revoked (logout, password change, refresh-token theft) or a permission changes
(role change, removal, grant revoked), every node must act on its open WebSockets within a second.
Core NATS is enough: the durable truth is in Postgres, and a node that misses a signal during a NATS
outage re-checks permissions on its connections when NATS comes back.
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable
from dataclasses import asdict, dataclass, field
from typing import Literal

import structlog
from nats.aio.msg import Msg

from bus.connection import NatsConnection

log = structlog.get_logger(__name__)

REVOCATION_SUBJECT = "collab.internal.revocation"
RevocationKind = Literal["session", "permission"]


@dataclass(frozen=True)
class Revocation:
    """`session`: tokens of `user_id` (all, or only `family_ids`) are no longer valid.
    `permission`: `user_id`'s access to `resource_type`/`resource_id` changed (None id = all of the
    user's access in a workspace, `workspace_id` set): re-check before the next message.
    `user_id == "*"` (`services.permissions_cache.ANY_USER`): everybody's access to that resource
    (or, with no resource, to the whole workspace) changed, e.g. a private flag or a deletion."""

    kind: RevocationKind
    user_id: str
    family_ids: list[str] = field(default_factory=list)
    resource_type: str | None = None
    resource_id: str | None = None
    workspace_id: str | None = None

    def to_json(self) -> bytes:
        return json.dumps(asdict(self)).encode()

    @classmethod
    def from_json(cls, data: bytes) -> Revocation:
        raw = json.loads(data)
        return cls(
            kind=raw["kind"],
            user_id=raw["user_id"],
            family_ids=list(raw.get("family_ids") or []),
            resource_type=raw.get("resource_type"),
            resource_id=raw.get("resource_id"),
            workspace_id=raw.get("workspace_id"),
        )


async def publish_revocation(nats: NatsConnection, revocation: Revocation) -> None:
    """Best effort by design (see module docstring); failures are logged, not raised."""
    try:
        await nats.nc.publish(REVOCATION_SUBJECT, revocation.to_json())
        await nats.nc.flush(timeout=1)
    except Exception as err:
        log.error("revocation.publish_failed", error=repr(err), kind=revocation.kind)


async def subscribe_revocations(
    nats: NatsConnection, handler: Callable[[Revocation], Awaitable[None]]
) -> None:
    async def on_msg(msg: Msg) -> None:
        try:
            revocation = Revocation.from_json(msg.data)
        except (ValueError, KeyError, TypeError) as err:
            log.warning("revocation.malformed", error=repr(err))
            return
        await handler(revocation)

    await nats.nc.subscribe(REVOCATION_SUBJECT, cb=on_msg)
