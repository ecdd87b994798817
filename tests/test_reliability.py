"""Runs that survive a kill, a full disk, a second process: last.npz at every epoch, exact resume after SIGKILL,
stale temporaries cleaned, one writer per run, ENOSPC/EROFS as one line with the previous checkpoint intact."""

from __future__ import annotations

import errno
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from conftest import TIMING_KEYS, read_jsonl

import mlcli
from mlcli.runs.snapshot import load_model

SPIRALS = {"name": "k", "seed": 4, "data": {"type": "spirals", "n_samples": 240},
           "model": {"type": "mlp", "hidden": [16], "dropout": 0.1},
           "train": {"epochs": 6, "batch_size": 32, "optimizer": {"type": "adam", "lr": 0.01},
                     "schedule": {"type": "cosine"}, "checkpoint_seconds": 0}}  # a checkpoint every epoch


def strip(rows):
    return [{k: v for k, v in r.items() if k not in TIMING_KEYS} for r in rows]


def last_weights(run_dir: Path) -> dict:
    return load_model(run_dir / "checkpoints" / "last.npz").model.state()


def test_last_npz_is_written_at_the_end_of_every_epoch_or_every_n(tmp_path):
    class Peek:  # runs before the last checkpoint of the same epoch: sees the previous epoch's file
        def __init__(self):
            self.seen = []

        def on_epoch_end(self, run, record):
            path = run.run_dir / "checkpoints" / "last.npz"
            self.seen.append(load_model(path).meta["epoch"] if path.exists() else None)

    every = Peek()
    mlcli.train(SPIRALS, runs_dir=tmp_path / "a", callbacks=[every])
    assert every.seen == [None, 1, 2, 3, 4, 5]
    second = Peek()
    result = mlcli.train(SPIRALS, overrides={"train.checkpoint_every": 2}, runs_dir=tmp_path / "b", callbacks=[second])
    assert second.seen == [None, None, 2, 2, 4, 4]
    assert load_model(result.last_checkpoint).meta["epoch"] == 6
    throttled = Peek()  # epochs of milliseconds: the first is written, then at most one per 2 s (the default)
    mlcli.train(SPIRALS, overrides={"train.checkpoint_seconds": 2.0}, runs_dir=tmp_path / "c", callbacks=[throttled])
    assert throttled.seen == [None, 1, 1, 1, 1, 1]


def test_a_diverged_run_keeps_the_last_npz_of_its_last_good_epoch(tmp_path):
    class Blow:  # the weights blow up in the third epoch's first step
        def on_batch_end(self, run, event):
            if event.epoch == 3 and event.step == 1:
                for w in run.model.net.params().values():
                    w[...] = np.inf

    with pytest.raises(mlcli.errors.DivergenceError):
        mlcli.train(SPIRALS, runs_dir=tmp_path, callbacks=[Blow()])
    (run_dir,) = tmp_path.iterdir()
    assert load_model(run_dir / "checkpoints" / "last.npz").meta["epoch"] == 2
    assert json.loads((run_dir / "summary.json").read_text())["status"] == "diverged"


def _start(args: list, cwd: Path) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "mlcli", *map(str, args)], cwd=cwd, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)


@pytest.mark.slow
def test_sigkill_at_30_random_moments_then_resume_equals_an_unbroken_run(tmp_path):
    """Runs killed at seeded random moments (up to ten kills each, then left to finish, until 30 kills in all);
    every checkpoint left at any moment loads; each resumed chain's metrics and final weights equal an unbroken
    run's, bit for bit."""
    rng = np.random.default_rng(2026)
    kills = runs_done = 0
    while kills < 30:
        r = runs_done
        cfg = json.loads(json.dumps(SPIRALS))
        cfg.update(seed=r + 1, name=f"kill{r}")
        cfg["train"]["epochs"] = 150
        config = tmp_path / f"c{r}.yaml"
        config.write_text(json.dumps(cfg))
        unbroken = mlcli.train(config, runs_dir=tmp_path / f"unbroken{r}")
        runs = tmp_path / f"chain{r}"
        runs.mkdir()
        segments: list[Path] = []
        source, run_kills = None, 0
        while True:
            before = set(runs.iterdir())
            args = ["train", config] if source is None else ["resume", source]
            proc = _start([*args, "--runs-dir", runs, "-q"], tmp_path)
            killed = False
            if run_kills < 10 and kills < 30:
                time.sleep(float(rng.uniform(0.3, 1.1)))
                if proc.poll() is None:
                    proc.send_signal(signal.SIGKILL)
                    killed, run_kills, kills = True, run_kills + 1, kills + 1
            code = proc.wait(timeout=60)
            new = sorted(set(runs.iterdir()) - before)
            if new:
                segments.append(new[0])
                for ckpt in (new[0] / "checkpoints").glob("*.npz"):
                    load_model(ckpt)  # whatever the moment, what is left loads
                if (new[0] / "checkpoints" / "last.npz").exists():
                    source = new[0]
            if not killed:
                assert code == 0
                break
            if source is not None and load_model(source / "checkpoints" / "last.npz").meta["epoch"] == 150:
                break
        chain = []
        for seg in segments:
            last = seg / "checkpoints" / "last.npz"
            if last.exists():
                upto = load_model(last).meta["epoch"]
                chain += [row for row in read_jsonl(seg / "metrics.jsonl") if row["epoch"] <= upto]
        assert strip(chain) == strip(unbroken.history)
        final = last_weights(source)
        for name, value in last_weights(unbroken.run_dir).items():
            np.testing.assert_array_equal(final[name], value)
        runs_done += 1
    assert kills == 30 and runs_done >= 3


def test_stale_temporaries_of_a_killed_write_are_removed_at_the_next_start(tmp_path):
    first = mlcli.train(SPIRALS, overrides={"train.epochs": 2}, runs_dir=tmp_path / "a")
    stale = [first.run_dir / ".summary.json.0123456789abcdef.tmp",
             first.run_dir / "checkpoints" / ".last.npz.fedcba9876543210.tmp"]
    for path in stale:
        path.write_bytes(b"half a checkpoint")
    keep = first.run_dir / "notes.tmp"
    keep.write_text("mine")
    mlcli.resume(first.run_dir, epochs=3, runs_dir=tmp_path / "b")
    assert not any(p.exists() for p in stale) and keep.exists()


def _hold_lock(run_dir: Path) -> subprocess.Popen:
    code = ("import sys, time; from mlcli.runs.lock import RunLock; lock = RunLock(sys.argv[1]).acquire(); "
            "print('locked', flush=True); time.sleep(60)")
    proc = subprocess.Popen([sys.executable, "-c", code, str(run_dir)], stdout=subprocess.PIPE, text=True)
    assert proc.stdout.readline().strip() == "locked"
    return proc


def test_resume_of_a_live_run_is_refused_with_exit_7_naming_the_pid(tmp_path, cli, one_line_error):
    first = mlcli.train(SPIRALS, overrides={"train.epochs": 2}, runs_dir=tmp_path / "a")
    holder = _hold_lock(first.run_dir)
    try:
        one_line_error(cli("resume", first.run_dir, "--epochs", "3", "--runs-dir", tmp_path / "b"), 7,
                       f"in use by pid {holder.pid}")
        assert not (tmp_path / "b").exists()
    finally:
        holder.kill()
        holder.wait()
    # the holder died: its lock is stale and is taken over, with a warning naming it
    result = cli("resume", first.run_dir, "--epochs", "3", "--runs-dir", tmp_path / "b", "-q")
    assert result.exit_code == 0, result.stderr
    assert f"took over the lock of pid {holder.pid}" in result.stderr
    assert not (first.run_dir / "run.lock").exists()


def test_a_training_run_holds_its_lock_and_releases_it(tmp_path):
    class Check:
        def on_epoch_end(self, run, record):
            owner = json.loads((run.run_dir / "run.lock").read_text())
            assert owner["pid"] == os.getpid()

    result = mlcli.train(SPIRALS, overrides={"train.epochs": 1}, runs_dir=tmp_path, callbacks=[Check()])
    assert not (result.run_dir / "run.lock").exists()


def test_four_trainings_started_at_once_with_one_name_get_four_directories(tmp_path):
    config = tmp_path / "c.yaml"
    config.write_text(json.dumps(SPIRALS | {"train": SPIRALS["train"] | {"epochs": 2}}))
    procs = [_start(["train", config, "--name", "same", "--runs-dir", tmp_path / "runs", "-q"], tmp_path)
             for _ in range(4)]
    assert [p.wait(timeout=120) for p in procs] == [0, 0, 0, 0]
    dirs = sorted((tmp_path / "runs").iterdir())
    assert len(dirs) == 4 and all(d.name.startswith("same-") for d in dirs)
    assert all(json.loads((d / "summary.json").read_text())["status"] == "completed" for d in dirs)


@pytest.mark.parametrize("code, cause", [(errno.ENOSPC, "No space left on device"),
                                         (errno.EROFS, "Read-only file system")])
def test_a_full_or_read_only_disk_is_one_line_exit_6_and_the_previous_checkpoint_loads(
        tmp_path, monkeypatch, cli, one_line_error, code, cause):
    config = tmp_path / "c.yaml"
    config.write_text(json.dumps(SPIRALS))
    real_fsync = os.fsync
    calls = {"last": 0}

    def fsync(fd):  # the disk fills up while the third epoch's last.npz is written
        name = os.readlink(f"/proc/self/fd/{fd}") if os.path.exists(f"/proc/self/fd/{fd}") else ""
        if ".last.npz." in name:
            calls["last"] += 1
            if calls["last"] == 3:
                raise OSError(code, os.strerror(code))
        return real_fsync(fd)

    monkeypatch.setattr(os, "fsync", fsync)
    result = cli("train", config, "--runs-dir", tmp_path / "runs", "-q")
    one_line_error(result, 6, "last.npz", cause)
    (run_dir,) = (tmp_path / "runs").iterdir()
    assert load_model(run_dir / "checkpoints" / "last.npz").meta["epoch"] == 2
    assert not list((run_dir / "checkpoints").glob(".*.tmp"))  # the half-written file is gone


def test_a_disk_without_room_for_the_checkpoints_fails_before_training(tmp_path, monkeypatch, cli, one_line_error):
    import shutil

    from mlcli.runs import rundir

    config = tmp_path / "c.yaml"
    config.write_text(json.dumps(SPIRALS))
    monkeypatch.setattr(shutil, "disk_usage", lambda p: shutil._ntuple_diskusage(10**9, 10**9 - 1000, 1000))
    assert rundir.check_room  # the check lives in the run directory layer
    one_line_error(cli("train", config, "--runs-dir", tmp_path / "runs"), 6, "MiB free", "--runs-dir")
    assert not (tmp_path / "runs").exists() or list((tmp_path / "runs").iterdir()) == []


def test_a_real_small_file_system_fills_up_with_one_line_and_a_loadable_checkpoint(tmp_path, cli, one_line_error):
    mount = tmp_path / "small"
    mount.mkdir()
    done = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=4m", "tmpfs", str(mount)], capture_output=True)
    if done.returncode != 0:
        pytest.skip(f"cannot mount a small tmpfs here: {done.stderr.decode().strip() or done.returncode}")
    try:
        class Filler:  # after epoch 2, something else fills the disk (the run's own checks passed at its start)
            def on_epoch_end(self, run, record):
                if record["epoch"] == 2:
                    with open(mount / "filler", "wb") as f:
                        try:
                            while True:
                                f.write(b"\0" * 65536)
                        except OSError:
                            pass

        with pytest.raises(mlcli.errors.RunIOError, match="No space left on device"):
            mlcli.train(SPIRALS | {"model": {"type": "mlp", "hidden": [256]}}, runs_dir=mount / "runs",
                        callbacks=[Filler()])
        (run_dir,) = (mount / "runs").iterdir()
        assert load_model(run_dir / "checkpoints" / "last.npz").meta["epoch"] == 1
    finally:
        subprocess.run(["umount", str(mount)], check=False)
