"""How often a serving node runs Python's cyclic garbage collector (`COLLAB_GC_GEN0_THRESHOLD`).

CPython collects reference cycles in generations, triggered by allocation counts: with its
defaults (700, 10, 10) a node at 50 rooms x 20 clients ran ~300 young collections and three full
ones in half a minute, and each full collection walks every tracked object of the process -- the
imported modules, the settings, every socket's handler and connection -- with the event loop
stopped: up to 74 ms at a time, a pause every client of the node sees as latency, and ~6 % of the
server's CPU in the collector (perf; bench/FINDINGS.md §6.4).

Once the node has started, `tune_collector` moves everything allocated so far into the permanent
generation (`gc.freeze`: the code and configuration live as long as the process and hold no
garbage), so a full collection walks only what came later, and raises the young generation's
threshold so that the collector runs about thirty times less often. Garbage that is not in a
cycle is freed by reference counting as always; cycles wait a little longer (the memory per idle
connection is in the README's benchmark table). 0 keeps CPython's defaults.
"""

from __future__ import annotations

import gc

from server.settings import Settings

#: Young collections per middle one, and middle ones per full one (CPython's default: 10, 10).
GEN1_THRESHOLD = 20
GEN2_THRESHOLD = 20


def tune_collector(settings: Settings) -> str:
    """Freeze what startup allocated and apply the thresholds; returns what was set."""
    threshold = settings.gc_gen0_threshold
    if threshold <= 0:
        return "default"
    gc.freeze()
    gc.set_threshold(threshold, GEN1_THRESHOLD, GEN2_THRESHOLD)
    return f"frozen {gc.get_freeze_count()} objects, thresholds {gc.get_threshold()}"
