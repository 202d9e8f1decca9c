"""Unit folders are locked: two jobs sharing a dependency train it once; stale locks are broken."""

import json
import multiprocessing as mp
import os
import subprocess
import sys
import time
import types

import pytest

from mtbench.locks import LOCK_FILE, FolderLock, LockedError, is_stale


def _experiment(log):
    """A fake experiment: two arms after one shared, slow dependency; every run_unit is logged."""

    def units(config):
        return [{"arm": "base"}, {"arm": "a", "after": ["arm=base"]}, {"arm": "b", "after": ["arm=base"]}]

    def run_unit(config, unit, unit_dir, progress):
        with open(log, "a") as fh:
            fh.write(f"start {unit['arm']} {os.getpid()}\n")
        time.sleep(3.0 if unit["arm"] == "base" else 0.1)  # long enough that both jobs reach it
        with open(log, "a") as fh:
            fh.write(f"end {unit['arm']} {os.getpid()}\n")

    import pandas as pd

    table = pd.DataFrame({"sample_id": ["s0"], "patient_id": ["p0"], "split": ["test"]})
    return types.SimpleNamespace(units=units, run_unit=run_unit, data_manifest=lambda config: table,
                                 data_splits=lambda config: table)


def _job(run_dir, log, arm, go):
    from mtbench.runs import run_experiment

    go.wait(30)  # both jobs start together, as two array tasks would
    run_experiment(_experiment(log), {"profile": "smoke"}, run_dir, select={"arm": arm}, progress=False)


def test_two_jobs_sharing_a_dependency_train_it_once(tmp_path):
    log = tmp_path / "log.txt"
    run_dir = tmp_path / "run"
    ctx = mp.get_context("fork")
    go = ctx.Event()
    jobs = [ctx.Process(target=_job, args=(run_dir, log, arm, go)) for arm in ("a", "b")]
    for j in jobs:
        j.start()
    time.sleep(0.5)
    go.set()
    for j in jobs:
        j.join(60)
    assert [j.exitcode for j in jobs] == [0, 0]
    lines = log.read_text().splitlines()
    assert sum(line.startswith("start base") for line in lines) == 1, lines
    # the dependency finished before either dependent started
    assert lines.index(next(x for x in lines if x.startswith("end base"))) < min(
        i for i, x in enumerate(lines) if x.split()[:2] in (["start", "a"], ["start", "b"]))
    assert not list(run_dir.rglob(LOCK_FILE))


def _dead_pid() -> int:
    p = subprocess.Popen([sys.executable, "-c", "pass"])
    p.wait()
    return p.pid


def _write_lock(folder, **info):
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / LOCK_FILE
    path.write_text(json.dumps({"host": "elsewhere", "pid": 1, "time": "then", "token": "x", **info}))
    return path


def test_lock_of_a_dead_process_on_this_host_is_broken(tmp_path):
    import socket

    path = _write_lock(tmp_path / "u", host=socket.gethostname(), pid=_dead_pid())
    assert "no longer exists" in is_stale(path, 600)
    with pytest.warns(RuntimeWarning, match="Broke a stale lock"):
        with FolderLock(tmp_path / "u", timeout_s=1):
            assert json.loads(path.read_text())["pid"] == os.getpid()
    assert not path.exists()


def test_lock_without_heartbeat_is_broken_live_one_is_waited_for(tmp_path):
    path = _write_lock(tmp_path / "u")
    old = time.time() - 3600
    os.utime(path, (old, old))
    with pytest.warns(RuntimeWarning, match="no heartbeat"):
        FolderLock(tmp_path / "u", timeout_s=1).acquire().release()
    live = _write_lock(tmp_path / "v", pid=4242)  # another host, fresh heartbeat: not ours to break
    waited = []
    with pytest.raises(LockedError, match="pid 4242 on elsewhere"):
        FolderLock(tmp_path / "v", timeout_s=0.3, poll_s=0.1, on_wait=waited.append).acquire()
    assert live.exists() and waited and waited[0]["pid"] == 4242


def test_heartbeat_keeps_the_lock_fresh_and_release_only_removes_our_own(tmp_path):
    lock = FolderLock(tmp_path / "u", heartbeat_s=0.05, stale_after_s=0.5)
    with lock:
        os.utime(lock.path, (time.time() - 100, time.time() - 100))
        time.sleep(0.3)
        assert is_stale(lock.path, 50) is None  # refreshed by the heartbeat thread
        lock.path.write_text(json.dumps({"token": "someone-else"}))
    assert lock.path.exists()
