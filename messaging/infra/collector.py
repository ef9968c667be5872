"""Python's cycle collector, tuned for a long-lived server process.

py-spy on the server during `python -m bench kafka` found a fifth of the time holding the GIL in
`gc_collect_main`: a Produce of 8,000 records allocates tens of thousands of tuples, so the
default threshold (a young collection every 700 allocations) ran hundreds of collections a
second, and every so often a full one walked the whole heap of Django, the URL resolvers and
the protocol classes, which never become garbage. Those full collections are also the pauses
that stretch a websocket event's tail latency.

So, once the application is imported: everything alive is moved out of the collector's sight
(`gc.freeze`: it never becomes garbage), and young collections wait for 10,000 allocations.
Cycles are still collected, in larger, rarer passes; reference counting frees everything else
at once as before. Not 50,000, tried first: there one young collection took 25-80 ms (freeing
tens of thousands of cyclic objects at once), a pause every socket of the process felt; at
10,000 the longest measured during the fan-out bench was 27 ms.
"""

from __future__ import annotations

import gc

YOUNG_THRESHOLD = 10_000
# Collections of the younger generation before an older one is collected (Python's defaults
# are 10 and 10; full collections also wait until the long-lived objects grew by a quarter).
MIDDLE_THRESHOLD = 20
OLD_THRESHOLD = 100

_tuned = {"done": False}


def collector_tune() -> None:
    """Freeze what startup made and raise the thresholds; once per process."""
    if _tuned["done"]:
        return
    _tuned["done"] = True
    gc.collect()
    gc.freeze()
    gc.set_threshold(YOUNG_THRESHOLD, MIDDLE_THRESHOLD, OLD_THRESHOLD)
