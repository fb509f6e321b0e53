"""The worker threads: results in task order, and nested tasks shared out without deadlock."""

import threading
import time

import pytest

from losslandscapes import workers


@pytest.fixture
def two_threads():
    workers.set_threads(2)
    yield
    workers.set_threads(1)


def test_nested_tasks_run_in_order_and_an_idle_worker_takes_one(two_threads):
    """Task 0 maps two subtasks, task 1 returns at once: its worker, idle, takes the second subtask
    while task 0's worker runs the first. Subtask 0 waits for subtask 1 (at most 30 s), so it can
    finish first only if another thread runs subtask 1; run inline, both would be on one thread."""
    ran = {}
    second_started = threading.Event()

    def sub(j):
        ran[j] = threading.current_thread().name
        if j == 0:
            second_started.wait(timeout=30)
        else:
            second_started.set()
        return 10 + j

    def task(i):
        return workers.map_tasks(sub, [0, 1]) if i == 0 else i

    assert workers.map_tasks(task, [0, 1]) == [[10, 11], 1]
    assert ran[0] != ran[1]


def test_nested_tasks_of_busy_workers_run_inline(two_threads):
    """Every worker busy with a task that maps subtasks of its own, two levels deep: no thread waits
    for a queued subtask that nobody runs, and the results come back in order."""

    def leaf(k):
        time.sleep(0.01)
        return k

    def mid(j):
        return sum(workers.map_tasks(leaf, range(j, j + 3)))

    def top(i):
        return workers.map_tasks(mid, [10 * i, 10 * i + 5])

    assert workers.map_tasks(top, range(4)) == [[3 * (10 * i) + 3, 3 * (10 * i + 5) + 3] for i in range(4)]


def test_an_error_in_a_nested_task_reaches_the_caller(two_threads):
    def sub(j):
        if j == 1:
            raise ValueError("subtask 1")
        return j

    with pytest.raises(ValueError, match="subtask 1"):
        workers.map_tasks(lambda i: workers.map_tasks(sub, [0, 1, 2]), [0, 1])
