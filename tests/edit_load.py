"""A steady editing load through the balancer, with an ack ledger, for the fault tests.

RELIABILITY's conventions, in one reusable piece:

* **Yjs editors** (stock y-websocket providers, one Node process) write map markers `y<i>`
  continuously; an **observer** (another Node process, also a writer of `o<i>`) records what a
  peer has *seen*;
* a **JSON editor** (envelope protocol) records what was *acknowledged*: each operation carries
  everything since its last ack, so one ack covers every marker in it and a refused operation's
  markers ride along with the next attempt (a pending struct can never hide behind a gap). It
  reconnects through the balancer whenever its socket closes, and counts refusals by code;
* `verify()` is the **strong variant**: the editors' Node process is SIGKILLed first (their
  resync cannot hide a server-side loss), then a fresh client (new process, no local state)
  through the balancer must hold every acknowledged and every seen marker, and the surviving
  observer must converge to the fresh client's state.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import time
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

import pycrdt
import tornado.websocket

from tests.realtime_support import RawSocket
from tests.yjs_client import HarnessError, YjsNodeClients

ROOTS = {"markers": "map", "json_markers": "map", "observer_markers": "map"}
EDIT_PAUSE_S = 0.02
ACK_TIMEOUT_S = 10.0
RECONNECT_PAUSE_S = 0.2
CONVERGE_TIMEOUT_S = 60.0


@dataclass
class Ledger:
    acked: dict[str, int] = field(default_factory=dict)  # marker -> acked version (stream seq)
    refusals: Counter[str] = field(default_factory=Counter)  # error code / close code -> count
    ack_times: list[float] = field(default_factory=list)  # monotonic time of every ack
    sent_times: list[float] = field(default_factory=list)  # when each acked operation was sent
    refusal_times: list[float] = field(default_factory=list)

    def acked_if_sent_between(self, start: float, end: float) -> int:
        """Operations sent in [start, end] and acknowledged by `end` (an ack of one sent before
        `start` may arrive later: the node waits for its own delivery before acking)."""
        pairs = zip(self.sent_times, self.ack_times, strict=True)
        return sum(1 for sent, acked in pairs if start <= sent and acked <= end)

    def first_ack_after(self, moment: float) -> float | None:
        """When the first operation *sent* after `moment` was acknowledged (an ack in flight at
        `moment` says nothing about recovery)."""
        pairs = zip(self.sent_times, self.ack_times, strict=True)
        return next((acked for sent, acked in pairs if sent > moment), None)


class EditLoad:
    """Editors + observer + JSON editor on one document through `port` (the balancer)."""

    def __init__(self, port: int, doc_id: str, token: str) -> None:
        self.port = port
        self.url = f"ws://127.0.0.1:{port}/ws/documents"
        self.doc_id = doc_id
        self.token = token
        self.ledger = Ledger()
        self.editors = YjsNodeClients()
        self.observers = YjsNodeClients()
        self.editor_ids: dict[str, int] = {}
        self._json_doc = pycrdt.Doc()
        self._stop = asyncio.Event()
        self._tasks: list[asyncio.Task[Any]] = []
        self.yjs_count = 0
        self.observer_count = 0

    async def __aenter__(self) -> EditLoad:
        await self.editors.__aenter__()
        await self.observers.__aenter__()
        for name in ("e1", "e2"):
            self.editor_ids[name] = await self.editors.connect(
                name, self.url, self.doc_id, self.token
            )
        await self.observers.connect("observer", self.url, self.doc_id, self.token)
        await asyncio.gather(
            self.editors.wait_synced("e1", 20),
            self.editors.wait_synced("e2", 20),
            self.observers.wait_synced("observer", 20),
        )
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.stop_editing()
        await self.editors.__aexit__(None, None, None)
        await self.observers.__aexit__(None, None, None)

    # --- load ------------------------------------------------------------------------------

    def start_editing(self) -> None:
        self._tasks = [
            asyncio.ensure_future(self._yjs_edits()),
            asyncio.ensure_future(self._observer_edits()),
            asyncio.ensure_future(self._json_edits()),
        ]

    async def stop_editing(self) -> None:
        self._stop.set()
        if self._tasks:
            await asyncio.gather(*self._tasks, return_exceptions=True)
            self._tasks = []

    async def _yjs_edits(self) -> None:
        with contextlib.suppress(HarnessError):
            while not self._stop.is_set():
                name = "e1" if self.yjs_count % 2 else "e2"
                await self.editors.map_set(name, f"y{self.yjs_count}", 1, key="markers")
                self.yjs_count += 1
                await asyncio.sleep(EDIT_PAUSE_S)

    async def _observer_edits(self) -> None:
        with contextlib.suppress(HarnessError):
            while not self._stop.is_set():
                marker = f"o{self.observer_count}"
                await self.observers.map_set("observer", marker, 1, key="observer_markers")
                self.observer_count += 1
                await asyncio.sleep(EDIT_PAUSE_S * 5)

    async def _json_edits(self) -> None:
        acked_state = self._json_doc.get_state()
        unacked: list[str] = []
        socket: RawSocket | None = None
        attempt = 0
        while not self._stop.is_set():
            if socket is None or socket.closed.is_set():
                socket = await self._json_connect(socket)
                if socket is None:
                    continue
            marker = f"j{len(self.ledger.acked) + len(unacked)}"
            self._json_doc.get("json_markers", type=pycrdt.Map)[marker] = 1
            unacked.append(marker)
            sent_state = self._json_doc.get_state()
            attempt += 1
            sent_at = time.monotonic()
            reply = await self._send(socket, f"op{attempt}", self._json_doc.get_update(acked_state))
            now = time.monotonic()
            if reply is not None and reply["type"] == "ack":
                acked_state = sent_state
                for acked_marker in unacked:
                    self.ledger.acked[acked_marker] = reply["version"]
                unacked = []
                self.ledger.ack_times.append(now)
                self.ledger.sent_times.append(sent_at)
            else:
                code = reply.get("code", "error") if reply else f"close {socket.close_code}"
                self.ledger.refusals[str(code)] += 1
                self.ledger.refusal_times.append(now)
            await asyncio.sleep(EDIT_PAUSE_S)
        if socket is not None:
            await socket.aclose()

    async def _json_connect(self, old: RawSocket | None) -> RawSocket | None:
        if old is not None:
            await old.aclose()
        try:
            socket = await RawSocket.json(self.port, self.doc_id, self.token)
            await socket.wait_type("sync", timeout_s=ACK_TIMEOUT_S)
            return socket
        except (OSError, AssertionError, TimeoutError, tornado.websocket.WebSocketError) as err:
            self.ledger.refusals[f"connect {type(err).__name__}"] += 1
            await asyncio.sleep(RECONNECT_PAUSE_S)
            return None

    async def _send(self, socket: RawSocket, msg_id: str, update: bytes) -> dict | None:
        try:
            await socket.operation(msg_id, update)
            return await socket.ack(msg_id, timeout_s=ACK_TIMEOUT_S)
        except (AssertionError, TimeoutError, tornado.websocket.WebSocketClosedError):
            return None

    # --- checks ----------------------------------------------------------------------------

    async def wait_progress(self, acks: int = 5, seen: int = 20, timeout_s: float = 30.0) -> None:
        """Until `acks` more JSON acks and the observer saw `seen` more editor updates."""
        target_acks = len(self.ledger.ack_times) + acks
        target_seen = len(await self.seen_by_peer()) + seen
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            acks_done = len(self.ledger.ack_times) >= target_acks
            if acks_done and len(await self.seen_by_peer()) >= target_seen:
                return
            await asyncio.sleep(0.1)
        raise AssertionError(
            f"no progress in {timeout_s}s: acks {len(self.ledger.ack_times)}/{target_acks},"
            f" refusals {dict(self.ledger.refusals)}"
        )

    async def seen_by_peer(self) -> set[str]:
        state = await self.observers.state("observer", ROOTS)
        return set(state["json"].get("markers", {}))

    async def verify(self) -> dict[str, Any]:
        """Strong variant: kill the editors, then a fresh joiner has everything; all converge."""
        await self.stop_editing()
        seen = await self.seen_by_peer()
        process = self.editors._process
        if process is not None and process.returncode is None:
            os.kill(process.pid, signal.SIGKILL)
        await self.observers.map_set("observer", "final", 1, key="observer_markers")
        observer = await self.observers.state("observer", ROOTS)
        target = {int(c): k for c, k in observer["state_vector_map"].items()}
        async with YjsNodeClients() as fresh:
            await fresh.connect("fresh", self.url, self.doc_id, self.token)
            await fresh.wait_synced("fresh", 30)
            state = await fresh.wait_state_vector("fresh", target, CONVERGE_TIMEOUT_S, ROOTS)
        have_json = set(state["json"].get("json_markers", {}))
        have_yjs = set(state["json"].get("markers", {}))
        missing_acked = set(self.ledger.acked) - have_json
        missing_seen = seen - have_yjs
        assert not missing_acked, f"acknowledged but lost: {sorted(missing_acked)[:20]}"
        assert not missing_seen, f"seen by a peer but lost: {sorted(missing_seen)[:20]}"
        # The observer converges with the fresh joiner (it has everything the fresh one has).
        observer = await self.observers.wait_state_vector(
            "observer",
            {int(c): k for c, k in state["state_vector_map"].items()},
            CONVERGE_TIMEOUT_S,
            ROOTS,
        )
        assert observer["state_hash"] == state["state_hash"]
        return {
            "acked": len(self.ledger.acked),
            "seen_by_peer": len(seen),
            "refusals": dict(self.ledger.refusals),
            "max_acked_version": max(self.ledger.acked.values(), default=0),
        }
