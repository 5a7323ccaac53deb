"""The projection worker (services/projection_worker.py): a worker that dies or hangs while it
holds a refresh costs that refresh only (logged; the next one gets a new worker and works), a
cancelled caller frees the worker, and SIGTERM stops a real `collab serve` while a refresh is in
its worker instead of waiting for it."""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import logging
import os
import signal
import time
import uuid
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import psutil
import pytest
import tornado.escape
import tornado.httpclient
from pycrdt import Doc, XmlElement, XmlFragment

from core.yjs import merge
from models.repo import doc_content as content_repo
from services.doc_content import block_rows, block_tree
from services.mention_finder import mention_texts
from services.projection_compute import AnchorInput, AnchorResult, compacted, project
from services.projection_refresher import ProjectionRefresher
from services.projection_worker import WORKER_NICE, ProjectionUnavailable, ProjectionWorker
from services.ydoc_roots import bind_roots
from tests.app_nodes import AppNode, node_env
from tests.content_docs import blocknote_doc, blocknote_group, bn_block
from tests.realtime_support import DocSetup, document_with

pytestmark = pytest.mark.timeout(120)

WAIT_S = 30.0


async def until(check: Callable[[], bool], what: str) -> None:
    deadline = time.monotonic() + WAIT_S
    while not check():
        assert time.monotonic() < deadline, f"never happened: {what}"
        await asyncio.sleep(0.02)


class Writer:
    """Appends BlockNote paragraphs to a document through its log, as an editor would."""

    def __init__(self, ctx, setup: DocSetup) -> None:  # type: ignore[no-untyped-def]
        self.ctx, self.setup = ctx, setup
        self.doc = Doc()
        fragment = self.doc.get("prosemirror", type=XmlFragment)
        self.group = fragment.children.append(XmlElement("blockGroup"))
        self.sent = b"\x00"

    async def add(self, block_id: str) -> None:
        bn_block(self.group, block_id, [(f"text of {block_id}", None)])
        update, self.sent = self.doc.get_update(self.sent), self.doc.get_state()
        await self.ctx.doc_log.publish(
            self.setup.doc_id,
            update,
            msg_id=uuid.uuid4().hex,
            client="test",
            user=self.setup.users["owner"].id,
        )


async def block_ids(ctx, doc_id: str) -> set[str]:  # type: ignore[no-untyped-def]
    return {row["block_id"] for row in await content_repo.list_blocks(ctx.db, doc_id)}


def logged(caplog: pytest.LogCaptureFixture, event: str) -> list[str]:
    return [r.getMessage() for r in caplog.records if event in r.getMessage()]


async def test_a_worker_killed_holding_a_refresh_fails_it_and_the_next_works(ctx, caplog):
    caplog.set_level(logging.INFO)
    setup = await document_with(ctx)
    writer = Writer(ctx, setup)
    refresher = ProjectionRefresher(ctx)
    worker = ctx.projection_worker
    await writer.add("a")
    await refresher.refresh(setup.doc_id)
    assert await block_ids(ctx, setup.doc_id) == {"a"}
    [pid] = worker.worker_pids()

    await writer.add("b")
    os.kill(pid, signal.SIGSTOP)  # the refresh is handed to a worker that will never answer
    refreshing = asyncio.ensure_future(refresher.refresh(setup.doc_id))
    await until(lambda: worker.busy == 1, "the refresh reached the worker")
    os.kill(pid, signal.SIGKILL)
    await refreshing  # returns: the failure is logged, never raised into the refresher

    [failed] = logged(caplog, "projection.refresh_failed")
    assert setup.doc_id in failed and "ProjectionUnavailable" in failed
    assert logged(caplog, "projection_worker.died")
    assert await block_ids(ctx, setup.doc_id) == {"a"}  # nothing half-written

    await refresher.refresh(setup.doc_id)  # what the next edit or snapshot does
    assert await block_ids(ctx, setup.doc_id) == {"a", "b"}
    [new_pid] = worker.worker_pids()
    assert new_pid != pid
    # Background work: below the node's CPU priority (services/projection_worker.py WORKER_NICE).
    assert psutil.Process(new_pid).nice() == psutil.Process().nice() + WORKER_NICE
    assert not psutil.pid_exists(pid) or psutil.Process(pid).status() == psutil.STATUS_ZOMBIE


async def test_a_hung_worker_is_killed_after_the_timeout(settings, caplog):
    caplog.set_level(logging.INFO)
    worker = ProjectionWorker(dataclasses.replace(settings, projection_timeout_s=0.5))
    state = Doc().get_update()
    try:
        await worker.run(project, state, "prosemirror", [])
        [pid] = worker.worker_pids()
        process = psutil.Process(pid)
        process.suspend()
        with pytest.raises(ProjectionUnavailable, match=r"longer than 0\.5 s"):
            await worker.run(project, state, "prosemirror", [])
        assert logged(caplog, "projection_worker.hung")
        process.wait(WAIT_S)  # killed (a stopped process dies of SIGKILL too)
        projection = await worker.run(project, state, "prosemirror", [])
        assert projection.rows == [] and pid not in worker.worker_pids()
    finally:
        await worker.stop()


async def test_a_cancelled_call_frees_the_worker(settings):
    worker = ProjectionWorker(settings)
    state = Doc().get_update()
    try:
        await worker.run(project, state, "prosemirror", [])
        [pid] = worker.worker_pids()
        process = psutil.Process(pid)
        process.suspend()
        call = asyncio.ensure_future(worker.run(project, state, "prosemirror", []))
        await until(lambda: worker.busy == 1, "the call reached the worker")
        call.cancel()
        with pytest.raises(asyncio.CancelledError):
            await call
        process.wait(WAIT_S)  # abandoned work does not keep the one worker
        assert (await worker.run(project, state, "prosemirror", [])).rows == []
    finally:
        await worker.stop()
    with pytest.raises(ProjectionUnavailable, match="stopped"):
        await worker.run(project, state, "prosemirror", [])


def test_the_compacted_state_reads_the_same_and_is_smaller() -> None:
    """`project` reads a re-encoded copy of the state (services/projection_compute.py
    `compacted`): a state merged from many small updates, with deletions, projects the same."""
    doc = blocknote_doc()
    updates = [doc.get_update()]
    doc.observe(lambda event: updates.append(event.update))
    group = blocknote_group(doc)
    for i in range(30):
        bn_block(group, f"b{i}", [(f"block {i} ", None), (f"<@{i}>", {"bold": {}})])
    del group.children[5]
    del group.children[7]
    merged = merge(updates)
    tree = block_tree(bind_roots(merged), "prosemirror")
    projection = project(merged, "prosemirror", [AnchorInput("t", "b9", None, None)])
    assert len(compacted(merged)) < len(merged)
    assert projection.rows == block_rows(tree) and len(projection.rows) == 32
    assert projection.mentions == mention_texts(tree.blocks)
    assert projection.anchors["t"][1] == AnchorResult("anchored", None)


# --- SIGTERM on a real node --------------------------------------------------------------------


def worker_of(node: AppNode) -> psutil.Process | None:
    """The node's projection worker: the child of its multiprocessing fork server."""
    for child in psutil.Process(node.pid).children():
        if "forkserver" in " ".join(child.cmdline()):
            workers = child.children()
            return workers[0] if workers else None
    return None


async def fetch(node: AppNode, path: str, **kwargs) -> tornado.httpclient.HTTPResponse:  # type: ignore[no-untyped-def]
    client = tornado.httpclient.AsyncHTTPClient()
    url = f"http://127.0.0.1:{node.port}{path}"
    return await client.fetch(url, raise_error=False, request_timeout=300, **kwargs)


async def add_block(node: AppNode, setup: DocSetup, block_id: str) -> tuple[int, bytes]:
    """A REST block write: it re-projects the document before it answers."""
    text = {"type": "text", "text": block_id, "styles": {}}
    body = {"block": {"id": block_id, "type": "paragraph", "content": [text]}}
    response = await fetch(
        node,
        f"/api/v1/documents/{setup.doc_id}/blocks/",
        method="POST",
        body=tornado.escape.json_encode(body),
        headers={
            "Authorization": f"Bearer {setup.users['owner'].access_token}",
            "Content-Type": "application/json",
        },
    )
    return response.code, response.body or b""


async def add_block_or_closed(node: AppNode, setup: DocSetup, block_id: str) -> int:
    """`add_block`'s status, or 599 if the node closed the connection without an answer."""
    try:
        return (await add_block(node, setup, block_id))[0]
    except tornado.httpclient.HTTPClientError as err:  # HTTPStreamClosedError: 599
        return err.code
    except ConnectionResetError:
        return 599


async def worker_calls(node: AppNode) -> float:
    for line in (await fetch(node, "/metrics")).body.decode().splitlines():
        if line.startswith("collab_projection_worker_calls "):
            return float(line.split()[1])
    return 0.0


@contextlib.asynccontextmanager
async def node_with_worker(
    ctx: Any, stack: Any, settings: Any, tmp_path: Path
) -> AsyncIterator[tuple[AppNode, DocSetup, psutil.Process]]:
    """A real `collab serve` whose projection worker is running (a block write started it)."""
    setup = await document_with(ctx)
    env = node_env(stack.postgres.url(), stack.nats.url, stack.redis.url, settings.jwt_secret)
    node = AppNode(f"projworker-{uuid.uuid4().hex[:6]}", env, tmp_path)
    await node.start()
    try:
        code, body = await add_block(node, setup, "first")
        assert code == 201, body
        worker = worker_of(node)
        assert worker is not None, node.log_tail()
        yield node, setup, worker
    finally:
        await node.aclose()


async def test_sigterm_during_a_refresh_in_the_worker_exits_without_waiting(
    ctx, stack, settings, tmp_path
):
    async with node_with_worker(ctx, stack, settings, tmp_path) as (node, setup, worker):
        forkserver = worker.parent()
        worker.suspend()  # from here on, the refresh in the worker never ends by itself
        writing = asyncio.ensure_future(add_block_or_closed(node, setup, "second"))
        deadline = time.monotonic() + WAIT_S
        while await worker_calls(node) < 1:
            assert time.monotonic() < deadline, "the write's refresh never reached the worker"
            await asyncio.sleep(0.05)
        term_at = time.monotonic()
        node.signal(signal.SIGTERM)
        await node.wait_exit()  # SIGKILLs after app_nodes.STOP_TIMEOUT_S if it did not exit
        exited_s = time.monotonic() - term_at
        assert node.process is not None and node.process.returncode == 0, node.log_tail()
        print(f"exited {exited_s:.2f} s after SIGTERM with a refresh held in the worker")
        assert (await writing) in (503, 599)  # answered "retry later", or the connection closed
        _gone, alive = psutil.wait_procs([worker, forkserver], timeout=WAIT_S)
        assert alive == [], "the node left its worker behind"


async def test_a_killed_node_leaves_no_worker_behind(ctx, stack, settings, tmp_path):
    """SIGKILL runs no shutdown code: the worker and its fork server still go with the node."""
    async with node_with_worker(ctx, stack, settings, tmp_path) as (node, _setup, worker):
        forkserver = worker.parent()
        await node.kill()
        _gone, alive = psutil.wait_procs([worker, forkserver], timeout=WAIT_S)
        assert alive == [], "the killed node left its worker behind"
