"""Check documents end to end: `collab verify --doc ID | --all` (exit 2 on any mismatch).

For each document:
1. *rebuilt*: its latest Postgres snapshot ⊕ the JetStream log after it (the same load a joining
   room does) must be a readable Yjs state;
2. *live rooms*: every node that holds the document's room answers a probe
   (`server/room_probe.py`) with the fingerprint of what the room serves at its sequence; the
   snapshot ⊕ log up to that very sequence must have the same fingerprint (state vector and
   content). A room that the log has overtaken since is compared at its own sequence; a room still
   behind the snapshot cannot be rebuilt from the log any more and is reported as `skipped`;
3. *projection*: the `blocks` rows must be exactly `project_blocks` of the CRDT state at the
   projection's sequence (the projection may lag the log by design, never disagree with it).

Findings are listed per document; `--all` walks every non-deleted document and reports only the
failing ones unless `--verbose`. `collab reindex` rebuilds projections that verify flags.
"""

from __future__ import annotations

import argparse
import asyncio
import json
from dataclasses import asdict, dataclass, field
from typing import Any

import nats.errors
from nats.aio.client import Client as NatsClient

from bus.doc_log import LogEntry
from core.yjs import merge_skipping
from live.fingerprint import Fingerprint, fingerprint
from models.repo import doc_content as content_repo
from models.repo import doc_snapshots
from models.repo import documents as documents_repo
from ops._runtime import (
    OpsContext,
    add_common_arguments,
    add_doc_or_all,
    ops_context,
    require_document,
    run_command,
)
from ops.exit_codes import ExitCode
from server.room_probe import probe_subject
from server.settings import Settings
from services.doc_content import project_blocks

# How long to collect room probe answers: nodes answer in milliseconds; the wait is for the
# slowest of an unknown number of nodes.
DEFAULT_PROBE_WAIT_S = 0.5
LOAD_ATTEMPTS = 5
PAGE = 500
# `--all` checks this many documents at once, so the probe waits overlap: one at a time, an
# installation of thousands of documents waited thousands of half-seconds.
ALL_CONCURRENCY = 32


@dataclass
class Check:
    check: str  # "rebuilt" | "live_room" | "projection"
    ok: bool
    detail: str = ""
    node: str | None = None
    seq: int | None = None


@dataclass
class DocReport:
    doc_id: str
    seq: int = 0
    snapshot_seq: int = 0
    checks: list[Check] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return all(c.ok for c in self.checks)


@dataclass(frozen=True)
class Parts:
    """A consistent snapshot + log read, from which the state at any seq ≥ snapshot is built."""

    snapshot: doc_snapshots.Snapshot
    entries: list[LogEntry]

    @property
    def seq(self) -> int:
        return self.entries[-1].seq if self.entries else self.snapshot.seq

    def state_at(self, seq: int) -> bytes | None:
        if seq < self.snapshot.seq or seq > self.seq:
            return None
        # An entry pycrdt refuses (poison, S3) is skipped, as rooms and every reader skip it.
        updates = [e.update for e in self.entries if e.seq <= seq]
        return merge_skipping([self.snapshot.state, *updates], lambda _index, _err: None)


def configure_parser(parser: argparse.ArgumentParser) -> None:
    add_doc_or_all(parser)
    parser.add_argument("--wait", type=float, default=DEFAULT_PROBE_WAIT_S, help="probe seconds")
    parser.add_argument("--verbose", action="store_true", help="--all: list passing documents")
    add_common_arguments(parser)


async def load_parts(ctx: OpsContext, doc_id: str) -> Parts:
    """Snapshot then log, re-checked like a room load (a purge may race us)."""
    for _ in range(LOAD_ATTEMPTS):
        snapshot = await doc_snapshots.get_snapshot(ctx.db, doc_id)
        entries = await ctx.doc_log.read(doc_id, snapshot.seq)
        if await doc_snapshots.get_snapshot_seq(ctx.db, doc_id) == snapshot.seq:
            return Parts(snapshot, entries)
    raise RuntimeError(f"{doc_id}: snapshots kept moving during {LOAD_ATTEMPTS} loads")


async def probe_rooms(nc: NatsClient, doc_id: str, wait_s: float) -> list[dict[str, Any]]:
    inbox = nc.new_inbox()
    sub = await nc.subscribe(inbox)
    replies = []
    try:
        await nc.publish(probe_subject(doc_id), b"", reply=inbox)
        loop = asyncio.get_running_loop()
        deadline = loop.time() + wait_s
        while (left := deadline - loop.time()) > 0:
            try:
                msg = await sub.next_msg(timeout=left)
            except nats.errors.TimeoutError:
                break
            replies.append(json.loads(msg.data))
    finally:
        await sub.unsubscribe()
    return replies


def check_room(parts: Parts, reply: dict[str, Any]) -> Check:
    node = reply.get("node")
    if "error" in reply:
        return Check("live_room", False, f"room state unreadable: {reply['error']}", node)
    live = Fingerprint.from_dict(reply)
    state = parts.state_at(live.seq)
    if state is None:
        return Check("live_room", True, "skipped: room outside the loaded range", node, live.seq)
    if fingerprint(state, live.seq).same_state(live):
        return Check("live_room", True, "", node, live.seq)
    return Check("live_room", False, "snapshot ⊕ log differs from the live room", node, live.seq)


async def check_projection(ctx: OpsContext, doc_id: str, parts: Parts) -> Check:
    seq = await content_repo.projection_seq(ctx.db, doc_id)
    rows = await content_repo.list_blocks(ctx.db, doc_id)
    if seq <= 0 and not rows:
        return Check("projection", True, "no projection yet", seq=seq)
    state = parts.state_at(seq)
    if state is None:
        return Check("projection", False, "projection seq outside snapshot..log", seq=seq)
    fragment = await documents_repo.get_fragment(ctx.db, doc_id) or ctx.settings.content_fragment
    expected = sorted(_canonical(asdict(r)) for r in project_blocks(state, fragment))
    stored = sorted(_canonical(r) for r in rows)
    if expected == stored:
        return Check("projection", True, seq=seq)
    return Check("projection", False, _diff(expected, stored), seq=seq)


def _canonical(row: dict[str, Any]) -> str:
    return json.dumps({k: row[k] for k in sorted(row)}, sort_keys=True, default=str)


def _diff(expected: list[str], stored: list[str]) -> str:
    missing, extra = set(expected) - set(stored), set(stored) - set(expected)
    ids = sorted({json.loads(r)["block_id"] for r in missing | extra})
    return f"{len(ids)} block(s) differ from the CRDT: {', '.join(ids[:10])}"


async def verify_doc(ctx: OpsContext, doc_id: str, wait_s: float) -> DocReport:
    parts = await load_parts(ctx, doc_id)
    report = DocReport(doc_id, parts.seq, parts.snapshot.seq)
    state = parts.state_at(parts.seq)
    try:
        fingerprint(state or b"", parts.seq)
    except Exception as err:  # what is unreadable is the finding
        report.checks.append(Check("rebuilt", False, f"unreadable: {err!r}", seq=parts.seq))
        return report
    report.checks.append(Check("rebuilt", True, seq=parts.seq))
    for reply in await probe_rooms(ctx.nats.nc, doc_id, wait_s):
        report.checks.append(check_room(parts, reply))
    report.checks.append(await check_projection(ctx, doc_id, parts))
    return report


async def all_doc_ids(ctx: OpsContext) -> list[str]:
    rows = await ctx.db.fetch("SELECT id FROM documents WHERE deleted_at IS NULL ORDER BY id")
    return [str(r["id"]) for r in rows]


async def verify_all(ctx: OpsContext, wait_s: float) -> list[DocReport]:
    """Every live document, `ALL_CONCURRENCY` at a time, reports in id order."""
    gate = asyncio.Semaphore(ALL_CONCURRENCY)

    async def one(doc_id: str) -> DocReport:
        async with gate:
            return await verify_doc(ctx, doc_id, wait_s)

    return list(await asyncio.gather(*(one(d) for d in await all_doc_ids(ctx))))


async def verify(settings: Settings, args: argparse.Namespace) -> dict[str, Any]:
    async with ops_context(settings) as ctx:
        if args.doc:
            await require_document(ctx, args.doc)
            reports = [await verify_doc(ctx, args.doc, args.wait)]
        else:
            reports = await verify_all(ctx, args.wait)
    failed = [r for r in reports if not r.ok]
    shown = reports if (args.doc or args.verbose) else failed
    return {
        "ok": not failed,
        "documents": len(reports),
        "failed": len(failed),
        "reports": [{**asdict(r), "ok": r.ok} for r in shown],
    }


def render(payload: dict[str, Any]) -> str:
    lines = [f"{payload['documents']} document(s) checked, {payload['failed']} with a mismatch"]
    for report in payload["reports"]:
        lines.append(f"{report['doc_id']} seq {report['seq']} (snapshot {report['snapshot_seq']})")
        for check in report["checks"]:
            mark = "ok  " if check["ok"] else "FAIL"
            where = f" on {check['node']}" if check["node"] else ""
            at = f" @{check['seq']}" if check["seq"] is not None else ""
            lines.append(f"  {mark} {check['check']}{where}{at} {check['detail']}".rstrip())
    return "\n".join(lines)


def run(args: argparse.Namespace) -> int:
    return run_command(
        args,
        lambda settings: verify(settings, args),
        render=render,
        exit_code=lambda payload: ExitCode.OK if payload["ok"] else ExitCode.CRITICAL,
    )
