"""The log follower validates each update once: an entry at a seq this node's own publish was
acknowledged with (a new message) holds the bytes that publish validated and is not walked again,
nor is an entry signed by a node of this deployment (`Collab-Sig`, bus/doc_log.py); every other
entry -- whatever its other headers say -- is validated, and a poison one is skipped."""

from __future__ import annotations

from typing import Any

from bus.doc_log import DocLog, LogEntry, signing_key
from live.log_follower import LogFollower
from live.merged_doc import POISON_UPDATES

GARBAGE = b"\xff\xff\xff\x7f not an update"


class RecordingSink:
    def __init__(self) -> None:
        self.applied_entries: list[LogEntry | None] = []

    def reset(self, snapshot: Any) -> None: ...

    def applied(self, entry: LogEntry | None) -> None:
        self.applied_entries.append(entry)

    def caught_up(self, snapshot: Any) -> None: ...

    async def wait_applied(self, seq: int, timeout_s: float) -> bool:
        return True


KEY = signing_key("a deployment's JWT secret, 32+ characters")


def follower(sink: RecordingSink, key: bytes | None = KEY) -> LogFollower:
    doc_log = DocLog(None, "n1", key)  # type: ignore[arg-type]  # no NATS: vouching only
    return LogFollower("doc", db=None, doc_log=doc_log, node_id="n1", sink=sink)


def signed(seq: int, update: bytes, *, doc_id: str = "doc", key: bytes | None = KEY) -> LogEntry:
    signature = DocLog(None, "n1", key)._signature(doc_id, update)  # type: ignore[arg-type]
    return LogEntry(seq=seq, update=update, node="n2", client="c2", signature=signature)


def poison_count() -> float:
    return POISON_UPDATES.labels("n1")._value.get()


def test_own_new_messages_are_trusted_by_seq_not_by_headers() -> None:
    sink = RecordingSink()
    log = follower(sink)
    before = poison_count()
    # A new message this node published: its seq came back in our PubAck, the bytes are ours.
    # (Garbage here only shows the walk is skipped; a real publish validated them first.)
    log.expect(1, validated=True)
    own = LogEntry(seq=1, update=GARBAGE, node="n1", client="c1")
    log.apply(own)
    # Headers claiming this node, at a seq no publish of ours got: validated, and skipped.
    log.apply(LogEntry(seq=2, update=GARBAGE, node="n1", client="c1"))
    # A duplicate PubAck's seq may hold someone else's message under the same msg id.
    log.expect(3, validated=False)
    log.apply(LogEntry(seq=3, update=GARBAGE, node="n1", client="c1"))
    assert sink.applied_entries == [own, None, None]
    assert poison_count() == before + 2
    assert log.last_applied_seq == 3
    assert not log._validated


def test_trusted_seqs_passed_over_by_a_snapshot_are_forgotten() -> None:
    log = follower(RecordingSink())
    log.expect(5, validated=True)
    log.expect(6, validated=True)
    log.last_applied_seq = 5  # a snapshot caught the room up past seq 5 without applying it
    assert not log.stalled(0.0)
    assert log._validated == {6}


def test_entries_signed_for_this_document_are_not_walked_and_forgeries_are() -> None:
    sink = RecordingSink()
    log = follower(sink)
    before = poison_count()
    # Signed by a node of this deployment for this document: validated before it was published.
    # (Garbage here only shows the walk is skipped.)
    good = signed(1, GARBAGE)
    log.apply(good)
    forgeries = [
        signed(2, GARBAGE, doc_id="another-doc"),  # a signed update copied to another document
        LogEntry(seq=3, update=GARBAGE + b"!", signature=good.signature),  # bytes changed
        signed(4, GARBAGE, key=signing_key("another deployment's secret, 32+ chars")),
        LogEntry(seq=5, update=GARBAGE, signature="0" * 64),
        LogEntry(seq=6, update=GARBAGE, signature="not hex at all"),
    ]
    for entry in forgeries:
        log.apply(entry)
    assert sink.applied_entries == [good, None, None, None, None, None]
    assert poison_count() == before + len(forgeries)


def test_without_a_key_every_signed_entry_is_walked() -> None:
    sink = RecordingSink()
    log = follower(sink, key=None)
    before = poison_count()
    log.apply(signed(1, GARBAGE))
    assert sink.applied_entries == [None] and poison_count() == before + 1
    assert signing_key("") is None


async def test_an_awaited_echo_is_the_same_msg_id_with_the_same_bytes() -> None:
    """A room publishing without a PubAck waits for its update to come back: only an entry with
    its msg id *and* its bytes is that (then it is not walked: those bytes were validated);
    another message under the msg id -- someone else's first, a forgery -- is walked and leaves
    the publish waiting (JetStream deduplicated it; `DocLog.publish` will say so)."""
    sink = RecordingSink()
    log = follower(sink)
    before = poison_count()
    echo = log.await_echo("m1", GARBAGE)
    assert echo is not None
    assert log.await_echo("m1", GARBAGE) is None  # one waiter per msg id
    other = LogEntry(seq=1, update=GARBAGE + b"!", msg_id="m1", node="n1", client="c1")
    log.apply(other)
    assert not echo.done()
    own = LogEntry(seq=2, update=GARBAGE, msg_id="m1", node="n1", client="c1")
    log.apply(own)
    assert echo.result() == 2
    assert sink.applied_entries == [None, own]
    assert poison_count() == before + 1
    # Resolved echoes are gone; a forgotten one (timed out) is too, and its msg id is free again.
    assert not log._echoes
    assert log.await_echo("m2", GARBAGE) is not None
    log.forget_echo("m2")
    assert not log._echoes
