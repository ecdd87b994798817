"""The Dask backend of the executors: a LocalCluster on 127.0.0.1, or an existing cluster by address or scheduler
file (see `mlcli.sweeps.executors` for the interface and `make_executor`).

`distributed` (the optional extra `dask`: pip install distributed) is imported only inside functions. Before a
LocalCluster starts, Dask's nanny setting MALLOC_TRIM_THRESHOLD_ is unset: it halves NumPy's speed in the workers
(../shared/notes/dask.md measured 0.27 -> 0.51 CPU-s per task).
"""

from __future__ import annotations

import os
import queue
import shutil
import signal
import tempfile
import threading
import time
import uuid
from pathlib import Path
from typing import Any

from mlcli.errors import ConfigError
from mlcli.sweeps.executors import (
    JOIN_TIMEOUT,
    THREAD_VARS,
    Executor,
    TaskResult,
    _call,
    _Task,
    error_line,
    usable_cores,
)

DASK_HINT = "needs Dask's `distributed`, the optional extra 'dask': pip install distributed"
CONNECT_TIMEOUT = 10  # seconds to reach an existing scheduler
REFRESH_EVERY = 5.0  # seconds between looks at an existing cluster's size (clusters may scale)


def _import_distributed(option: str) -> Any:
    try:
        import distributed
    except ImportError:
        raise ConfigError(f"{option} {DASK_HINT}") from None
    return distributed


def _ignore_sigint_plugin() -> Any:
    """A worker plugin that makes a LocalCluster's workers ignore SIGINT, which the terminal sends to the whole
    process group on Ctrl-C: the driver decides, and running tasks finish. Restarted workers get it too."""
    from distributed.diagnostics.plugin import WorkerPlugin

    class IgnoreSigint(WorkerPlugin):
        name = "mlcli-ignore-sigint"

        def setup(self, worker: Any) -> None:
            if threading.current_thread() is threading.main_thread():
                signal.signal(signal.SIGINT, signal.SIG_IGN)

    return IgnoreSigint()


def _restore_environ(saved: dict[str, str | None]) -> None:
    """Put back the variables a Nanny sets in this process (its pre-spawn ones) as they were before it."""
    for name, value in saved.items():
        if value is None:
            os.environ.pop(name, None)
        else:
            os.environ[name] = value


class DaskExecutor(Executor):
    """Tasks on a Dask cluster: a LocalCluster it starts (`local`) or an existing one (`connect`)."""

    def __init__(self, client: Any, cluster: Any = None, workers: int | None = None, tmp: Path | None = None,
                 environ: dict[str, str | None] | None = None) -> None:
        self._client, self._cluster, self._tmp, self._environ = client, cluster, tmp, environ
        self._fixed = workers  # None: follow the cluster's thread count
        self._looked = 0.0
        super().__init__(workers or 1)
        self._refresh_workers()
        self._done: queue.Queue = queue.Queue()
        self._shared: list[Any] = []  # broadcast futures, kept alive until close

    @classmethod
    def local(cls, workers: int, max_retries: int) -> DaskExecutor:
        """Start a LocalCluster on 127.0.0.1: `workers` processes x 1 thread, random ports, scratch in a temp dir."""
        distributed = _import_distributed("--scheduler dask")
        import dask

        threads = max(1, usable_cores() // workers)
        settings = {f"distributed.nanny.pre-spawn-environ.{name}": str(threads) for name in THREAD_VARS}
        settings["distributed.nanny.pre-spawn-environ.MALLOC_TRIM_THRESHOLD_"] = None  # set, it halves NumPy speed
        settings["distributed.scheduler.allowed-failures"] = max_retries
        tmp = Path(tempfile.mkdtemp(prefix="mlcli-dask-"))
        cluster = client = None
        # the Nanny's pre-spawn variables, and __DASK_PARENT_PID, which every Nanny.start sets in this process
        touched = {*dask.config.get("distributed.nanny.pre-spawn-environ"), *THREAD_VARS, "PYTHONHASHSEED",
                   "__DASK_PARENT_PID"}
        environ = {name: os.environ.get(name) for name in touched}
        try:
            with dask.config.set(settings):  # read when the scheduler and the nannies are created
                cluster = distributed.LocalCluster(
                    n_workers=workers, threads_per_worker=1, processes=True, host="127.0.0.1",
                    dashboard_address="127.0.0.1:0", worker_dashboard_address=None, local_directory=str(tmp))
                client = distributed.Client(cluster, set_as_default=False)
                client.register_plugin(_ignore_sigint_plugin())
        except BaseException:
            for part in (client, cluster):
                if part is not None:
                    part.close()
            shutil.rmtree(tmp, ignore_errors=True)
            raise
        finally:
            _restore_environ(environ)
        return cls(client, cluster, workers, tmp, environ)

    @classmethod
    def connect(cls, address: str | None = None, scheduler_file: str | None = None,
                workers: int | None = None) -> DaskExecutor:
        """A client of an existing cluster (never started or closed here); `workers` caps the tasks at once."""
        option = f"--scheduler {address}" if address else f"--scheduler-file {scheduler_file}"
        distributed = _import_distributed(option)
        if scheduler_file is not None and not Path(scheduler_file).is_file():
            raise ConfigError(f"--scheduler-file {scheduler_file}: no such file; "
                              f"`dask scheduler --scheduler-file {scheduler_file}` writes it")
        target = {"address": address} if address else {"scheduler_file": scheduler_file}
        try:
            client = distributed.Client(**target, timeout=f"{CONNECT_TIMEOUT}s", set_as_default=False)
        except (OSError, TimeoutError) as exc:
            raise ConfigError(f"{option}: no Dask scheduler answered within {CONNECT_TIMEOUT} s "
                              f"({error_line(exc)}); check the address or start one with `dask scheduler`") from None
        return cls(client, workers=workers)

    def _refresh_workers(self) -> None:
        if self._cluster is not None and self._fixed is not None:
            return
        self._looked = time.monotonic()
        threads = max(1, sum(self._client.nthreads().values()))
        self.workers = threads if self._fixed is None else min(self._fixed, threads)

    def broadcast(self, obj: Any) -> Any:
        shared = self._client.scatter([obj], broadcast=True, hash=False)[0]  # a list: obj is one item, even a list
        self._shared.append(shared)
        return shared

    def _start(self, task: _Task) -> None:
        task.attempts = 1
        task.handle = self._client.submit(_call, task.fn, *task.args, key=f"{task.key}-{uuid.uuid4().hex[:12]}",
                                          pure=False)
        task.handle.add_done_callback(lambda future, task=task: self._done.put((task, future)))

    def _wait(self, timeout: float | None) -> TaskResult | None:
        from distributed import KilledWorker

        if self._pending and time.monotonic() - self._looked > REFRESH_EVERY:
            self._refresh_workers()
        try:
            task, future = self._done.get(timeout=timeout)
        except queue.Empty:
            return None
        if task.handle is not future or task.id not in self._running:
            return None
        if future.status == "finished":
            try:
                ok, payload = future.result(timeout=60)
            except Exception as exc:  # the worker holding the value died, and recomputing it took too long
                ok, payload = False, f"could not fetch the result: {error_line(exc)}"
            task.attempts = self._attempts(future.key)
        elif future.status == "error":
            exc = future.exception()
            ok, payload = False, error_line(exc)
            if isinstance(exc, KilledWorker):
                task.attempts = exc.allowed_failures + 1
                last = getattr(exc.last_worker, "address", exc.last_worker)
                payload = f"worker died {task.attempts} times (Dask KilledWorker, last on {last})"
        else:
            ok, payload = False, f"Dask {future.status} the task (the scheduler restarted or lost it)"
        future.release()
        return self._finish(task, ok, payload)

    def _attempts(self, key: str) -> int:
        """1 + how many times a worker died under the task (the scheduler's `suspicious` count)."""

        def suspicious(dask_scheduler: Any = None) -> int:
            state = dask_scheduler.tasks.get(key)
            return 0 if state is None else state.suspicious

        try:
            return 1 + self._client.run_on_scheduler(suspicious)
        except Exception:  # a scheduler that cannot run it: the count is informative only
            return 1

    def close(self) -> None:
        if self._closed:
            return
        super().close()
        try:
            self._client.close(timeout=JOIN_TIMEOUT * 5)
            if self._cluster is not None:
                self._cluster.close(timeout=JOIN_TIMEOUT * 5)
        finally:
            if self._tmp is not None:
                shutil.rmtree(self._tmp, ignore_errors=True)
            if self._environ is not None:
                _restore_environ(self._environ)


# --- choosing one --------------------------------------------------------------------------------------------
