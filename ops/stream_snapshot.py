"""JetStream's own stream snapshot and restore, over the server's API subjects.

nats-py has no helper for these, so this speaks the protocol that nats-server implements
(`jsStreamSnapshotRequest`/`streamSnapshot` and `jsStreamRestoreRequest` in
server/jetstream_api.go) and the `nats stream backup/restore` CLI uses:

Snapshot: subscribe to an inbox, then request `$JS.API.STREAM.SNAPSHOT.<stream>` with
`{"deliver_subject": inbox, "chunk_size": N, "no_consumers": true}`; the reply carries the stream's
config and state. The server then sends the snapshot (an s2-compressed tar of the stream's store)
to the inbox in chunks. Each chunk has a reply subject: publishing to it acknowledges the chunk
(flow control — the server stops once 32 MiB are unacknowledged). An empty message without a
reply subject ends the stream of chunks.

Restore: request `$JS.API.STREAM.RESTORE.<stream>` with `{"config", "state"}` (the stream must not
exist); the reply names a `deliver_subject`. Send each chunk there as a request and wait for its
empty acknowledgement; then an empty request ends the upload, and its reply is the stream-create
response (stream info or an error) once the server has rebuilt the stream. The server gives up on
a restore that sees no chunk for 5 s, so the upload never pauses between chunks.

Consumers are left out (`no_consumers`): the nodes' consumers are ephemeral and rebuilt on start.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import nats.errors
from nats.aio.client import Client as NatsClient

API_PREFIX = "$JS.API"
# Well under NATS' 1 MiB max_payload; the server's default is 256 KiB.
CHUNK_BYTES = 128 * 1024
API_TIMEOUT_S = 10.0
# Between two chunks of a snapshot, and for one chunk's acknowledgement during a restore.
CHUNK_TIMEOUT_S = 30.0
# The final restore reply comes after the server has unpacked and loaded the whole stream.
RESTORE_FINISH_TIMEOUT_S = 300.0


class StreamSnapshotError(RuntimeError):
    """The server refused or broke off a snapshot or a restore (its message included)."""


@dataclass(frozen=True)
class StreamArchive:
    """One stream's snapshot file and what the manifest records about it."""

    name: str
    file: str
    bytes: int
    sha256: str
    config: dict[str, Any]
    state: dict[str, Any]


def _api_error(reply: dict[str, Any], what: str) -> None:
    error = reply.get("error")
    if error:
        raise StreamSnapshotError(f"{what}: {error.get('description', error)}")


async def _api(nc: NatsClient, subject: str, body: dict[str, Any], what: str) -> dict[str, Any]:
    try:
        msg = await nc.request(f"{API_PREFIX}.{subject}", json.dumps(body).encode(), API_TIMEOUT_S)
    except nats.errors.NoRespondersError as err:
        raise StreamSnapshotError(f"{what}: JetStream is not enabled or not reachable") from err
    reply: dict[str, Any] = json.loads(msg.data)
    _api_error(reply, what)
    return reply


async def snapshot_stream(nc: NatsClient, stream: str, directory: Path) -> StreamArchive:
    """Write `stream`'s snapshot to `<directory>/<stream>.snapshot`, checksummed."""
    inbox = nc.new_inbox()
    sub = await nc.subscribe(inbox)
    file = f"{stream}.snapshot"
    digest, size = hashlib.sha256(), 0
    try:
        request = {"deliver_subject": inbox, "chunk_size": CHUNK_BYTES, "no_consumers": True}
        reply = await _api(nc, f"STREAM.SNAPSHOT.{stream}", request, f"snapshot of {stream}")
        with (directory / file).open("wb") as out:
            while True:
                try:
                    msg = await sub.next_msg(timeout=CHUNK_TIMEOUT_S)
                except nats.errors.TimeoutError as err:
                    raise StreamSnapshotError(f"snapshot of {stream} stalled") from err
                if not msg.data:
                    _check_end_of_snapshot(msg, stream)
                    break
                out.write(msg.data)
                digest.update(msg.data)
                size += len(msg.data)
                if msg.reply:
                    await nc.publish(msg.reply, b"")
    finally:
        await sub.unsubscribe()
    return StreamArchive(stream, file, size, digest.hexdigest(), reply["config"], reply["state"])


def _check_end_of_snapshot(msg: Any, stream: str) -> None:
    """The last message is empty; newer servers put a status header on it when they failed."""
    status = (msg.headers or {}).get("Status") or (msg.headers or {}).get("Nats-Status")
    if status and not str(status).startswith("2"):
        description = (msg.headers or {}).get("Description", "")
        raise StreamSnapshotError(f"snapshot of {stream} failed: {status} {description}")


async def restore_stream(
    nc: NatsClient, archive: StreamArchive, directory: Path, config: dict[str, Any]
) -> dict[str, Any]:
    """Upload `archive` as a new stream with `config`; returns the server's stream state."""
    what = f"restore of {archive.name}"
    body = {"config": config, "state": archive.state}
    reply = await _api(nc, f"STREAM.RESTORE.{archive.name}", body, what)
    deliver = reply["deliver_subject"]
    with (directory / archive.file).open("rb") as source:
        while chunk := source.read(CHUNK_BYTES):
            ack = await nc.request(deliver, chunk, CHUNK_TIMEOUT_S)
            if ack.data:
                _chunk_refused(ack.data, what)
    done = await nc.request(deliver, b"", RESTORE_FINISH_TIMEOUT_S)
    final: dict[str, Any] = json.loads(done.data)
    _api_error(final, what)
    return dict(final.get("state") or {})


def _chunk_refused(data: bytes, what: str) -> None:
    """A chunk's reply is empty when accepted; else `-ERR …` or the final error response."""
    try:
        reply = json.loads(data)
    except ValueError:
        reply = None
    if isinstance(reply, dict):
        _api_error(reply, what)
    raise StreamSnapshotError(f"{what}: {data.decode(errors='replace')}")
