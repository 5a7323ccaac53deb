"""The tail of a document's log as its room applied it: the last entries, with no gap.

Why: the projection refresher re-projects a document a few seconds after this node stored an
update of it, from the state it read last plus the entries after it. Those entries came through
the room's ordered subscription moments earlier; reading them again from JetStream meant a new
ordered consumer per document and period on nats-server, every message pushed and parsed once
more (9-11 % of nats-server's CPU in the benchmark, issue 15, bench/FINDINGS.md §6.8). The room
keeps them here, and the refresher reads the log only when the tail does not reach back far enough.

No gap is the whole point: `take_after()` answers only when the tail holds every entry of the
document from where the caller's state ends to the seq the caller needs, exactly as the log would
return them (the same `LogEntry` objects, headers included: the mention scan reads the author).
Anything that breaks the room's sequence of entries -- a load, a snapshot catch-up, a poison entry
the room skipped -- restarts the tail there, and what lies before is asked of the log again.

Memory: an entry with its headers is ~0.7 KB (the msg id, signature, user and client strings
dominate), so the tail is short -- about one refresh period of edits, since each read forgets what
the reader already holds -- and is kept only while it can be read: for a while after this node
stored an update of the document (`hold`), since only then is this node's refresher told of it. A
room whose edits all come from other nodes, or a node whose refresher is off, keeps nothing.
"""

from __future__ import annotations

import time
from collections import deque

from bus.doc_log import LogEntry

#: Bounds per room: the refresher needs the edits since its last read, about one period's (2 s);
#: more than this between two reads (a long pause, edits from other nodes that this node's
#: refresher is not told of) or a paste bigger than the byte bound is read from the log instead.
MAX_ENTRIES = 256
MAX_BYTES = 256 * 1024


class RecentEntries:
    def __init__(self, max_entries: int = MAX_ENTRIES, max_bytes: int = MAX_BYTES) -> None:
        self.max_entries = max_entries
        self.max_bytes = max_bytes
        self._entries: deque[LogEntry] = deque()
        self._bytes = 0
        self.from_seq = 0  # every entry after this seq up to `last_seq` is held
        self.last_seq = 0
        self._held_until = 0.0  # monotonic time: entries applied later are not kept

    def hold(self, seconds: float) -> None:
        """Keep the entries applied in the next `seconds` (this node just stored an update of the
        document: its refresher will read them)."""
        self._held_until = time.monotonic() + seconds

    def restart(self, seq: int) -> None:
        """The room's state jumped to `seq` (load, snapshot catch-up) or skipped the entry at
        `seq`: nothing before it can be vouched for."""
        self._entries.clear()
        self._bytes = 0
        self.from_seq = self.last_seq = seq

    def add(self, entry: LogEntry) -> None:
        """The next entry the room applied (its seq is past `last_seq`)."""
        if self._held_until < time.monotonic():  # nobody here will read it
            self.restart(entry.seq)
            return
        self._entries.append(entry)
        self._bytes += len(entry.update)
        self.last_seq = entry.seq
        while self._entries and (
            len(self._entries) > self.max_entries or self._bytes > self.max_bytes
        ):
            dropped = self._entries.popleft()
            self._bytes -= len(dropped.update)
            self.from_seq = dropped.seq

    def take_after(self, seq: int, through_seq: int) -> list[LogEntry] | None:
        """Every entry after `seq`, up to the newest held, if that is all of them from `seq` on
        and reaches `through_seq`; None when the log must be read instead.

        The caller holds the document up to `seq`, so the entries up to it are forgotten (one
        reader: this node's projection refresher, whose next read starts past what it takes)."""
        if not self.from_seq <= seq <= self.last_seq or self.last_seq < through_seq:
            return None
        while self._entries and self._entries[0].seq <= seq:
            self._bytes -= len(self._entries.popleft().update)
        self.from_seq = seq
        return list(self._entries)

    def __len__(self) -> int:
        return len(self._entries)
