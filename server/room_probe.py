"""Answers `collab verify`: the fingerprint of a document's live room on this node.

Each node subscribes to `_collab.ops.room.<doc_id>.fingerprint` (core NATS, app account only; not
part of the public subject contract). A node holding the document's room replies with the
fingerprint of exactly what the room serves (`live/fingerprint.py`) at its `last_applied_seq`; a
node without the room stays silent, so `verify` collects the replies of every node that has one.
The room's state is read synchronously (no await between the seq and the state), so the pair is
consistent even while edits flow.
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING

import structlog
from nats.aio.msg import Msg

from live.fingerprint import fingerprint

if TYPE_CHECKING:
    from nats.aio.subscription import Subscription

    from live.rooms import RoomManager
    from services.deps import Deps

log = structlog.get_logger(__name__)

PROBE_SUBJECTS = "_collab.ops.room.*.fingerprint"


def probe_subject(doc_id: str) -> str:
    return f"_collab.ops.room.{doc_id}.fingerprint"


class RoomProbe:
    """Component: started after the rooms, stopped before them."""

    def __init__(self, ctx: Deps, rooms: RoomManager) -> None:
        self.ctx = ctx
        self.rooms = rooms
        self._sub: Subscription | None = None

    async def start(self) -> None:
        self._sub = await self.ctx.nats.nc.subscribe(PROBE_SUBJECTS, cb=self._answer)

    async def stop(self) -> None:
        if self._sub is not None:
            await self._sub.unsubscribe()
            self._sub = None

    async def _answer(self, msg: Msg) -> None:
        doc_id = msg.subject.split(".")[3]
        room = self.rooms.rooms.get(doc_id)
        if room is None or room.stopped or not msg.reply:
            return
        try:
            found = fingerprint(room.full_state(), room.last_applied_seq)
        except Exception as err:  # an unreadable room state is itself the finding
            reply = {"node": self.ctx.node_id, "error": repr(err)}
        else:
            reply = {"node": self.ctx.node_id, **found.to_dict()}
        await self.ctx.nats.nc.publish(msg.reply, json.dumps(reply).encode())
