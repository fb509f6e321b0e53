"""Worker threads for independent tasks: the one place where a job's threads are used.

A search hands a list of independent tasks (quenches of one cycle, pair attempts of one connect
cycle) to ``map_tasks``; the tasks read the database as it stood when the cycle began and write
nothing, and their results come back in task order, so the outcome never depends on timing or on
the number of threads. The compiled kernels release the GIL, so tasks run truly side by side. A
task that maps tasks of its own runs them inline (no nested pools).
"""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor
from typing import Callable, Iterable

_state = {"threads": 1, "pool": None}
_inside = threading.local()


def set_threads(n: int) -> None:
    """Use ``n`` worker threads (1: every task in the calling thread)."""
    n = max(1, int(n))
    if n != _state["threads"] and _state["pool"] is not None:
        _state["pool"].shutdown()
        _state["pool"] = None
    _state["threads"] = n


def threads() -> int:
    return _state["threads"]


def _mark():
    _inside.flag = True


def map_tasks(fn: Callable, items: Iterable) -> list:
    """``[fn(item) for item in items]``, computed by the worker threads; results in item order."""
    items = list(items)
    if _state["threads"] == 1 or len(items) < 2 or getattr(_inside, "flag", False):
        return [fn(item) for item in items]
    if _state["pool"] is None:
        _state["pool"] = ThreadPoolExecutor(_state["threads"], thread_name_prefix="losslandscapes", initializer=_mark)
    return list(_state["pool"].map(fn, items))
