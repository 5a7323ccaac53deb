"""Document versions: list, name the current state, read one, restore one.

A version is a full CRDT state at a stream sequence: `auto` (kept by the snapshot job on its
retention policy), `named` (a user saved it), `restore` (the state a restore produced).

Restore never replaces the document. It computes a diff on the live history that turns the current
content into the version's (services/doc_content.py: a fresh random client id, edits in place) and
publishes it through the document log like any editor's update: every room on every node applies
it, every connected client converges to the old content, and the history (including the undone
edits) is kept. A retried restore (same `Idempotency-Key`) is not applied twice: JetStream's
`Nats-Msg-Id` window catches a quick retry, the durable `document_operations` map a late one.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import structlog

from core.errors import Conflict, NotFound
from core.yjs import EMPTY_UPDATE, merge
from models.repo import documents as repo
from services import activity, doc_writes, policy
from services.block_diff import diff_states
from services.doc_content import RootTypeConflict, make_restore_update, to_json
from services.doc_state import load_state
from services.document_entities import StoredVersion, Version, VersionDetail, VersionDiff
from services.documents import fragment_of, refresh_projection_now
from services.policy import Action, Resource
from services.unit_of_work import unit_of_work
from services.version_authors import version_authors

if TYPE_CHECKING:
    from services.deps import Deps

log = structlog.get_logger(__name__)


async def list_versions(
    ctx: Deps, actor_id: str, doc_id: str, limit: int, offset: int
) -> list[Version]:
    await policy.require(ctx, actor_id, Action.DOCUMENT_VIEW, Resource.document(doc_id))
    return [
        Version.from_row(row) for row in await repo.list_versions(ctx.db, doc_id, limit, offset)
    ]


async def create_named_version(ctx: Deps, actor_id: str, doc_id: str, name: str) -> Version:
    """Save the current merged state (snapshot + log) under a name."""
    access = await policy.require(ctx, actor_id, Action.DOCUMENT_EDIT, Resource.document(doc_id))
    state = await load_state(ctx.db, ctx.doc_log, doc_id)
    async with unit_of_work(ctx) as uow:
        conn = uow.conn
        row = await repo.insert_version(
            conn,
            doc_id,
            seq=state.seq,
            state=state.update,
            kind="named",
            name=name,
            created_by=actor_id,
        )
        assert row is not None
        version = Version.from_row(row)
        await uow.emit(
            activity.event(
                access.workspace_id,
                "document.version_created",
                actor_id,
                {
                    "document_id": doc_id,
                    "version_id": version.id,
                    "seq": state.seq,
                    "name": name,
                },
            )
        )
    return version


async def _version_or_404(ctx: Deps, doc_id: str, version_id: str) -> StoredVersion:
    row = await repo.get_version(ctx.db, doc_id, version_id)
    if row is None:
        raise NotFound("version not found")
    return StoredVersion.from_row(row)


async def get_version(ctx: Deps, actor_id: str, doc_id: str, version_id: str) -> VersionDetail:
    await policy.require(ctx, actor_id, Action.DOCUMENT_VIEW, Resource.document(doc_id))
    stored = await _version_or_404(ctx, doc_id, version_id)
    fragment = fragment_of(ctx, {"fragment": await repo.get_fragment(ctx.db, doc_id)})
    previous = await repo.previous_version_seq(ctx.db, doc_id, stored.seq)
    people = await version_authors(ctx, doc_id, stored.seq, previous)
    header = Version.from_row(vars(stored))
    return VersionDetail(
        **vars(header),
        content=to_json(stored.state, fragment),
        authors=people.authors,
        edited_by=people.edited_by,
    )


async def diff_versions(
    ctx: Deps, actor_id: str, doc_id: str, from_id: str, to_id: str
) -> VersionDiff:
    """Blocks added / removed / moved / changed (with a text diff) from one version to another
    (services/block_diff.py); either order, any two versions of the document."""
    await policy.require(ctx, actor_id, Action.DOCUMENT_VIEW, Resource.document(doc_id))
    old = await _version_or_404(ctx, doc_id, from_id)
    new = await _version_or_404(ctx, doc_id, to_id)
    fragment = fragment_of(ctx, {"fragment": await repo.get_fragment(ctx.db, doc_id)})
    diff = diff_states(old.state, new.state, fragment)
    return VersionDiff(old, new, diff["fragment"], diff["blocks"], diff["roots"])


def _restore_name(version: Version) -> str:
    label = version.name or f"{version.kind} version at seq {version.seq}"
    return f"Restored from {label}"[:200]


def _restore_diff(current: bytes, version_state: bytes) -> bytes:
    try:
        return make_restore_update(current, version_state)
    except RootTypeConflict as err:
        raise Conflict(
            str(err), code="root_type_conflict", fields={"roots": {err.name: [str(err)]}}
        ) from err


async def restore_version(
    ctx: Deps, actor_id: str, doc_id: str, version_id: str, key: str
) -> tuple[Version | None, bool]:
    """Write the version's content into the live document as a new update.

    Returns (the 'restore' version recorded at the new seq, whether this call applied it);
    `key` identifies the client's attempt, so a retry gets the first result back. When the
    document already equals the version nothing is published or recorded: (None, False).
    A root whose type differs between the document and the version is a 409
    (`root_type_conflict`), with nothing written. Runs under the document's server-write lock
    (services/doc_writes.py): concurrent restores apply one after the other, each diffed from
    the state the previous one left.
    """
    access = await policy.require(ctx, actor_id, Action.DOCUMENT_EDIT, Resource.document(doc_id))
    version = await _version_or_404(ctx, doc_id, version_id)
    msg_id = f"restore:{version_id}:{key}"
    async with doc_writes.write_lock(ctx, doc_id) as uow:
        conn = uow.conn
        done_seq = await doc_writes.recorded_seq(conn, doc_id, msg_id)
        if done_seq is not None:
            recorded = await repo.get_restore_version(conn, doc_id, done_seq)
            if recorded is None:
                raise Conflict("restore recorded without its version, retry")
            return Version.from_row(recorded), False
        current = await doc_writes.current_state(ctx, doc_id, conn)
        diff = _restore_diff(current.update, version.state)
        if diff == EMPTY_UPDATE:
            log.info("version.restore_unchanged", doc_id=doc_id, version_id=version_id)
            return None, False
        seq = await doc_writes.publish_write(
            ctx, conn, doc_id, diff, msg_id=msg_id, kind="restore", user=actor_id
        )
        # The msg-id map and the 'restore' version commit together: one exists iff the other does.
        row = await repo.insert_version(
            conn,
            doc_id,
            seq=seq,
            state=merge([current.update, diff]),
            kind="restore",
            name=_restore_name(version),
            created_by=actor_id,
        )
        if row is None:
            raise Conflict("a restore version already exists at this sequence, retry")
        restored = Version.from_row(row)
        await uow.emit(
            activity.event(
                access.workspace_id,
                "document.restored",
                actor_id,
                {
                    "document_id": doc_id,
                    "version_id": version_id,
                    "restore_version_id": restored.id,
                    "seq": seq,
                },
            )
        )
    await refresh_projection_now(ctx, doc_id)
    log.info("version.restored", doc_id=doc_id, version_id=version_id, seq=seq)
    return restored, True
