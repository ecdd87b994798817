"""The sweep executors (mlcli/sweeps/executors.py): the same tasks give the same values, keyed right, on every backend
(serial, a process pool, a Dask LocalCluster, an out-of-process `dask scheduler` + `dask worker` cluster reached by
address and by scheduler file); errors are one line; dead workers are retried within a budget; cancel_pending
drops only what has not started; Ctrl-C (SIGINT) does not reach running tasks; nothing listens beyond loopback and
close() leaves no process, socket or scratch folder behind. Task functions live in tests/executor_tasks.py so that
the workers can import them.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from multiprocessing import resource_tracker
from pathlib import Path

import executor_tasks as tasks
import numpy as np
import psutil
import pytest

from mlcli.errors import ConfigError
from mlcli.sweeps import executors
from mlcli.sweeps.executors import TaskResult, make_executor

TESTS = Path(__file__).resolve().parent
LOOPBACK = {"127.0.0.1", "::1", "::ffff:127.0.0.1"}


def drain(ex, timeout: float = 60) -> dict[str, TaskResult]:
    """Every result until nothing is in flight, by key (each key must come back once)."""
    results: dict[str, TaskResult] = {}
    deadline = time.monotonic() + timeout
    while ex.in_flight():
        assert time.monotonic() < deadline, "tasks did not finish in time"
        result = ex.next_result(timeout=1.0)
        if result is not None:
            assert result.key not in results, f"{result.key} returned twice"
            results[result.key] = result
    return results


def wait_for_file(path: Path, timeout: float = 20) -> str:
    deadline = time.monotonic() + timeout
    while not path.exists() or not path.read_text():
        assert time.monotonic() < deadline, f"{path} never appeared"
        time.sleep(0.02)
    return path.read_text()


def listening(processes) -> list[str]:
    """The local addresses every given process listens on (TCP)."""
    return [c.laddr.ip for p in processes for c in p.net_connections(kind="inet") if c.status == psutil.CONN_LISTEN]


def children() -> set[int]:
    """This process's descendants, without multiprocessing's resource tracker (one per interpreter, by design)."""
    tracker = getattr(resource_tracker._resource_tracker, "_pid", None)
    return {p.pid for p in psutil.Process().children(recursive=True) if p.pid != tracker}


@pytest.fixture(scope="module")
def dask_local():
    """A LocalCluster executor of 2 workers, shared by the module's tests (each test drains what it submits)."""
    ex = make_executor("dask", workers=2)
    yield ex
    ex.close()


@pytest.fixture(scope="module")
def dask_cli_cluster(tmp_path_factory):
    """`dask scheduler` + `dask worker --nworkers 2 --nthreads 1` on 127.0.0.1, as in notes/dask.md: yields
    (address, scheduler file, [scheduler, worker] Popen objects)."""
    tmp = tmp_path_factory.mktemp("dask-cli")
    scheduler_file = tmp / "scheduler.json"
    config = tmp / "dask-config"
    config.mkdir()
    (config / "dask.yaml").write_text(
        "distributed:\n  nanny:\n    pre-spawn-environ:\n      MALLOC_TRIM_THRESHOLD_: null\n")
    env = {**os.environ, "DASK_CONFIG": str(config),
           "PYTHONPATH": os.pathsep.join(filter(None, [str(TESTS), os.environ.get("PYTHONPATH")]))}
    env.pop("MALLOC_TRIM_THRESHOLD_", None)
    dask = str(Path(sys.executable).parent / "dask")
    scheduler = subprocess.Popen([dask, "scheduler", "--host", "127.0.0.1", "--port", "0", "--dashboard-address",
                                  "127.0.0.1:0", "--scheduler-file", str(scheduler_file)], env=env,
                                 stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    worker = subprocess.Popen([dask, "worker", "--scheduler-file", str(scheduler_file), "--host", "127.0.0.1",
                               "--nworkers", "2", "--nthreads", "1", "--dashboard-address", "127.0.0.1:0",
                               "--local-directory", str(tmp / "w")], env=env,
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        address = json.loads(wait_for_file(scheduler_file))["address"]
        with make_executor(address) as ex:
            deadline = time.monotonic() + 30
            while sum(ex._client.nthreads().values()) < 2:
                assert time.monotonic() < deadline, "the dask workers did not connect"
                time.sleep(0.1)
        yield address, str(scheduler_file), [scheduler, worker]
    finally:
        for p in (worker, scheduler):
            p.send_signal(signal.SIGTERM)
            try:
                p.wait(timeout=15)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait()


BACKENDS = ["serial", "processes", "dask", "dask-address", "dask-file"]


@pytest.fixture(params=BACKENDS)
def executor(request):
    """Each backend with 2 workers; the LocalCluster is shared, the others are made and closed per test."""
    if request.param == "dask":
        yield request.getfixturevalue("dask_local")
        return
    if request.param == "serial":
        ex = make_executor("serial")
    elif request.param == "processes":
        ex = make_executor("processes", workers=2)
    else:
        address, scheduler_file, _ = request.getfixturevalue("dask_cli_cluster")
        ex = make_executor(address) if request.param == "dask-address" else make_executor(scheduler_file=scheduler_file)
    with ex:
        yield ex


def reference_values() -> dict[str, dict]:
    return {f"fit-{seed}": tasks.seeded_fit(seed) for seed in range(6)}


def test_every_backend_returns_the_serial_values_each_under_its_key_once(executor):
    data = np.arange(1000, dtype=np.float64)
    shared = executor.broadcast(data)
    for seed in range(6):
        executor.submit(f"fit-{seed}", tasks.seeded_fit, seed)
        executor.submit(f"shared-{seed}", tasks.with_shared, shared, seed)
    assert executor.in_flight() == 12
    results = drain(executor)
    assert set(results) == {f"fit-{s}" for s in range(6)} | {f"shared-{s}" for s in range(6)}
    assert all(r.error is None and r.attempts == 1 for r in results.values())
    for key, expected in reference_values().items():
        got = results[key].value
        assert got["seed"] == expected["seed"] and got["loss"] == expected["loss"]
        assert np.array_equal(got["w"], expected["w"])
    for seed in range(6):
        assert results[f"shared-{seed}"].value == tasks.with_shared(data, seed)
    assert executor.next_result(timeout=0.1) is None  # nothing in flight: no wait


def test_an_exception_is_that_tasks_error_line_at_the_first_attempt_and_the_others_finish(executor):
    for seed in range(4):
        executor.submit(f"t{seed}", tasks.fail_if, seed, 2)
    results = drain(executor)
    assert results["t2"] == TaskResult("t2", error="ValueError: bad seed 2", attempts=1)
    assert {k: (r.value, r.error, r.attempts) for k, r in results.items() if k != "t2"} == {
        "t0": (0, None, 1), "t1": (10, None, 1), "t3": (30, None, 1)}


def test_processes_retry_a_task_whose_worker_was_killed_and_the_others_are_intact(tmp_path):
    with make_executor("processes", workers=2) as ex:
        ex.submit("victim", tasks.kill_self_once, str(tmp_path / "killed"), 42)
        for seed in range(4):
            ex.submit(f"fit-{seed}", tasks.seeded_fit, seed)
        results = drain(ex)
    assert results["victim"] == TaskResult("victim", value=42, attempts=2)
    expected = reference_values()
    for seed in range(4):
        result = results[f"fit-{seed}"]
        assert result.error is None and result.value["loss"] == expected[f"fit-{seed}"]["loss"]


def test_processes_give_up_on_a_task_that_always_kills_its_worker_after_the_budget():
    with make_executor("processes", workers=2, max_retries=2) as ex:
        ex.submit("poison", tasks.kill_self_always)
        for seed in range(3):
            ex.submit(f"t{seed}", tasks.fail_if, seed, -1)
        results = drain(ex)
    assert results["poison"] == TaskResult("poison", error="worker died 3 times (killed by signal 9, SIGKILL)",
                                           attempts=3)
    assert {k: r.value for k, r in results.items() if k != "poison"} == {"t0": 0, "t1": 10, "t2": 20}


def test_a_broadcast_after_the_pool_started_reaches_the_next_tasks():
    first, second = np.ones(100), np.full(50, 2.0)
    with make_executor("processes", workers=2) as ex:
        ex.submit("a", tasks.with_shared, ex.broadcast(first), 1)
        late = ex.broadcast(second)  # the pool is running "a": a new one takes the next tasks
        ex.submit("b", tasks.with_shared, late, 2)
        results = drain(ex)
    assert results["a"].value == tasks.with_shared(first, 1) and results["b"].value == tasks.with_shared(second, 2)


def test_pool_workers_split_the_cores_between_them():
    with make_executor("processes", workers=2) as ex:
        ex.submit("threads", tasks.environ, "MLCLI_NUM_THREADS")
        result = drain(ex)["threads"]
    assert result.value == str(max(1, executors.usable_cores() // 2))


@pytest.mark.parametrize("backend", ["processes", "dask"])
def test_a_sigint_to_a_worker_does_not_stop_its_running_task(backend, dask_local, tmp_path):
    """Ctrl-C sends SIGINT to the whole process group; the workers leave it to the driver."""
    ex = make_executor("processes", workers=1) if backend == "processes" else dask_local
    try:
        ex.submit("task", tasks.report_pid_then_sleep, str(tmp_path / "pid"), 0.5, 3)
        os.kill(int(wait_for_file(tmp_path / "pid")), signal.SIGINT)
        result = drain(ex)["task"]
    finally:
        if ex is not dask_local:
            ex.close()
    assert result.error is None and result.attempts == 1 and result.value["loss"] == tasks.seeded_fit(3)["loss"]


def test_dask_retries_a_task_whose_cli_worker_was_killed_mid_task(dask_cli_cluster, tmp_path):
    address, _, _ = dask_cli_cluster
    with make_executor(address) as ex:
        ex.submit("victim", tasks.report_pid_then_sleep, str(tmp_path / "pid"), 1.0, 5)
        ex.submit("other", tasks.seeded_fit, 6)
        os.kill(int(wait_for_file(tmp_path / "pid")), signal.SIGKILL)
        results = drain(ex)
    assert results["victim"].error is None and results["victim"].attempts == 2
    assert results["victim"].value["loss"] == tasks.seeded_fit(5)["loss"]
    assert np.array_equal(results["other"].value["w"], tasks.seeded_fit(6)["w"])


def test_every_dask_socket_listens_on_loopback_only(dask_cli_cluster, dask_local):
    _, _, popens = dask_cli_cluster
    cli_tree = [p for popen in popens for p in [psutil.Process(popen.pid), *psutil.Process(popen.pid).children(True)]]
    local_tree = [psutil.Process(), *psutil.Process().children(recursive=True)]
    for tree in (cli_tree, local_tree):
        addresses = listening(tree)
        assert addresses and set(addresses) <= LOOPBACK


def test_dask_workers_run_without_malloc_trim_threshold(dask_cli_cluster, dask_local):
    address, _, _ = dask_cli_cluster
    with make_executor(address) as ex:
        ex.submit("cli", tasks.environ, "MALLOC_TRIM_THRESHOLD_")
        assert drain(ex)["cli"].value is None
    dask_local.submit("local", tasks.environ, "MALLOC_TRIM_THRESHOLD_")
    assert drain(dask_local)["local"].value is None


@pytest.mark.parametrize("backend", ["processes", "dask-address"])
def test_cancel_pending_drops_the_tasks_not_started_and_the_running_one_returns(backend, tmp_path, request):
    if backend == "processes":
        ex = make_executor("processes", workers=1)
    else:  # workers caps the tasks at once on an existing cluster
        ex = make_executor(request.getfixturevalue("dask_cli_cluster")[0], workers=1)
    log = tmp_path / "started"
    with ex:
        for i in range(5):
            ex.submit(f"t{i}", tasks.sleep_and_record, 0.3, str(log), f"t{i}")
        wait_for_file(log)
        ex.cancel_pending()
        assert ex.in_flight() == 1
        results = drain(ex)
        time.sleep(0.4)  # long enough for a wrongly started second task to log itself
    assert list(results) == ["t0"] and results["t0"].value == "t0"
    assert log.read_text().split() == ["t0"]


def test_next_result_returns_within_its_timeout_while_a_task_runs(tmp_path):
    with make_executor("processes", workers=1) as ex:
        ex.submit("slow", tasks.sleep_and_record, 2.0, str(tmp_path / "log"), "slow")
        start = time.monotonic()
        assert ex.next_result(timeout=0.2) is None
        assert time.monotonic() - start < 0.5
        assert ex.in_flight() == 1
        start = time.monotonic()
    assert time.monotonic() - start < 5  # close() abandons the running task within its bounded waits


def test_close_leaves_no_process_scratch_folder_or_changed_environment(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    before, environ = children(), dict(os.environ)
    for scheduler in ("processes", "dask"):
        ex = make_executor(scheduler, workers=2)
        shared = ex.broadcast(np.ones(10))
        ex.submit("a", tasks.with_shared, shared, 1)
        assert drain(ex)["a"].error is None
        assert dict(os.environ) == environ  # a Nanny sets its pre-spawn variables in this process: undone
        ex.close()
        assert children() == before, scheduler
        assert dict(os.environ) == environ
    assert list(tmp_path.iterdir()) == []  # no dask-scratch-space here


@pytest.mark.parametrize(("kwargs", "message"), [
    ({"scheduler": "threads"}, "--scheduler must be one of serial, processes, dask or the address of a Dask "
                               "scheduler (tcp://HOST:PORT, tls://HOST:PORT); got 'threads'"),
    ({"scheduler": "tcp://"}, "--scheduler must be one of"),
    ({"workers": 0}, "--workers must be an int >= 1 (tasks run at once); got 0"),
    ({"workers": -2}, "--workers must be an int >= 1"),
    ({"workers": True}, "--workers must be an int >= 1"),
    ({"workers": "2"}, "--workers must be an int >= 1 (tasks run at once); got '2'"),
    ({"scheduler": "serial", "workers": 2}, "--scheduler serial runs one task at a time; --workers 2 needs"),
    ({"max_retries": -1}, "max_retries must be an int >= 0"),
    ({"scheduler": "serial", "scheduler_file": "x.json"}, "--scheduler-file connects to an existing Dask cluster"),
    ({"scheduler_file": "/nonexistent/scheduler.json"}, "--scheduler-file /nonexistent/scheduler.json: no such file"),
])
def test_make_executor_rejects_bad_options_with_one_clear_line(kwargs, message):
    with pytest.raises(ConfigError) as info:
        make_executor(**kwargs)
    assert str(info.value).startswith(message) and "\n" not in str(info.value)


def test_an_unreachable_scheduler_is_a_config_error(monkeypatch):
    from mlcli.sweeps import dask_cluster

    monkeypatch.setattr(dask_cluster, "CONNECT_TIMEOUT", 1)
    with pytest.raises(ConfigError, match=r"^--scheduler tcp://127.0.0.1:9: no Dask scheduler answered within 1 s"):
        make_executor("tcp://127.0.0.1:9")


@pytest.mark.parametrize("scheduler", ["dask", "tcp://127.0.0.1:8786"])
def test_dask_backends_without_distributed_say_which_extra_to_install(scheduler, monkeypatch):
    monkeypatch.setitem(sys.modules, "distributed", None)  # what `import distributed` sees when it is missing
    with pytest.raises(ConfigError, match=r"needs Dask's `distributed`, the optional extra 'dask': "
                                          r"pip install distributed$"):
        make_executor(scheduler)


def test_importing_the_executors_imports_neither_dask_nor_a_process_pool():
    code = ("import sys, mlcli.sweeps.executors; "
            "print(sorted(m for m in ('distributed', 'dask', 'threadpoolctl', 'concurrent.futures.process') "
            "if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"
