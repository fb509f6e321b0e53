"""Worker threads for independent tasks: the one place where a job's threads are used.

A search hands a list of independent tasks (quenches of one cycle, pair attempts of one connect
cycle) to ``map_tasks``; the tasks read the database as it stood when the cycle began and write
nothing, and their results come back in task order, so the outcome never depends on timing or on
the number of threads. The compiled kernels release the GIL, so tasks run truly side by side.
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


def serial_blas(done=[]) -> None:  # noqa: B006 (once per process)
    """BLAS single-threaded (NumPy's and SciPy's OpenBLAS, also as the compiled kernels call it):
    a job's threads are the workers. Threaded BLAS splits its sums by thread count, so results
    would depend on the machine (MNIST's input metric took other bits under OMP_NUM_THREADS=2,
    measured); and its threads spinning beside the workers made small eigendecompositions ten
    times slower (measured)."""
    if not done:
        import scipy.linalg.cython_blas  # noqa: F401  (loaded before the limit, so that it applies)
        from threadpoolctl import threadpool_limits

        threadpool_limits(1, user_api="blas")
        done.append(True)


def _mark():
    _inside.flag = True


def map_tasks(fn: Callable, items: Iterable) -> list:
    """``[fn(item) for item in items]``, computed by the worker threads; results in item order.

    A task that maps tasks of its own (a pair attempt's transition-state guesses, a transition
    state's two push-offs) queues them behind every waiting task and runs them itself, in order,
    unless an idle worker has already taken one: then it waits for that one. So a cycle's last,
    longest task is shared out instead of holding up the cycle, and no thread ever waits for a
    task that nobody runs."""
    items = list(items)
    if _state["threads"] == 1 or len(items) < 2:
        return [fn(item) for item in items]
    if _state["pool"] is None:
        _state["pool"] = ThreadPoolExecutor(_state["threads"], thread_name_prefix="losslandscapes", initializer=_mark)
    if not getattr(_inside, "flag", False):
        return list(_state["pool"].map(fn, items))
    queued = [_state["pool"].submit(fn, item) for item in items[1:]]
    try:
        out = [fn(items[0])]
        for item, fut in zip(items[1:], queued):
            out.append(fn(item) if fut.cancel() else fut.result())
    except BaseException:
        for fut in queued:  # nobody needs them now
            fut.cancel()
        raise
    return out
