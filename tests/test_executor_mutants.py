"""Fast tests of what the sweep executors promise, written against the mutants tests/test_executors.py let through
(tools/mutate.py maps mlcli/sweeps/executors.py and dask_cluster.py to this file first).

The interface (the queue, the cap of `workers` tasks at once, timeouts, in_flight) is tested on a thread backend
defined here; make_executor's mapping of options with the Dask constructors replaced by recorders; the process pool's
bookkeeping of dead workers (who is charged, attempts = times started, the budget, the causes) and close() on real
spawn pools; the Dask result paths on a fake client, and a LocalCluster's settings on one real cluster for the
module. Task functions the workers import are in tests/executor_tasks.py.
"""

from __future__ import annotations

import os
import queue
import re
import signal
import sys
import threading
import time
from multiprocessing import resource_tracker
from pathlib import Path
from types import SimpleNamespace

import executor_tasks as tasks
import numpy as np
import psutil
import pytest

from mlcli.errors import ConfigError
from mlcli.sweeps import dask_cluster, executors
from mlcli.sweeps.dask_cluster import DaskExecutor
from mlcli.sweeps.executors import (
    JOIN_TIMEOUT,
    Executor,
    ProcessExecutor,
    SerialExecutor,
    TaskResult,
    _call,
    make_executor,
)

pytestmark = pytest.mark.timeout(60)  # a mutant that hangs fails here, not after the suite's 120 s


def results_of(ex, timeout: float = 40.0) -> dict[str, TaskResult]:
    """Every result by key; each next_result(timeout) must return one (a long timeout waits through recoveries)."""
    out: dict[str, TaskResult] = {}
    deadline = time.monotonic() + timeout
    while ex.in_flight():
        assert time.monotonic() < deadline, "tasks did not finish in time"
        result = ex.next_result(timeout=timeout)
        assert result is not None, "next_result gave up before its timeout"
        assert result.key not in out, f"{result.key} returned twice"
        out[result.key] = result
    return out


def wait_until(condition, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "condition never held"
        time.sleep(0.01)


def lines(path: Path) -> list[str]:
    return path.read_text().split() if path.exists() else []


def environment() -> dict[str, str]:
    """os.environ without the variable pytest sets per test phase."""
    return {k: v for k, v in os.environ.items() if k != "PYTEST_CURRENT_TEST"}


def children() -> set[int]:
    """This process's descendants, without multiprocessing's resource tracker (one per interpreter, by design)."""
    tracker = getattr(resource_tracker._resource_tracker, "_pid", None)
    return {p.pid for p in psutil.Process().children(recursive=True) if p.pid != tracker}


# --- the interface, on a thread backend ---------------------------------------------------------------------


REJECT = object()  # a task the thread backend decides without running it (as a spent retry budget is)


class ThreadBackend(Executor):
    """Each task runs in a thread of its own; `wake()` makes the next _wait return None (as after a recovery)."""

    def __init__(self, workers: int) -> None:
        super().__init__(workers)
        self.done: queue.Queue = queue.Queue()
        self.started: list[str] = []
        self.peak = 0

    def wake(self) -> None:
        self.done.put(None)

    def _start(self, task) -> None:
        if task.fn is REJECT:
            del self._running[task.id]
            self._ready.append(TaskResult(task.key, error="rejected"))
            return
        task.attempts = 1
        self.started.append(task.key)
        self.peak = max(self.peak, len(self._running))
        threading.Thread(target=lambda: self.done.put((task, _call(task.fn, *task.args))), daemon=True).start()

    def _wait(self, timeout):
        try:
            item = self.done.get(timeout=timeout)
        except queue.Empty:
            return None
        if item is None:
            return None
        task, (ok, payload) = item
        return self._finish(task, ok, payload)


def nap(seconds: float, value=None):
    time.sleep(seconds)
    return value


def test_next_result_waits_at_most_its_timeout_and_returns_a_result_that_comes_within_it():
    ex = ThreadBackend(workers=1)
    ex.submit("slow", nap, 0.6, "slow")
    start = time.monotonic()
    assert ex.next_result(timeout=0.1) is None
    assert time.monotonic() - start < 0.4
    result = ex.next_result(timeout=5.0)
    assert result == TaskResult("slow", value="slow") and time.monotonic() - start < 2.0
    ex.submit("again", nap, 0.05, "again")
    assert ex.next_result() == TaskResult("again", value="again")  # no timeout: as long as it takes
    assert ex.next_result() is None and ex.next_result(timeout=0.05) is None  # nothing in flight


def test_a_wake_up_without_a_result_does_not_end_next_result_before_its_timeout():
    ex = ThreadBackend(workers=1)
    ex.submit("t", nap, 0.2, "t")
    ex.wake()
    assert ex.next_result(timeout=5.0) == TaskResult("t", value="t")
    ex.submit("u", nap, 0.1, "u")
    ex.wake()
    assert ex.next_result() == TaskResult("u", value="u")


def test_at_most_workers_tasks_run_at_once_in_submit_order_and_in_flight_counts_every_state():
    ex = ThreadBackend(workers=2)
    ex.submit("rejected", REJECT)
    for i in range(4):
        ex.submit(f"t{i}", nap, 0.05, i)
    assert ex.in_flight() == 5  # 1 decided, 2 running, 2 queued
    assert ex.next_result(timeout=1.0) == TaskResult("rejected", error="rejected")
    results = results_of(ex)
    assert {k: r.value for k, r in results.items()} == {f"t{i}": i for i in range(4)}
    assert ex.peak == 2 and ex.started == ["t0", "t1", "t2", "t3"]


def test_close_drops_the_queue_and_refuses_new_tasks():
    ex = ThreadBackend(workers=1)
    for i in range(3):
        ex.submit(f"t{i}", nap, 0.2, i)
    ex.close()
    assert ex.in_flight() == 1  # the running one; the two queued are dropped
    with pytest.raises(RuntimeError, match="closed executor"):
        ex.submit("late", nap, 0.0)
    assert ex.started == ["t0"]


def test_a_backend_without_wait_fails_loudly_instead_of_waiting_forever():
    ex = Executor(workers=1)
    ex.submit("t", nap, 0.0)
    with pytest.raises(NotImplementedError):
        ex.next_result(timeout=0.1)


def test_serial_runs_one_task_at_a_time_and_cancel_pending_keeps_only_the_one_handed_out():
    ex = SerialExecutor()
    ran = []
    for i in range(3):
        ex.submit(f"t{i}", ran.append, i)
    ex.cancel_pending()
    assert ex.in_flight() == 1
    assert ex.next_result() == TaskResult("t0", value=None, attempts=1) and ran == [0]
    assert ex.next_result(timeout=0.1) is None and ex.in_flight() == 0


def test_a_task_result_counts_one_attempt_unless_told_otherwise():
    assert TaskResult("k", value=1) == TaskResult("k", value=1, attempts=1)


def test_usable_cores_follows_the_affinity_mask_and_falls_back_to_the_cpu_count(monkeypatch):
    saved = os.sched_getaffinity(0)
    try:
        os.sched_setaffinity(0, {min(saved)})
        assert executors.usable_cores() == 1
    finally:
        os.sched_setaffinity(0, saved)
    monkeypatch.delattr(os, "sched_getaffinity")
    monkeypatch.setattr(os, "cpu_count", lambda: 4)
    assert executors.usable_cores() == 4
    monkeypatch.setattr(os, "cpu_count", lambda: None)
    assert executors.usable_cores() == 1


@pytest.mark.parametrize(("cores", "workers", "threads"), [(3, 2, 1), (5, 2, 2), (2, 1, 2), (1, 4, 1)])
def test_pool_workers_get_an_integer_share_of_the_cores(cores, workers, threads, monkeypatch):
    monkeypatch.setattr(executors, "usable_cores", lambda: cores)
    ex = ProcessExecutor(workers, max_retries=0)
    assert ex.threads == threads and str(ex.threads) == str(threads)  # what MLCLI_NUM_THREADS is set to
    ex.close()  # no pool was started: nothing to stop


# --- make_executor ------------------------------------------------------------------------------------------


@pytest.fixture
def dask_recorders(monkeypatch):
    """DaskExecutor.local / .connect replaced by functions that return what they were asked for."""
    monkeypatch.setattr(DaskExecutor, "local", staticmethod(lambda workers, max_retries: ("local", workers,
                                                                                           max_retries)))
    monkeypatch.setattr(DaskExecutor, "connect", staticmethod(lambda **kw: ("connect", kw)))


def test_make_executor_maps_each_option_to_its_backend(dask_recorders):
    cores = executors.usable_cores()
    serial = make_executor("serial", workers=1)
    assert isinstance(serial, SerialExecutor) and serial.workers == 1
    default = make_executor()
    assert isinstance(default, ProcessExecutor) and (default.workers, default.max_retries) == (cores, 3)
    one = make_executor("processes", workers=1, max_retries=0)
    assert isinstance(one, ProcessExecutor) and (one.workers, one.max_retries) == (1, 0)
    assert make_executor("dask") == ("local", cores, 3)
    assert make_executor("dask", workers=1, max_retries=0) == ("local", 1, 0)
    assert make_executor("tcp://10.0.0.1:8786", workers=2) == ("connect", {"address": "tcp://10.0.0.1:8786",
                                                                           "workers": 2})
    assert make_executor("tls://h:1") == ("connect", {"address": "tls://h:1", "workers": None})
    for scheduler in ("processes", "dask"):
        assert make_executor(scheduler, scheduler_file="s.json") == (
            "connect", {"scheduler_file": "s.json", "workers": None})


@pytest.mark.parametrize(("kwargs", "message"), [
    ({"scheduler": "threads"}, "--scheduler must be one of serial, processes, dask or the address"),
    ({"scheduler": "tcp://"}, "--scheduler must be one of"),
    ({"workers": 0}, "--workers must be an int >= 1"),
    ({"workers": True}, "--workers must be an int >= 1"),
    ({"workers": "2"}, "--workers must be an int >= 1"),
    ({"scheduler": "serial", "workers": 2}, "--scheduler serial runs one task at a time"),
    ({"max_retries": -1}, "max_retries must be an int >= 0"),
    ({"max_retries": True}, "max_retries must be an int >= 0"),
    ({"max_retries": "1"}, "max_retries must be an int >= 0"),
    ({"scheduler": "serial", "scheduler_file": "x.json"}, "--scheduler-file connects to an existing Dask cluster"),
])
def test_make_executor_rejects_bad_options(kwargs, message, dask_recorders):
    with pytest.raises(ConfigError, match="^" + re.escape(message)):
        make_executor(**kwargs)


@pytest.mark.parametrize("scheduler", ["dask", "tcp://127.0.0.1:8786"])
def test_without_distributed_the_error_names_the_option_given(scheduler, monkeypatch):
    monkeypatch.setitem(sys.modules, "distributed", None)
    with pytest.raises(ConfigError, match=f"^--scheduler {scheduler} needs Dask's `distributed`"):
        make_executor(scheduler)


# --- Dask: the result paths on a fake client ------------------------------------------------------------------


class FakeFuture:
    def __init__(self, key: str) -> None:
        self.key, self.status, self.callbacks, self.released = key, "pending", [], False
        self._value: object = None
        self._exc: BaseException | None = None

    def add_done_callback(self, fn) -> None:
        self.callbacks.append(fn)

    def end(self, status: str, value: object = None, exc: BaseException | None = None) -> None:
        self.status, self._value, self._exc = status, value, exc
        for fn in self.callbacks:
            fn(self)

    def result(self, timeout=None):
        self.waited = timeout
        if isinstance(self._value, BaseException):
            raise self._value
        return self._value

    def exception(self):
        return self._exc

    def release(self) -> None:
        self.released = True


class FakeClient:
    """What DaskExecutor uses of distributed.Client; `suspicious` is the scheduler's count per task key."""

    def __init__(self, nthreads: dict[str, int]) -> None:
        self.threads, self.futures, self.suspicious = nthreads, [], {}
        self.looks, self.closed, self.scattered = 0, False, []
        self.scheduler_fails = False

    def nthreads(self) -> dict[str, int]:
        self.looks += 1
        return dict(self.threads)

    def submit(self, fn, *args, key: str, pure: bool) -> FakeFuture:
        self.futures.append(FakeFuture(key))
        return self.futures[-1]

    def scatter(self, items, broadcast: bool, hash: bool):
        self.scattered.append(items)
        return [FakeFuture(f"scattered-{i}") for i, _ in enumerate(items)]

    def run_on_scheduler(self, fn):
        if self.scheduler_fails:
            raise RuntimeError("the scheduler does not run functions")
        known = {k: SimpleNamespace(suspicious=n) for k, n in self.suspicious.items()}
        return fn(dask_scheduler=SimpleNamespace(tasks=known))

    def close(self, timeout=None) -> None:
        self.closed = timeout


def submitted(ex: DaskExecutor, client: FakeClient, *keys: str) -> list[FakeFuture]:
    for key in keys:
        ex.submit(key, nap, 0.0)
    return client.futures[-len(keys):]


def test_dask_results_values_errors_and_attempts_from_the_scheduler():
    from distributed import KilledWorker

    client = FakeClient({"w1": 8})
    ex = DaskExecutor(client)
    ok, retried, forgotten, unfetchable, failed, killed, lost = submitted(
        ex, client, "ok", "retried", "forgotten", "unfetchable", "failed", "killed", "lost")
    assert ok.key.startswith("ok-")
    client.suspicious = {ok.key: 0, retried.key: 2, unfetchable.key: 0}
    ok.end("finished", (True, 7))
    retried.end("finished", (True, 8))
    forgotten.end("finished", (True, 9))
    unfetchable.end("finished", OSError("the worker holding it is gone"))
    failed.end("error", exc=ValueError("bad lr\nmore"))
    killed.end("error", exc=KilledWorker("k", SimpleNamespace(address="tcp://127.0.0.1:4"), 2))
    lost.end("cancelled")
    results = results_of(ex, timeout=5)
    assert results == {
        "ok": TaskResult("ok", value=7, attempts=1),
        "retried": TaskResult("retried", value=8, attempts=3),
        "forgotten": TaskResult("forgotten", value=9, attempts=1),
        "unfetchable": TaskResult("unfetchable", error="could not fetch the result: OSError: the worker holding "
                                                       "it is gone"),
        "failed": TaskResult("failed", error="ValueError: bad lr"),
        "killed": TaskResult("killed", error="worker died 3 times (Dask KilledWorker, last on tcp://127.0.0.1:4)",
                             attempts=3),
        "lost": TaskResult("lost", error="Dask cancelled the task (the scheduler restarted or lost it)"),
    }
    assert all(f.released for f in (ok, retried, forgotten, unfetchable, failed, killed, lost))
    assert ok.waited == unfetchable.waited == 60  # a lost result is recomputed: waited for, but not forever
    client.scheduler_fails = True
    (late,) = submitted(ex, client, "late")
    late.end("finished", (True, 1))
    assert ex.next_result(timeout=5) == TaskResult("late", value=1, attempts=1)
    a, _ = submitted(ex, client, "a", "b")
    client.suspicious = {a.key: 1}
    client.scheduler_fails = False
    a.end("finished", (True, 1))
    assert ex.next_result(timeout=5) == TaskResult("a", value=1, attempts=2)


def test_dask_broadcast_scatters_the_object_as_one_item_even_a_list():
    client = FakeClient({"w": 1})
    ex = DaskExecutor(client)
    handle = ex.broadcast([1, 2, 3])
    assert client.scattered == [[[1, 2, 3]]] and handle.key == "scattered-0"


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def monotonic(self) -> float:
        return self.now


def test_an_existing_cluster_is_asked_its_size_every_refresh_interval_while_tasks_wait(monkeypatch):
    clock = Clock()
    monkeypatch.setattr(dask_cluster, "time", clock)
    client = FakeClient({"w1": 1})
    ex = DaskExecutor(client)  # no cap: as many tasks at once as the cluster has threads
    assert (ex.workers, client.looks) == (1, 1)
    first, *_ = submitted(ex, client, "t0", "t1", "t2")
    assert len(client.futures) == 1
    client.threads = {"w1": 1, "w2": 2}  # the cluster scaled up
    clock.now += 4.0
    assert ex.next_result(timeout=0) is None and client.looks == 1  # not yet: every 5 s
    clock.now += 1.5
    assert ex.next_result(timeout=0) is None and client.looks == 2 and ex.workers == 3
    first.end("finished", (True, 0))
    assert ex.next_result(timeout=5).key == "t0" and len(client.futures) == 3
    for f in client.futures[1:]:
        f.end("finished", (True, 1))
    results_of(ex, timeout=5)
    clock.now += 10 * dask_cluster.REFRESH_EVERY
    (last,) = submitted(ex, client, "last")
    assert ex.next_result(timeout=0) is None and client.looks == 2  # nothing waits: no need to look
    last.end("finished", (True, 1))
    results_of(ex, timeout=5)


@pytest.mark.parametrize(("threads", "cap", "at_once"), [({"w": 2}, 3, 2), ({"w": 2}, 1, 1), ({}, None, 1),
                                                         ({"w": 1}, None, 1)])
def test_tasks_at_once_on_an_existing_cluster_are_its_threads_capped_by_workers(threads, cap, at_once):
    client = FakeClient(threads)
    ex = DaskExecutor(client, workers=cap)
    submitted(ex, client, "a", "b", "c", "d")
    assert len(client.futures) == at_once


def test_a_local_cluster_keeps_its_size_and_is_not_polled(monkeypatch):
    clock = Clock()
    monkeypatch.setattr(dask_cluster, "time", clock)
    client = FakeClient({"w1": 1, "w2": 1})
    ex = DaskExecutor(client, cluster=SimpleNamespace(close=lambda timeout: None), workers=2)
    first = submitted(ex, client, "a", "b", "c")[0]
    client.threads = {"w1": 1}  # a worker restarting
    clock.now += 10 * dask_cluster.REFRESH_EVERY
    first.end("finished", (True, 1))
    assert ex.next_result(timeout=5).key == "a" and client.looks == 0 and len(client.futures) == 3


def test_dask_close_closes_the_client_and_cluster_removes_the_scratch_and_restores_the_environment(tmp_path,
                                                                                                  monkeypatch):
    monkeypatch.setenv("MLCLI_T_SET", "changed")
    monkeypatch.setenv("MLCLI_T_UNSET", "added")
    closed = []
    scratch = tmp_path / "scratch"
    scratch.mkdir()
    client = FakeClient({"w": 1})
    ex = DaskExecutor(client, cluster=SimpleNamespace(close=lambda timeout: closed.append(timeout)), workers=1,
                      tmp=scratch, environ={"MLCLI_T_SET": "before", "MLCLI_T_UNSET": None})
    ex.close()
    # each part gets 10 s to close (a Ctrl-C'd sweep ends within that), not less (a LocalCluster needs seconds)
    assert client.closed == 10 and closed == [10] and not scratch.exists()
    assert os.environ["MLCLI_T_SET"] == "before" and "MLCLI_T_UNSET" not in os.environ
    ex.close()
    assert closed == [10]
    gone = DaskExecutor(FakeClient({"w": 1}), cluster=SimpleNamespace(close=lambda timeout: None), workers=1,
                        tmp=tmp_path / "already-cleaned", environ={})
    gone.close()  # a temp cleaner removed the scratch folder first: close still works
    connected = DaskExecutor(FakeClient({"w": 1}))
    connected.close()
    assert connected._client.closed


def test_connecting_checks_the_scheduler_file_and_reports_an_unreachable_scheduler(tmp_path, monkeypatch):
    calls = []

    def client(**kwargs):
        calls.append(kwargs)
        if kwargs.get("address") == "tcp://nobody:1":
            raise OSError("connection refused")
        return FakeClient({"w": 1})

    monkeypatch.setitem(sys.modules, "distributed", SimpleNamespace(Client=client))
    with pytest.raises(ConfigError, match=r"^--scheduler tcp://nobody:1: no Dask scheduler answered within 10 s "
                                          r"\(OSError: connection refused\); check the address"):
        make_executor("tcp://nobody:1")
    with pytest.raises(ConfigError, match=r"--scheduler-file .*missing.json: no such file"):
        make_executor(scheduler_file=str(tmp_path / "missing.json"))
    (tmp_path / "s.json").write_text("{}")
    ex = make_executor(scheduler_file=str(tmp_path / "s.json"))
    assert isinstance(ex, DaskExecutor) and ex.workers == 1
    assert calls[-1] == {"scheduler_file": str(tmp_path / "s.json"), "timeout": "10s", "set_as_default": False}
    assert calls[0]["timeout"] == "10s" and len(calls) == 2


def test_the_sigint_plugin_ignores_ctrl_c_on_the_main_thread_only():
    plugin = dask_cluster._ignore_sigint_plugin()
    saved = signal.getsignal(signal.SIGINT)
    try:
        plugin.setup(None)
        assert signal.getsignal(signal.SIGINT) is signal.SIG_IGN
        signal.signal(signal.SIGINT, saved)
        errors = []
        thread = threading.Thread(target=lambda: errors.append(plugin.setup(None)))
        thread.start()
        thread.join()
        assert errors == [None] and signal.getsignal(signal.SIGINT) is saved  # signal.signal would raise there
    finally:
        signal.signal(signal.SIGINT, saved)


def test_a_local_cluster_that_fails_to_start_leaves_nothing_behind(tmp_path, monkeypatch):
    import distributed

    def broken(**kwargs):
        raise OSError("no free port")

    monkeypatch.setattr(distributed, "LocalCluster", broken)
    monkeypatch.setattr("tempfile.tempdir", str(tmp_path))
    environ = dict(os.environ)
    with pytest.raises(OSError, match="no free port"):
        make_executor("dask", workers=1)
    assert list(tmp_path.iterdir()) == [] and dict(os.environ) == environ


# --- the process pool: dead workers, the budget, close ------------------------------------------------------


def test_a_killed_worker_is_retried_within_the_budget_and_other_failures_are_that_tasks_error(tmp_path):
    with make_executor("processes", workers=1, max_retries=1) as ex:
        ex.submit("victim", tasks.kill_self_once, str(tmp_path / "killed"), 42)
        ex.submit("lock", tasks.unpicklable_result)
        ex.submit("fit", tasks.seeded_fit, 3)
        results = results_of(ex)
    assert results["victim"] == TaskResult("victim", value=42, attempts=2)
    assert results["lock"].value is None and results["lock"].attempts == 1
    assert results["lock"].error.startswith("TypeError: cannot pickle '_thread.lock' object")
    assert results["fit"].error is None and results["fit"].attempts == 1
    assert np.array_equal(results["fit"].value["w"], tasks.seeded_fit(3)["w"])


def test_only_the_task_whose_worker_died_is_charged_the_others_rerun_and_the_new_pool_is_kept(tmp_path):
    log = tmp_path / "other"
    with make_executor("processes", workers=2, max_retries=0) as ex:
        # both workers up first: the pool watches a worker it spawned for a later submit only after a result
        # (CPython wakes its manager thread before spawning), and the test needs the victim's death seen at once
        ex.submit("warm-1", tasks.getpid)
        ex.submit("warm-2", tasks.getpid)
        results_of(ex)
        ex.submit("victim", tasks.kill_self_when, str(log))  # dies once "other" has started
        ex.submit("other", tasks.block_first_run, str(log), "other")
        results = results_of(ex)
        # the broken pool also reported "other" (submitted after the victim) as failed, after its recovery had
        # already resubmitted it: that stale report must not break the new pool
        ex.submit("after", tasks.getpid)
        after = results_of(ex)["after"]
    assert results["victim"] == TaskResult("victim", error="worker died 1 times (killed by signal 9, SIGKILL)")
    assert results["other"] == TaskResult("other", value="other", attempts=2)  # started twice, charged nothing
    assert len(lines(log)) == 2 and after.value == int(lines(log)[1])


def test_an_idle_worker_dying_charges_no_running_task(tmp_path):
    log = tmp_path / "t"
    with make_executor("processes", workers=2, max_retries=0) as ex:
        ex.submit("t", tasks.block_first_run, str(log), "t")
        wait_until(lambda: lines(log))
        ex.submit("pid", tasks.getpid)
        idle = ex.next_result(timeout=20)
        assert idle.key == "pid" and str(idle.value) not in lines(log)
        os.kill(idle.value, signal.SIGKILL)
        results = results_of(ex)
    assert results["t"] == TaskResult("t", value="t", attempts=2)


def test_a_worker_stopped_from_outside_or_exiting_cleanly_is_a_death_with_its_cause(tmp_path):
    log = tmp_path / "t"
    with make_executor("processes", workers=1, max_retries=0) as ex:
        ex.submit("t", tasks.block_first_run, str(log), "t")
        wait_until(lambda: lines(log))
        os.kill(int(lines(log)[0]), signal.SIGTERM)
        assert results_of(ex) == {"t": TaskResult("t", error="worker died 1 times (killed by signal 15, SIGTERM)")}
        ex.submit("exit", tasks.exit_with, 0)
        assert results_of(ex) == {"exit": TaskResult("exit", error="worker died 1 times (exit code 0)")}


def test_workers_that_die_before_running_anything_spend_the_default_budget_and_end_the_task():
    with make_executor("processes", workers=1) as ex:
        ex.submit("t", tasks.with_shared, ex.broadcast(tasks.LoadsBadly()), 1)
        assert results_of(ex) == {"t": TaskResult("t", error="worker died 4 times (exit code 1)", attempts=1)}


def test_a_pool_that_broke_while_idle_takes_the_next_task_without_charging_it(tmp_path):
    with make_executor("processes", workers=1, max_retries=0) as ex:
        ex.submit("pid", tasks.getpid)
        os.kill(results_of(ex)["pid"].value, signal.SIGKILL)
        wait_until(lambda: ex._pool._broken)  # the next submit meets a broken pool
        ex.submit("fit", tasks.seeded_fit, 1)
        result = results_of(ex)["fit"]
    assert result.error is None and result.attempts == 1 and result.value["loss"] == tasks.seeded_fit(1)["loss"]


def test_attempts_count_the_times_a_task_started(tmp_path):
    """A task handed to a worker that was still starting when another worker died did not start: not counted."""
    log = tmp_path / "b"
    with make_executor("processes", workers=2, max_retries=1) as ex:
        ex.submit("warm", tasks.getpid)
        results_of(ex)  # one worker is up and idle: the victim goes to it, "b" waits for a second one to spawn
        ex.submit("victim", tasks.kill_self_once, str(tmp_path / "killed"), 42)
        ex.submit("b", tasks.sleep_and_record, 0.0, str(log), "b")
        results = results_of(ex)
    assert results["victim"] == TaskResult("victim", value=42, attempts=2)
    assert results["b"] == TaskResult("b", value="b", attempts=len(lines(log)))


def test_a_late_broadcast_replaces_the_pool_once_and_the_new_pool_is_kept():
    first, second = np.ones(10), np.full(5, 2.0)
    with make_executor("processes", workers=1) as ex:
        ex.submit("a", tasks.shared_sum_and_pid, ex.broadcast(first))
        late = ex.broadcast(second)
        ex.submit("b", tasks.shared_sum_and_pid, late)
        ex.submit("c", tasks.shared_sum_and_pid, late)
        results = {k: r.value for k, r in results_of(ex).items()}
    assert results["a"][0] == 10.0 and results["b"][0] == results["c"][0] == 10.0
    assert results["b"][1] == results["c"][1] != results["a"][1]


def test_close_gives_busy_workers_join_timeout_then_stops_them_and_leaves_no_process_or_thread(tmp_path):
    """JOIN_TIMEOUT (2 s) in all, not per worker: three busy workers, a bit over 2 s."""
    before, threads = children(), set(threading.enumerate())
    ex = make_executor("processes", workers=3)
    for name in ("a", "b", "c"):
        ex.submit(name, tasks.block_first_run, str(tmp_path / name), name, 10.0)
    wait_until(lambda: all(lines(tmp_path / name) for name in ("a", "b", "c")), timeout=30)
    start = time.monotonic()
    ex.close()
    took = time.monotonic() - start
    assert JOIN_TIMEOUT == 2.0 and 1.95 <= took < 3.4  # and not longer: Ctrl-C waits for this
    assert children() == before and set(threading.enumerate()) == threads
    ex.close()  # a second close is a no-op


# --- Dask: one real LocalCluster ------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def local():
    """A LocalCluster of 2 workers as if on 3 cores (1 thread each), and os.environ from before it started."""
    environ = environment()
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(dask_cluster, "usable_cores", lambda: 3)
        ex = make_executor("dask", workers=2)
    yield ex, environ
    ex.close()


def test_a_local_cluster_runs_two_worker_processes_of_one_thread_and_leaves_this_process_as_it_was(local):
    import distributed

    ex, environ = local
    assert environment() == environ
    with pytest.raises(ValueError):
        distributed.default_client()  # the executor's client is not made everyone's default
    assert sorted(ex._client.nthreads().values()) == [1, 1]
    for i in range(4):
        ex.submit(f"t{i}", tasks.thread_vars_and_pid)
    seen = {r.value for r in results_of(ex).values()}
    assert {threads for threads, _ in seen} == {("1",) * len(executors.THREAD_VARS)}  # 3 cores // 2 workers
    assert os.getpid() not in {pid for _, pid in seen}


def test_a_dask_broadcast_is_on_every_worker_and_reaches_the_tasks(local):
    ex, _ = local
    data = np.arange(10.0)
    shared = ex.broadcast(data)
    wait_until(lambda: len(ex._client.who_has([shared])[shared.key]) == 2, timeout=5)
    ex.submit("s", tasks.with_shared, shared, 4)
    assert results_of(ex)["s"].value == tasks.with_shared(data, 4)


def test_connecting_to_a_running_scheduler_caps_the_tasks_and_sets_no_default_client(local):
    import distributed

    ex, _ = local
    with make_executor(ex._cluster.scheduler_address, workers=1) as remote:
        assert remote.workers == 1
        remote.submit("a", tasks.seeded_fit, 2)
        assert results_of(remote)["a"].value["loss"] == tasks.seeded_fit(2)["loss"]
        with pytest.raises(ValueError):
            distributed.default_client()
