"""JetStream streams and subjects: the public NATS contract of DESIGN.md §3.

Streams are created or updated idempotently at node startup. `COLLAB_DOCS` holds every CRDT update
(the document log, purged behind snapshots); `COLLAB_EVENTS` holds JSON board, document (comments),
notification and activity events.
"""

from __future__ import annotations

from nats.js import JetStreamContext
from nats.js.api import DiscardPolicy, RetentionPolicy, StorageType, StreamConfig
from nats.js.errors import BadRequestError, NotFoundError

from server.settings import Settings

DOCS_STREAM = "COLLAB_DOCS"
# JSStreamNameExistErr: "stream name already in use with a different configuration".
STREAM_NAME_IN_USE_ERR_CODE = 10058
EVENTS_STREAM = "COLLAB_EVENTS"


def doc_update_subject(doc_id: str) -> str:
    return f"collab.doc.{doc_id}.update"


def doc_awareness_subject(doc_id: str) -> str:
    return f"collab.doc.{doc_id}.awareness"


def doc_event_subject(doc_id: str) -> str:
    return f"collab.doc.{doc_id}.event"


def board_event_subject(board_id: str) -> str:
    return f"collab.board.{board_id}.event"


def user_notification_subject(user_id: str) -> str:
    return f"collab.user.{user_id}.notification"


def workspace_activity_subject(workspace_id: str) -> str:
    return f"collab.workspace.{workspace_id}.activity"


def docs_stream_config(settings: Settings) -> StreamConfig:
    return StreamConfig(
        name=DOCS_STREAM,
        subjects=["collab.doc.*.update"],
        retention=RetentionPolicy.LIMITS,
        storage=StorageType.FILE,
        # discard=new: hitting a limit fails the publish loudly instead of silently deleting
        # updates that no snapshot covers yet (DESIGN.md §7).
        discard=DiscardPolicy.NEW,
        discard_new_per_subject=True,
        max_bytes=settings.docs_stream_max_bytes,
        max_msgs_per_subject=settings.docs_stream_max_msgs_per_subject,
        max_msg_size=settings.max_frame_bytes,
        duplicate_window=float(settings.duplicate_window_s),
        num_replicas=settings.stream_replicas,
        allow_direct=True,
    )


def events_stream_config(settings: Settings) -> StreamConfig:
    return StreamConfig(
        name=EVENTS_STREAM,
        subjects=[
            "collab.board.*.event",
            "collab.doc.*.event",
            "collab.user.*.notification",
            "collab.workspace.*.activity",
        ],
        retention=RetentionPolicy.LIMITS,
        storage=StorageType.FILE,
        discard=DiscardPolicy.OLD,
        max_age=float(settings.events_stream_max_age_s),
        duplicate_window=float(settings.duplicate_window_s),
        num_replicas=settings.stream_replicas,
        allow_direct=True,
    )


async def ensure_streams(js: JetStreamContext, settings: Settings) -> None:
    """Create the streams, or update them to the configured limits if they exist."""
    for name, config in (
        (DOCS_STREAM, docs_stream_config(settings)),
        (EVENTS_STREAM, events_stream_config(settings)),
    ):
        try:
            await js.stream_info(name)
        except NotFoundError:
            try:
                await js.add_stream(config)
                continue
            except BadRequestError as err:
                # Nodes of a fresh deployment start together: another one created it first.
                if err.err_code != STREAM_NAME_IN_USE_ERR_CODE:
                    raise
        await js.update_stream(config)
