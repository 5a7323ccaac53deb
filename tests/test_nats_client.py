"""The cheaper NATS header parser (bus/nats_client.py) returns what nats-py's own parser returns,
and a pushed message's stream sequence is read from its reply subject like nats-py reads it."""

from __future__ import annotations

import random

import pytest
from nats.aio.client import Client as NatsPyClient
from nats.aio.msg import Msg

from bus.doc_log import stream_seq
from bus.nats_client import Client, parse_header_lines

EDGE_CASES = [
    b"",
    b"\r\n",
    b"Nats-Msg-Id: abc\r\nCollab-Client: c1\r\nCollab-User: u\r\nCollab-Node: n1\r\n\r\n",
    b"a b: c\r\n",  # whitespace inside a name: skipped
    b" A :  v \r\n",  # surrounding whitespace stripped
    b"A\x1c: v\r\n",  # a separator char counts as whitespace for str.isspace
    b"\xc3\xa9: v\r\n",  # non-ASCII name: skipped
    b"A: \xff\xfe\r\n",  # invalid UTF-8 value: replaced
    b"A:b:c\r\n",  # only the first colon splits
    b"no colon\r\n",
    b"A:\tv\r\n",
    b"A: 1\r\nA: 2\r\n",  # the last wins
    b"\x0bA\x0b: v\r\n",
    b"A\x85: v",
]


@pytest.mark.parametrize("raw", EDGE_CASES)
def test_same_headers_as_nats_py(raw: bytes) -> None:
    assert parse_header_lines(raw) == NatsPyClient._parse_header_lines(raw)


def test_same_headers_as_nats_py_on_random_blocks() -> None:
    rng = random.Random(15)
    alphabet = b" :\r\n\t\x0b\x1cAb\xc3\xa9\x85\xff-"
    for _ in range(5000):
        raw = bytes(rng.choice(alphabet) for _ in range(rng.randint(0, 40)))
        assert parse_header_lines(raw) == NatsPyClient._parse_header_lines(raw), raw


def test_the_client_uses_it() -> None:
    assert Client._parse_header_lines is parse_header_lines


@pytest.mark.parametrize(
    "reply",
    [
        "$JS.ACK.COLLAB_DOCS.consumer-x.1.4242.17.1733150000000000000.0",
        "$JS.ACK.hub.ACCHASH.COLLAB_DOCS.consumer-x.1.4242.17.1733150000000000000.0.rnd",
    ],
)
def test_stream_seq_like_nats_py(reply: str) -> None:
    msg = Msg(_client=None, subject="collab.doc.d.update", reply=reply)  # type: ignore[arg-type]
    assert stream_seq(msg) == msg.metadata.sequence.stream == 4242


def test_the_nats_py_internals_it_relies_on_are_there() -> None:
    """bus/nats_client.py reaches into these; a nats-py upgrade that moves one must fail here."""
    from nats.aio.subscription import Subscription

    sub = Subscription(conn=None, id=1, subject="s")  # type: ignore[arg-type]
    for name in ("_pending_queue", "_pending_size", "_cb", "_stop_processing"):
        assert hasattr(sub, name), name
    client = NatsPyClient()
    for name in (
        "_resp_map",
        "_resp_sub_prefix",
        "_inbox_prefix",
        "_subs",
        "_pending",
        "_pending_data_size",
        "_flush_queue",
        "_transport",
    ):
        assert hasattr(client, name), name
    assert callable(NatsPyClient._init_request_sub)


async def test_a_request_without_a_reply_times_out_and_leaves_nothing_behind(tmp_path) -> None:
    """The request path (every JetStream publish) resolves replies directly; one that gets none
    fails with nats-py's TimeoutError after its timeout and forgets its reply slot."""
    import nats.errors

    from server.embedded import EmbeddedNats

    server = EmbeddedNats(tmp_path / "nats")
    server.start()
    client = Client()
    try:
        await client.connect(server.url)

        async def answer(msg: Msg) -> None:
            await client.publish(msg.reply, b"pong:" + msg.data)

        await client.subscribe("svc.echo", cb=answer)
        replies = [await client.request("svc.echo", str(i).encode(), timeout=2) for i in range(3)]
        assert [r.data for r in replies] == [b"pong:0", b"pong:1", b"pong:2"]

        async def ignore(_msg: Msg) -> None:
            return None

        await client.subscribe("svc.silent", cb=ignore)
        with pytest.raises(nats.errors.TimeoutError):
            await client.request("svc.silent", b"?", timeout=0.2)
        assert client._resp_map == {}
    finally:
        await client.close()
        server.stop()


async def test_a_publish_is_written_at_once_and_in_order(tmp_path) -> None:
    """A publish that finds nothing queued is written by the publishing call (no flusher task
    wake-up per message); a burst still arrives complete and in order."""
    import asyncio

    from server.embedded import EmbeddedNats

    server = EmbeddedNats(tmp_path / "nats")
    server.start()
    client = Client()
    try:
        await client.connect(server.url)
        got: list[bytes] = []
        everything = asyncio.Event()

        async def collect(msg: Msg) -> None:
            got.append(msg.data)
            if len(got) == 3000:
                everything.set()

        await client.subscribe("burst", cb=collect)
        await client.flush()
        written_at_once = []
        for i in range(3000):
            await client.publish("burst", str(i).encode(), headers={"N": str(i)})
            written_at_once.append(client._pending_data_size == 0)
        await asyncio.wait_for(everything.wait(), 10)
        assert got == [str(i).encode() for i in range(3000)]
        assert written_at_once.count(True) > 2900  # nats-py's flusher would leave each pending
    finally:
        await client.close()
        server.stop()
