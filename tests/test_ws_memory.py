"""What an open document socket keeps (issue 15, memory per idle connection; bench/FINDINGS.md):
the upgrade request's headers and arguments are let go after `open()`, and the handler's instance
__dict__ stays small enough for CPython's shared-key form (29 keys at most: one more attribute and
every socket's handler carries a full hash table, ~1.3 KB). Found in a live node with `gc`."""

from __future__ import annotations

import asyncio
import collections
import gc

import pytest

from handlers.ws_documents import DocumentSocketHandler
from tests.realtime_support import RawSocket, document_with

pytestmark = pytest.mark.timeout(60)

#: CPython 3.11+ keeps instance dicts split (keys shared by the class) up to this many keys.
SHARED_KEY_DICT_MAX = 29


async def test_an_open_socket_keeps_a_small_handler(ctx, ws_port) -> None:
    setup = await document_with(ctx, "editor")
    sock = await RawSocket.open(ws_port, setup.doc_id, setup.users["editor"].access_token)
    try:
        await sock.wait_for(lambda _message: True)  # open() has run: the first sync frame came
        handlers = [o for o in gc.get_objects() if isinstance(o, DocumentSocketHandler)]
        handler = next(h for h in handlers if h.connection is not None and not h.connection.closed)
        assert len(handler.__dict__) <= SHARED_KEY_DICT_MAX, sorted(handler.__dict__)
        request = handler.request
        assert dict(request.headers) == {} and request.query_arguments == {}
        assert request.connection is None and request.server_connection is None
        assert "token" not in request.uri and request.path in request.uri
        assert dict(handler._headers) == {}  # the 101's headers, written long ago
        # Once idle: no worker task (live/hub.py), no read buffer and a protocol dict still in
        # the shared-key form (handlers/ws_reader.py), no empty deques (handlers/ws_wire.py).
        connection, protocol = handler.connection, handler.ws_connection
        for _ in range(100):
            if connection._task is None:
                break
            await asyncio.sleep(0.01)
        assert connection._task is None
        assert protocol._pending == b""
        assert len(protocol.__dict__) <= SHARED_KEY_DICT_MAX, sorted(protocol.__dict__)
        stream = protocol.stream
        assert not isinstance(stream._write_futures, collections.deque)
        assert not isinstance(stream._write_buffer._buffers, collections.deque)
        # The worker's task is gone but the request's coroutine chain too: nothing awaits the
        # reading (it is callbacks), so no task of this socket is left.
        names = [t.get_name() for t in asyncio.all_tasks()]
        assert f"ws-{connection.conn_id}" not in names
        frames = [getattr(t.get_coro(), "cr_frame", None) for t in asyncio.all_tasks()]
        assert not any(f is not None and f.f_locals.get("self") is handler for f in frames)
    finally:
        await sock.aclose()
