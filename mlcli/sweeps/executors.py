"""Run trials somewhere: one interface, three backends (in this process, a local process pool, a Dask cluster).

    with make_executor("processes", workers=2) as ex:
        data = ex.broadcast(big_arrays)                # shipped to each worker once
        for i, seed in enumerate(seeds):
            ex.submit(f"trial-{i}", run_trial, data, config, seed)
        while ex.in_flight():
            result = ex.next_result(timeout=0.5)        # None on timeout: check a Ctrl-C flag, call cancel_pending()
            if result is not None:
                ...                                     # result.key, result.value or result.error, result.attempts

A task is `fn(*args)` with `fn` a top-level (picklable) function; the same call gives the same value on every
backend, since each task carries its own seed and no state is shared between tasks. Every submitted task comes back
from `next_result` exactly once, as a `TaskResult` with its key: its value, or one error line. An exception raised
by `fn` is that task's error at once (`"ValueError: bad lr"`); a task whose worker process dies (SIGKILL, the OOM
killer, a segfault) is run again, up to `max_retries` more times, then becomes `"worker died 4 times (...)"`.

Each executor hands at most `workers` tasks to its backend at a time and keeps the others in its own queue, so
that `cancel_pending` drops exactly the tasks that have not started and running ones finish and are returned.

- `serial`: runs each task inside `next_result`, in submit order (the reference: no processes, no pickling); the
  timeout cannot cut a task short there, and Ctrl-C raises KeyboardInterrupt in the task as in any loop.
- `processes`: `ProcessPoolExecutor` (spawn) with `workers` processes, each limited to cores // workers BLAS and
  mlcli threads; broadcast objects reach each worker once, as arguments of the pool's initializer. A dead worker
  breaks the pool: it is rebuilt and the unfinished tasks are resubmitted; only the task that ran in the dead
  process is charged an attempt (workers report which task they run through a queue).
- `dask`: a `LocalCluster` on 127.0.0.1 (random ports, `workers` processes x 1 thread, scratch files in a temp
  folder removed at close), or an existing cluster reached by a `tcp://` / `tls://` address or a scheduler file.
  Dask itself retries tasks of dead workers (the scheduler's `allowed-failures`, set to `max_retries` for a
  LocalCluster; an existing cluster keeps its own setting) and reports `KilledWorker` when they keep dying.

The Dask backend is in `mlcli.sweeps.dask_cluster`; `distributed` (the optional extra `dask`) and `threadpoolctl`
are imported only inside functions.
"""

from __future__ import annotations

import itertools
import os
import queue
import signal
import time
import uuid
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from mlcli.errors import ConfigError

JOIN_TIMEOUT = 2.0  # seconds close() waits for a worker process to exit before terminating it, then killing it
THREAD_VARS = ("MLCLI_NUM_THREADS", "OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS")


@dataclass
class TaskResult:
    """What came of one submitted task: `value` when it succeeded, else `error` (one line)."""

    key: str
    value: Any = None
    error: str | None = None
    attempts: int = 1


@dataclass(eq=False)
class _Task:
    id: int
    key: str
    fn: Callable[..., Any]
    args: tuple
    attempts: int = 0  # times started
    deaths: int = 0  # times its worker process died under it
    handle: Any = None  # the backend's future while it runs


def usable_cores() -> int:
    """The CPUs this process may run on (its affinity mask, not the machine's count)."""
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1


def error_line(exc: BaseException) -> str:
    """`"ValueError: bad lr"`: the exception's type and the first line of its message."""
    message = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {message[0]}" if message else type(exc).__name__


def _call(fn: Callable[..., Any], *args: Any) -> tuple[bool, Any]:
    """Run one task where it is executed: (True, value), or (False, error line) if fn raised."""
    try:
        return True, fn(*args)
    except Exception as exc:
        return False, error_line(exc)


class Executor:
    """The interface every backend has; the base keeps the queue of tasks not yet handed to the backend."""

    workers: int

    def __init__(self, workers: int) -> None:
        self.workers = workers
        self._ids = itertools.count()
        self._pending: deque[_Task] = deque()  # submitted, not yet handed to the backend
        self._running: dict[int, _Task] = {}  # handed to the backend, not yet returned
        self._ready: deque[TaskResult] = deque()  # decided without the backend (retry budget spent)
        self._closed = False

    def submit(self, key: str, fn: Callable[..., Any], *args: Any) -> None:
        """Queue `fn(*args)` under `key`; `fn` must be a top-level function (it is pickled by name)."""
        if self._closed:
            raise RuntimeError("submit() on a closed executor")
        self._pending.append(_Task(next(self._ids), key, fn, args))
        self._dispatch()

    def broadcast(self, obj: Any) -> Any:
        """Send a large read-only object to the workers once; pass the returned handle to submit instead."""
        return obj

    def next_result(self, timeout: float | None = None) -> TaskResult | None:
        """The next task to end, waiting at most `timeout` seconds (None: as long as it takes). None on timeout
        or when nothing is in flight."""
        deadline = None if timeout is None else time.monotonic() + timeout
        while True:
            self._dispatch()
            if self._ready:
                return self._ready.popleft()
            if not self._running:
                return None
            remaining = None if deadline is None else max(0.0, deadline - time.monotonic())
            result = self._wait(remaining)
            if result is not None:
                self._dispatch()
                return result
            if deadline is not None and time.monotonic() >= deadline:
                return None

    def in_flight(self) -> int:
        """Tasks submitted and not yet returned by next_result."""
        return len(self._pending) + len(self._running) + len(self._ready)

    def cancel_pending(self) -> None:
        """Drop the tasks that have not started; running ones finish and are still returned by next_result."""
        self._pending.clear()

    def close(self) -> None:
        """Stop the workers (running tasks are abandoned) and free every process, socket and temp file."""
        self._closed = True
        self._pending.clear()

    def __enter__(self) -> Executor:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def _dispatch(self) -> None:
        while self._pending and len(self._running) < self.workers and not self._closed:
            task = self._pending.popleft()
            self._running[task.id] = task
            self._start(task)

    def _finish(self, task: _Task, ok: bool, payload: Any) -> TaskResult:
        del self._running[task.id]
        if ok:
            return TaskResult(task.key, value=payload, attempts=task.attempts)
        return TaskResult(task.key, error=payload, attempts=task.attempts)

    def _start(self, task: _Task) -> None:
        """Hand `task` to the backend."""

    def _wait(self, timeout: float | None) -> TaskResult | None:
        """Wait up to `timeout` for a running task to end; None if none did (or the time went to recovery)."""
        raise NotImplementedError


class SerialExecutor(Executor):
    """Runs each task in this process, inside next_result, in submit order."""

    def __init__(self) -> None:
        super().__init__(workers=1)

    def _wait(self, timeout: float | None) -> TaskResult:
        task = next(iter(self._running.values()))
        task.attempts = 1
        return self._finish(task, *_call(task.fn, *task.args))


# --- processes -----------------------------------------------------------------------------------------------

_worker_starts: Any = None  # in a pool worker: the queue on which it says which task it runs
_worker_limits: Any = None  # in a pool worker: the threadpoolctl limiter (kept alive)
_worker_shared: dict[str, Any] = {}  # in a pool worker: the broadcast objects, by token


@dataclass(frozen=True)
class Broadcast:
    """A handle to an object each pool worker received once, when it started (its initializer's arguments)."""

    token: str


def _init_pool_worker(starts: Any, threads: int, shared: dict[str, Any]) -> None:
    global _worker_starts, _worker_limits, _worker_shared
    from threadpoolctl import threadpool_limits

    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C is the driver's to handle: running tasks finish
    os.environ["MLCLI_NUM_THREADS"] = str(threads)
    _worker_limits = threadpool_limits(limits=threads, user_api="blas")
    _worker_starts, _worker_shared = starts, shared


def _resolve(arg: Any) -> Any:
    return _worker_shared[arg.token] if isinstance(arg, Broadcast) else arg


def _run_in_pool(task_id: int, fn: Callable[..., Any], args: tuple) -> tuple[bool, Any]:
    _worker_starts.put((task_id, os.getpid()))  # written before fn runs: a SIGKILL later names this task
    return _call(fn, *(_resolve(a) for a in args))


def _death_cause(exitcode: int | None) -> str:
    if exitcode is None:
        return "cause unknown"
    if exitcode < 0:
        try:
            return f"killed by signal {-exitcode}, {signal.Signals(-exitcode).name}"
        except ValueError:
            return f"killed by signal {-exitcode}"
    return f"exit code {exitcode}"


class ProcessExecutor(Executor):
    """A spawn `ProcessPoolExecutor` of `workers` processes, rebuilt when one of them dies."""

    def __init__(self, workers: int, max_retries: int) -> None:
        super().__init__(workers)
        self.max_retries = max_retries
        self.threads = max(1, usable_cores() // workers)
        self._pool: Any = None
        self._processes: dict[int, Any] = {}  # the pool's own pid -> Process dict (it fills it as it spawns)
        self._starts: Any = None
        self._done: queue.Queue = queue.Queue()  # (task, future) as futures end, from the pool's thread
        self._shared: dict[str, Any] = {}  # broadcast objects, given to every worker process as it starts
        self._stale = False  # a broadcast came after the pool started: replace the pool once it is idle

    def broadcast(self, obj: Any) -> Broadcast:
        """Ship `obj` to each worker process once, through the pool initializer (best called before submit: a
        later broadcast waits for the running tasks, then starts a new pool)."""
        token = uuid.uuid4().hex
        self._shared[token] = obj
        self._stale = self._pool is not None
        return Broadcast(token)

    def _dispatch(self) -> None:
        if self._stale:
            if self._running:
                return
            self._stop_pool()
            self._stale = False
        super()._dispatch()

    def _new_pool(self) -> None:
        import multiprocessing
        from concurrent.futures import ProcessPoolExecutor

        context = multiprocessing.get_context("spawn")
        self._starts = context.SimpleQueue()  # a fresh one per pool: a killed writer may leave its lock held
        self._pool = ProcessPoolExecutor(max_workers=self.workers, mp_context=context, initializer=_init_pool_worker,
                                         initargs=(self._starts, self.threads, self._shared))
        self._processes = self._pool._processes

    def _start(self, task: _Task) -> None:
        from concurrent.futures.process import BrokenProcessPool

        if self._pool is None:
            self._new_pool()
        task.attempts += 1
        try:
            task.handle = self._pool.submit(_run_in_pool, task.id, task.fn, task.args)
        except BrokenProcessPool:  # broke since the last result: this task has not run; recover, then retry it
            task.attempts -= 1
            del self._running[task.id]
            self._pending.appendleft(task)
            self._recover()
            return
        task.handle.add_done_callback(lambda future, task=task: self._done.put((task, future)))

    def _wait(self, timeout: float | None) -> TaskResult | None:
        from concurrent.futures.process import BrokenProcessPool

        try:
            task, future = self._done.get(timeout=timeout)
        except queue.Empty:
            return None
        if task.handle is not future or task.id not in self._running:
            return None  # a task already resubmitted or returned by a recovery
        exc = future.exception()
        if isinstance(exc, BrokenProcessPool):
            self._recover()
            return None
        if exc is not None:  # fn's value or arguments could not be pickled, or similar
            return self._finish(task, False, error_line(exc))
        return self._finish(task, *future.result())

    def _recover(self) -> None:
        """A worker died: charge the task that ran in it, put the others back in front of the queue, drop the pool.

        The pool fails every unfinished future with BrokenProcessPool and SIGTERMs its other workers, so the dead
        worker is the one whose exit status is not SIGTERM, and its task the one it reported starting.
        """
        from concurrent.futures import wait
        from concurrent.futures.process import BrokenProcessPool

        pool, processes, self._pool = self._pool, self._processes, None
        manager = pool._executor_manager_thread
        victims = [t for t in self._running.values() if t.handle is not None]
        wait([t.handle for t in victims], timeout=JOIN_TIMEOUT)
        if manager is not None:
            manager.join(JOIN_TIMEOUT)  # it terminates and joins the other workers
        self._join(processes, grace=0.0)
        pool.shutdown(wait=True)
        started = {}
        while not self._starts.empty():
            task_id, pid = self._starts.get()
            started[task_id] = pid
        self._starts.close()
        died = {pid: p.exitcode for pid, p in processes.items() if p.exitcode != -signal.SIGTERM}
        victims = [t for t in victims
                   if not (t.handle.done() and not isinstance(t.handle.exception(), BrokenProcessPool))]
        culprits = {t.id for t in victims if started.get(t.id) in died}
        if not culprits and not died:  # every worker exited by SIGTERM: someone else's; charge every runner
            culprits = {t.id for t in victims if t.id in started}
        elif not culprits and not started:  # workers die before running anything (a failing initializer)
            culprits = {t.id for t in victims}
        first_death = next(iter(died.values()), -signal.SIGTERM)
        requeue = []
        for task in sorted(victims, key=lambda t: t.id):
            del self._running[task.id]
            task.handle = None
            if task.id not in started:
                task.attempts -= 1
            if task.id in culprits:
                task.deaths += 1
                if task.deaths > self.max_retries:
                    cause = _death_cause(died.get(started.get(task.id), first_death))
                    self._ready.append(TaskResult(task.key, error=f"worker died {task.deaths} times ({cause})",
                                                  attempts=max(1, task.attempts)))
                    continue
            requeue.append(task)
        self._pending.extendleft(reversed(requeue))

    @staticmethod
    def _join(processes: dict[int, Any], grace: float) -> None:
        """Wait up to `grace` seconds for the processes to exit; terminate, then kill, the ones that do not."""
        deadline = time.monotonic() + grace
        for p in list(processes.values()):
            p.join(max(0.0, deadline - time.monotonic()))
        for stop in ("terminate", "kill"):
            alive = [p for p in processes.values() if p.is_alive()]
            for p in alive:
                getattr(p, stop)()
            for p in alive:
                p.join(JOIN_TIMEOUT)

    def _stop_pool(self) -> None:
        if self._pool is None:
            return
        pool, processes, self._pool = self._pool, self._processes, None
        manager = pool._executor_manager_thread
        pool.shutdown(wait=False, cancel_futures=True)  # idle workers exit at once, busy ones get JOIN_TIMEOUT
        self._join(processes, grace=JOIN_TIMEOUT)
        if manager is not None:
            manager.join(JOIN_TIMEOUT)
        self._starts.close()

    def close(self) -> None:
        if self._closed:
            return
        super().close()
        self._stop_pool()


# --- dask ----------------------------------------------------------------------------------------------------

SCHEDULERS = ("serial", "processes", "dask")
ADDRESS_PREFIXES = ("tcp://", "tls://")


def make_executor(scheduler: str = "processes", workers: int | None = None, scheduler_file: str | None = None,
                  max_retries: int = 3) -> Executor:
    """The executor `--scheduler` / `--workers` / `--scheduler-file` ask for.

    scheduler: "serial" (this process, one task at a time), "processes" (a local pool; `workers` defaults to the
    usable cores), "dask" (a LocalCluster of `workers` processes), or the address of an existing Dask scheduler
    ("tcp://HOST:PORT", "tls://HOST:PORT"; `workers` then caps the tasks at once). `scheduler_file` (a Dask
    scheduler.json) connects to an existing cluster too. `max_retries`: runs after the first of a task whose worker
    process died (an existing Dask cluster keeps its own `allowed-failures`). Bad values raise ConfigError.
    """
    if workers is not None and (isinstance(workers, bool) or not isinstance(workers, int) or workers < 1):
        raise ConfigError(f"--workers must be an int >= 1 (tasks run at once); got {workers!r}")
    if isinstance(max_retries, bool) or not isinstance(max_retries, int) or max_retries < 0:
        raise ConfigError(f"max_retries must be an int >= 0 (runs after a worker died); got {max_retries!r}")
    if scheduler_file is not None:
        if scheduler not in ("processes", "dask"):  # processes: the default, i.e. not given
            raise ConfigError(f"--scheduler-file connects to an existing Dask cluster; it cannot be combined with "
                              f"--scheduler {scheduler}")
        from mlcli.sweeps.dask_cluster import DaskExecutor

        return DaskExecutor.connect(scheduler_file=str(scheduler_file), workers=workers)
    if scheduler == "serial":
        if workers not in (None, 1):
            raise ConfigError(f"--scheduler serial runs one task at a time; --workers {workers} needs "
                              "--scheduler processes or dask")
        return SerialExecutor()
    if scheduler == "processes":
        return ProcessExecutor(workers or usable_cores(), max_retries)
    if scheduler == "dask":
        from mlcli.sweeps.dask_cluster import DaskExecutor

        return DaskExecutor.local(workers or usable_cores(), max_retries)
    if isinstance(scheduler, str) and scheduler.startswith(ADDRESS_PREFIXES) and len(scheduler) > len("tcp://"):
        from mlcli.sweeps.dask_cluster import DaskExecutor

        return DaskExecutor.connect(address=scheduler, workers=workers)
    raise ConfigError(f"--scheduler must be one of {', '.join(SCHEDULERS)} or the address of a Dask scheduler "
                      f"(tcp://HOST:PORT, tls://HOST:PORT); got {scheduler!r}")
