"""Drive real, stock Yjs clients (Node) from Python async tests.

The server's primary client is the npm ``y-websocket`` ``WebsocketProvider``; convergence,
awareness and late-joiner behaviour are only proven against the real thing. ``YjsNodeClients``
starts one ``node tests/js/client.mjs`` process that manages any number of named clients and talks
newline-delimited JSON over stdin/stdout (the command set is documented in ``client.mjs``).
``ReferenceYjsServer`` starts the reference ``@y/websocket-server`` so the harness can be checked
without our server, and so benchmarks have a baseline.

Both are async context managers and create their subprocess on the *running* loop, which is what
pytest-tornasync needs (a fresh IOLoop per test)::

    async def test_edits_converge(io_loop):
        async with ReferenceYjsServer() as server, YjsNodeClients() as clients:
            await clients.connect("alice", server.url, "doc-1")
            ...

The npm dependencies (``tests/js/package.json`` + lock file) are installed on first use with
``npm ci``, under a file lock so parallel test processes do not race, because CI starts from a
clean checkout.
"""

from __future__ import annotations

import asyncio
import base64
import collections
import contextlib
import fcntl
import hashlib
import itertools
import json
import os
import shutil
import subprocess
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from types import TracebackType
from typing import Any, Self

JS_DIR = Path(__file__).resolve().parent / "js"
CLIENT_SCRIPT = JS_DIR / "client.mjs"
REFERENCE_SERVER_SCRIPT = JS_DIR / "reference_server.mjs"

#: A cold ``npm ci`` of the harness' ~40 packages takes a few seconds; allow for a slow registry.
NPM_INSTALL_TIMEOUT_S = 300.0
#: Node startup plus module loading is ~100 ms; generous for a loaded CI machine.
PROCESS_START_TIMEOUT_S = 30.0
#: Default for commands; waiting commands get their own timeout plus this margin.
COMMAND_TIMEOUT_S = 15.0
#: How long a process gets to exit after ``quit``/SIGTERM before it is killed.
PROCESS_EXIT_TIMEOUT_S = 5.0
#: ``state`` replies carry the whole document update in base64; asyncio's 64 KiB default line
#: limit would split them.
STDOUT_LINE_LIMIT_BYTES = 64 * 1024 * 1024
#: stderr lines kept to explain a failure (Node stack traces, y-websocket warnings).
STDERR_TAIL_LINES = 200


class HarnessError(RuntimeError):
    """A harness command failed, timed out, or the Node process died."""


# --------------------------------------------------------------------------------------------------
# npm dependencies
# --------------------------------------------------------------------------------------------------


def _pinned_dependencies(js_dir: Path) -> dict[str, str]:
    manifest = json.loads((js_dir / "package.json").read_text())
    return {**manifest["dependencies"], **manifest.get("devDependencies", {})}


def _node_modules_current(js_dir: Path) -> bool:
    """True when every pinned dependency is installed at exactly its pinned version."""
    for package, version in _pinned_dependencies(js_dir).items():
        installed = js_dir / "node_modules" / package / "package.json"
        if not installed.exists():
            return False
        if json.loads(installed.read_text()).get("version") != version:
            return False
    return True


def _install_lock_path(js_dir: Path) -> Path:
    # Outside node_modules (npm ci deletes it) and outside the repo (nothing to git-ignore).
    digest = hashlib.sha256(str(js_dir).encode()).hexdigest()[:16]
    return Path(tempfile.gettempdir()) / f"collab-yjs-harness-npm-{digest}.lock"


def ensure_node_modules(js_dir: Path = JS_DIR) -> None:
    """Install tests/js dependencies (or another package folder's, e.g. web/) once (``npm ci``
    from the lock file) if they are missing.

    Blocking; async callers run it in a thread. Safe to call from parallel processes.
    """
    if _node_modules_current(js_dir):
        return
    npm = shutil.which("npm")
    if npm is None:
        raise HarnessError("npm is not installed; the Yjs harness needs Node.js and npm")
    with open(_install_lock_path(js_dir), "w") as lock_file:
        fcntl.flock(lock_file, fcntl.LOCK_EX)
        if _node_modules_current(js_dir):  # another process installed while we waited
            return
        subcommand = "ci" if (js_dir / "package-lock.json").exists() else "install"
        try:
            result = subprocess.run(
                [npm, subcommand, "--no-audit", "--no-fund"],
                cwd=js_dir,
                capture_output=True,
                text=True,
                timeout=NPM_INSTALL_TIMEOUT_S,
                check=False,
            )
        except subprocess.TimeoutExpired as err:
            raise HarnessError(f"npm {subcommand} timed out in {js_dir}") from err
        if result.returncode != 0 or not _node_modules_current(js_dir):
            raise HarnessError(
                f"npm {subcommand} failed in {js_dir} (exit {result.returncode}):\n"
                f"{result.stdout[-4000:]}\n{result.stderr[-4000:]}"
            )


def _node() -> str:
    node = shutil.which("node")
    if node is None:
        raise HarnessError("node is not installed; the Yjs harness needs Node.js >= 18")
    return node


async def _stop_process(process: asyncio.subprocess.Process) -> None:
    """Close stdin, give the process a moment to exit, then terminate, then kill."""
    if process.stdin is not None and not process.stdin.is_closing():
        process.stdin.close()
    for signal_process in (None, process.terminate, process.kill):
        if process.returncode is not None:
            return
        if signal_process is not None:
            with contextlib.suppress(ProcessLookupError):
                signal_process()
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(process.wait(), PROCESS_EXIT_TIMEOUT_S)


async def _collect_lines(stream: asyncio.StreamReader, sink: collections.deque[str]) -> None:
    """Drain a pipe so the child never blocks on a full buffer; keep the tail for diagnostics."""
    while line := await stream.readline():
        sink.append(line.decode(errors="replace").rstrip())


# --------------------------------------------------------------------------------------------------
# Clients
# --------------------------------------------------------------------------------------------------


class YjsNodeClients:
    """Named stock Yjs clients in one Node process, driven by JSON commands.

    Every method sends one command and returns the decoded reply (``ok`` and ``id`` removed), or
    raises :class:`HarnessError` with the Node-side error and the tail of Node's stderr. Waiting
    methods (``wait_synced``, ``wait_json``, ``wait_awareness``, ``wait_close``) resolve on the
    provider's events inside Node, with a timeout: tests never sleep.
    """

    def __init__(self, *, command_timeout: float = COMMAND_TIMEOUT_S) -> None:
        self.command_timeout = command_timeout
        #: Unsolicited events in arrival order, e.g. ``{"event": "close", "name": .., "code": ..}``.
        self.events: list[dict[str, Any]] = []
        self._process: asyncio.subprocess.Process | None = None
        self._ids = itertools.count(1)
        self._pending: dict[int, asyncio.Future[dict[str, Any]]] = {}
        self._event_waiters: list[tuple[Callable[[dict[str, Any]], bool], asyncio.Future[Any]]] = []
        self._stderr_tail: collections.deque[str] = collections.deque(maxlen=STDERR_TAIL_LINES)
        self._tasks: set[asyncio.Task[None]] = set()
        self._exit_error: HarnessError | None = None

    # ---- lifecycle --------------------------------------------------------------------------------

    async def __aenter__(self) -> Self:
        await self.start()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        await self.stop()

    async def start(self) -> None:
        await asyncio.to_thread(ensure_node_modules)
        self._process = await asyncio.create_subprocess_exec(
            _node(),
            str(CLIENT_SCRIPT),
            cwd=JS_DIR,
            stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
            limit=STDOUT_LINE_LIMIT_BYTES,
        )
        assert self._process.stdout is not None and self._process.stderr is not None
        self._spawn(self._read_stdout(self._process.stdout))
        self._spawn(_collect_lines(self._process.stderr, self._stderr_tail))
        await self.wait_event(lambda event: event["event"] == "ready", PROCESS_START_TIMEOUT_S)

    async def stop(self) -> None:
        """Ask Node to quit (providers send their awareness removal), then make sure it is gone."""
        process = self._process
        if process is None:
            return
        if process.returncode is None and self._exit_error is None:
            with contextlib.suppress(HarnessError):
                await self.request("quit", timeout_s=PROCESS_EXIT_TIMEOUT_S)
        await _stop_process(process)
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        self._process = None

    def _spawn(self, coroutine: Any) -> None:
        task = asyncio.get_running_loop().create_task(coroutine)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    # ---- transport --------------------------------------------------------------------------------

    async def _read_stdout(self, stdout: asyncio.StreamReader) -> None:
        while line := await stdout.readline():
            try:
                message = json.loads(line)
            except json.JSONDecodeError:
                self._stderr_tail.append(f"[non-JSON stdout] {line!r}")
                continue
            if message.get("id") is not None:
                self._resolve_reply(message)
            elif "event" in message:
                self._record_event(message)
        await self._process_exited()

    def _resolve_reply(self, message: dict[str, Any]) -> None:
        future = self._pending.pop(message["id"], None)
        if future is not None and not future.done():
            future.set_result(message)

    def _record_event(self, event: dict[str, Any]) -> None:
        event["at"] = time.monotonic()  # arrival time: reconnect spreads, outage timings
        self.events.append(event)
        for predicate, future in list(self._event_waiters):
            if not future.done() and predicate(event):
                future.set_result(event)

    async def _process_exited(self) -> None:
        assert self._process is not None
        code = await self._process.wait()
        self._exit_error = HarnessError(
            f"node client.mjs exited with code {code}\n{self.stderr_tail()}"
        )
        for future in [*self._pending.values(), *(f for _, f in self._event_waiters)]:
            if not future.done():
                future.set_exception(self._exit_error)
        self._pending.clear()

    def stderr_tail(self) -> str:
        return "\n".join(self._stderr_tail)

    async def request(self, cmd: str, *, timeout_s: float | None = None, **params: Any) -> dict:
        """Send one command and await its reply; raises HarnessError if it fails or times out."""
        if self._exit_error is not None:
            raise self._exit_error
        if self._process is None or self._process.stdin is None:
            raise HarnessError("YjsNodeClients is not started (use `async with`)")
        request_id = next(self._ids)
        future: asyncio.Future[dict[str, Any]] = asyncio.get_running_loop().create_future()
        self._pending[request_id] = future
        line = json.dumps({"id": request_id, "cmd": cmd, **params}) + "\n"
        self._process.stdin.write(line.encode())
        await self._process.stdin.drain()
        wait_s = self.command_timeout if timeout_s is None else timeout_s
        try:
            reply = await asyncio.wait_for(future, wait_s)
        except TimeoutError as err:
            self._pending.pop(request_id, None)
            raise HarnessError(
                f"{cmd} got no reply within {wait_s} s\n{self.stderr_tail()}"
            ) from err
        if not reply.pop("ok"):
            raise HarnessError(f"{cmd} {params!r} failed: {reply.get('error')}")
        reply.pop("id")
        return reply

    async def wait_event(
        self, predicate: Callable[[dict[str, Any]], bool], timeout_s: float, *, since: int = 0
    ) -> dict[str, Any]:
        """Return the first event (from index ``since`` of :attr:`events`) matching ``predicate``."""
        for event in self.events[since:]:
            if predicate(event):
                return event
        if self._exit_error is not None:
            raise self._exit_error
        future: asyncio.Future[dict[str, Any]] = asyncio.get_running_loop().create_future()
        waiter = (predicate, future)
        self._event_waiters.append(waiter)
        try:
            return await asyncio.wait_for(future, timeout_s)
        except TimeoutError as err:
            raise HarnessError(f"no matching event within {timeout_s} s: {self.events!r}") from err
        finally:
            self._event_waiters.remove(waiter)

    async def _wait_command(self, cmd: str, timeout_s: float, **params: Any) -> dict[str, Any]:
        """A command that waits inside Node: Node times out first, with a precise message."""
        return await self.request(
            cmd,
            timeout_s=timeout_s + self.command_timeout,
            timeout_ms=int(timeout_s * 1000),
            **params,
        )

    # ---- commands ---------------------------------------------------------------------------------

    async def connect(
        self,
        name: str,
        url: str,
        room: str,
        token: str | None = None,
        *,
        client_id: int | None = None,
        params: dict[str, str] | None = None,
        protocols: list[str] | None = None,
    ) -> int:
        """Create a Y.Doc + WebsocketProvider connecting to ``url/room?token=..``; returns its id."""
        reply = await self.request(
            "connect",
            name=name,
            url=url,
            room=room,
            token=token,
            client_id=client_id,
            params=params,
            protocols=protocols,
        )
        return int(reply["client_id"])

    async def wait_synced(self, name: str, timeout_s: float = 10.0) -> None:
        """Wait for the provider's ``sync`` event (it received SyncStep2 from the server)."""
        await self._wait_command("wait_synced", timeout_s, name=name)

    async def insert_text(self, name: str, index: int, text: str, *, key: str = "text") -> None:
        await self.request("insert_text", name=name, key=key, index=index, text=text)

    async def delete_text(self, name: str, index: int, length: int, *, key: str = "text") -> None:
        await self.request("delete_text", name=name, key=key, index=index, length=length)

    async def map_set(self, name: str, field: str, value: Any, *, key: str = "map") -> None:
        await self.request("map_set", name=name, key=key, field=field, value=value)

    async def map_delete(self, name: str, field: str, *, key: str = "map") -> None:
        await self.request("map_delete", name=name, key=key, field=field)

    async def array_push(self, name: str, values: list[Any], *, key: str = "array") -> None:
        await self.request("array_push", name=name, key=key, values=values)

    async def array_delete(
        self, name: str, index: int, length: int = 1, *, key: str = "array"
    ) -> None:
        await self.request("array_delete", name=name, key=key, index=index, length=length)

    async def burst_edits(self, name: str, count: int, *, key: str = "text") -> None:
        """``count`` one-character appends to text ``key``, each its own transaction (so its own
        update frame), sent back to back with no pause: a program writing as fast as it can."""
        await self.request("burst_edits", name=name, count=count, key=key)

    async def random_edits(
        self, name: str, count: int, seed: int, *, alphabet: list[str] | None = None
    ) -> None:
        """``count`` text/map/array edits on roots "text", "map", "array", deterministic by seed.
        Words are drawn from ``alphabet`` (default: tests/js/client.mjs's, which has an emoji whose
        surrogate pair the edits split)."""
        await self.request("random_edits", name=name, count=count, seed=seed, alphabet=alphabet)

    async def apply_update(self, name: str, update: bytes) -> None:
        await self.request("apply_update", name=name, update=base64.b64encode(update).decode())

    # --- real editors' document models (tests/js/editors.mjs) ---------------------------------

    async def editor_write(
        self, name: str, editor: str, content: Any, *, fragment: str = "prosemirror"
    ) -> None:
        """Make the fragment equal `content` the way the editor's ySyncPlugin writes an edit
        (BlockNote: a list of BlockNote blocks; Tiptap: a ProseMirror doc JSON)."""
        await self.request(
            "editor_write", name=name, editor=editor, fragment=fragment, content=content
        )

    async def editor_read(self, name: str, editor: str, *, fragment: str = "prosemirror") -> Any:
        """The fragment as the editor itself reads it (BlockNote blocks / ProseMirror JSON)."""
        reply = await self.request("editor_read", name=name, editor=editor, fragment=fragment)
        return reply["content"]

    async def editor_append(
        self, name: str, block_id: str, text: str, *, fragment: str = "prosemirror"
    ) -> None:
        """A BlockNote user types `text` at the end of a block."""
        await self.request(
            "editor_append", name=name, fragment=fragment, block_id=block_id, text=text
        )

    async def editor_mention(
        self, name: str, block_id: str, user_id: str, *, fragment: str = "prosemirror"
    ) -> None:
        """A BlockNote user picks `user_id` from the mention menu at the end of a block: the
        product's mention inline content (tests/js/product_schema.mjs) is inserted there."""
        mention = {"type": "mention", "props": {"user": user_id}}
        await self.request(
            "editor_append", name=name, fragment=fragment, block_id=block_id, inline=mention
        )

    async def editor_anchor(
        self,
        name: str,
        block_id: str,
        start: int,
        end: int,
        *,
        node: int = 0,
        fragment: str = "prosemirror",
    ) -> dict[str, Any]:
        """`{"start", "end"}`: Yjs relative positions (`Y.relativePositionToJSON`) of the text
        range [start, end) of text node `node` of a block, as a comment UI anchors a selection."""
        span = {"from": start, "to": end}
        return await self.request(
            "editor_anchor", name=name, fragment=fragment, block_id=block_id, node=node, **span
        )

    async def editor_wait(
        self,
        name: str,
        editor: str,
        contains: str,
        *,
        fragment: str = "prosemirror",
        timeout_s: float = 10.0,
    ) -> dict[str, Any]:
        """Wait until the editor's JSON of the fragment contains `contains`; returns
        `{"content", "waited_ms"}`."""
        return await self._wait_command(
            "editor_wait",
            timeout_s,
            name=name,
            editor=editor,
            fragment=fragment,
            contains=contains,
        )

    async def state(self, name: str, roots: dict[str, str] | None = None) -> dict[str, Any]:
        """Content and state of a client's doc.

        Returns ``json`` (root key -> content; ``roots`` maps key -> "text"|"map"|"array"|"xml",
        default text/map/array), ``state_vector`` (base64), ``state_vector_map`` (client id as
        str -> clock), ``update`` (base64 full state) and ``state_hash`` (sha256 of the canonical
        JSON of content + state vector map, comparable across clients and with pycrdt).
        """
        return await self.request("state", name=name, roots=roots)

    async def wait_json(
        self,
        name: str,
        expected: dict[str, Any],
        timeout_s: float = 10.0,
        roots: dict[str, str] | None = None,
    ) -> dict[str, Any]:
        """Wait until the client's content equals ``expected``; returns :meth:`state`."""
        return await self._wait_command(
            "wait_json", timeout_s, name=name, json=expected, roots=roots
        )

    async def wait_state_vector(
        self,
        name: str,
        state_vector_map: dict[int, int],
        timeout_s: float = 10.0,
        roots: dict[str, str] | None = None,
    ) -> dict[str, Any]:
        """Wait until the doc has every client's clock in ``state_vector_map``; returns state.

        How to wait for convergence after concurrent edits: collect each editor's own
        ``state_vector_map`` entry, then wait for every client to cover all of them.
        """
        return await self._wait_command(
            "wait_state_vector",
            timeout_s,
            name=name,
            state_vector_map={str(client): clock for client, clock in state_vector_map.items()},
            roots=roots,
        )

    async def set_awareness(self, name: str, state: dict[str, Any] | None) -> None:
        await self.request("set_awareness", name=name, state=state)

    async def set_awareness_field(self, name: str, field: str, value: Any) -> None:
        await self.request("set_awareness_field", name=name, field=field, value=value)

    async def awareness(self, name: str) -> dict[int, dict[str, Any]]:
        """Every awareness state the client knows, by client id (its own included)."""
        reply = await self.request("awareness", name=name)
        return {int(client_id): state for client_id, state in reply["states"].items()}

    async def wait_awareness(
        self, name: str, client_id: int, state: dict[str, Any] | None, timeout_s: float = 10.0
    ) -> None:
        """Wait until ``name`` sees ``client_id``'s state equal ``state`` (None: until it is gone)."""
        await self._wait_command(
            "wait_awareness", timeout_s, name=name, client_id=client_id, state=state
        )

    async def disconnect(self, name: str) -> None:
        await self.request("disconnect", name=name)

    async def reconnect(self, name: str) -> None:
        await self.request("reconnect", name=name)

    async def destroy(self, name: str) -> None:
        """Destroy provider and doc: the client leaves for good (its name can be reused)."""
        await self.request("destroy", name=name)

    async def close_codes(self, name: str) -> list[dict[str, Any]]:
        """WebSocket close events seen by the provider: ``{"code": int|None, "reason": str}``."""
        return list((await self.request("close_codes", name=name))["closes"])

    async def wait_close(
        self, name: str, count: int = 1, timeout_s: float = 10.0
    ) -> list[dict[str, Any]]:
        """Wait until the provider has seen ``count`` close events; returns all of them."""
        return list(
            (await self._wait_command("wait_close", timeout_s, name=name, count=count))["closes"]
        )

    async def sync_status(self, name: str) -> dict[str, Any]:
        """``synced``, last ``status`` (connecting/connected/disconnected), ``wsconnected``."""
        return await self.request("sync_status", name=name)

    async def permission_denied(self, name: str) -> list[str]:
        """Reasons of the y-protocols permission-denied messages the client received."""
        return list((await self.request("permission_denied", name=name))["reasons"])

    async def received(self, name: str) -> dict[str, int]:
        """Count of frames received by outer type: sync, awareness, auth, query_awareness."""
        return dict((await self.request("received", name=name))["received"])


# --------------------------------------------------------------------------------------------------
# Reference server
# --------------------------------------------------------------------------------------------------


class ReferenceYjsServer:
    """The reference y-websocket server (``@y/websocket-server``) on a free loopback port.

    ``url`` mirrors our endpoint layout, so harness code is the same for both servers.
    """

    def __init__(self, *, host: str = "127.0.0.1", gc: bool = True) -> None:
        self.host = host
        self.gc = gc
        self.port: int | None = None
        self._process: asyncio.subprocess.Process | None = None
        self._stderr_tail: collections.deque[str] = collections.deque(maxlen=STDERR_TAIL_LINES)
        self._stderr_task: asyncio.Task[None] | None = None

    @property
    def url(self) -> str:
        """Provider ``serverUrl``: clients append ``/<doc_id>``."""
        if self.port is None:
            raise HarnessError("reference server is not running")
        return f"ws://{self.host}:{self.port}/ws/documents"

    async def __aenter__(self) -> Self:
        await asyncio.to_thread(ensure_node_modules)
        env = {**os.environ, "HOST": self.host, "PORT": "0", "GC": "true" if self.gc else "false"}
        self._process = await asyncio.create_subprocess_exec(
            _node(),
            str(REFERENCE_SERVER_SCRIPT),
            cwd=JS_DIR,
            env=env,
            stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
        )
        assert self._process.stdout is not None and self._process.stderr is not None
        self._stderr_task = asyncio.get_running_loop().create_task(
            _collect_lines(self._process.stderr, self._stderr_tail)
        )
        try:
            line = await asyncio.wait_for(self._process.stdout.readline(), PROCESS_START_TIMEOUT_S)
            self.port = int(json.loads(line)["port"])
        except (TimeoutError, ValueError, KeyError) as err:
            await self._stop()
            raise HarnessError(
                "reference server did not announce its port\n" + "\n".join(self._stderr_tail)
            ) from err
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        await self._stop()

    async def _stop(self) -> None:
        if self._process is not None:
            await _stop_process(self._process)
            self._process = None
        if self._stderr_task is not None:
            self._stderr_task.cancel()
            await asyncio.gather(self._stderr_task, return_exceptions=True)
            self._stderr_task = None
