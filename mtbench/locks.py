"""A lock file per unit folder, so two jobs never train the same unit into one folder at once.

Job-array tasks that share a dependency (two arms ``after`` the same single-task arm) each try
to run it; with :class:`FolderLock` around a unit the first one trains it, the others wait and
then find it finished. The lock is a file ``<folder>/LOCK.json`` created atomically
(``O_CREAT | O_EXCL``, which shared cluster file systems honour), holding who took it (host,
pid, time, a random token). The holder refreshes the file's modification time every
``heartbeat_s`` seconds from a daemon thread.

A lock is *stale*, and is broken with a warning, when its holder is a process on this host that
no longer exists, or when its heartbeat is older than ``stale_after_s`` (a job killed on another
node, or the file unreadable). A live lock is waited for (``timeout_s``, default forever) and
then refused with :class:`LockedError` naming the holder.

Example::

    from mtbench.locks import FolderLock

    with FolderLock(unit_dir):
        if not (unit_dir / "DONE.json").is_file():   # another job may have finished it meanwhile
            train(unit_dir)
"""

from __future__ import annotations

import json
import os
import socket
import threading
import time
import uuid
import warnings
from pathlib import Path
from typing import Any

__all__ = ["FolderLock", "LockedError", "LOCK_FILE", "read_lock", "is_stale"]

LOCK_FILE = "LOCK.json"


class LockedError(TimeoutError):
    """The folder stayed locked by a live holder for longer than ``timeout_s``."""


def read_lock(path: str | Path) -> dict[str, Any] | None:
    """The holder recorded in a lock file (``None`` if there is none; ``{}`` if it is unreadable)."""
    try:
        return json.loads(Path(path).read_text())
    except FileNotFoundError:
        return None
    except (OSError, ValueError):
        return {}


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # exists, owned by someone else
        return True
    return True


def is_stale(path: str | Path, stale_after_s: float) -> str | None:
    """Why the lock at ``path`` is stale (a sentence), or ``None`` if it is live or absent."""
    path = Path(path)
    info = read_lock(path)
    try:
        age = time.time() - path.stat().st_mtime
    except FileNotFoundError:
        return None
    if info is None:
        return None
    if info.get("host") == socket.gethostname() and isinstance(info.get("pid"), int) and not _pid_alive(info["pid"]):
        return f"its holder, process {info['pid']} on this host, no longer exists"
    if age > stale_after_s:
        return f"no heartbeat for {age:.0f} s (limit {stale_after_s:.0f} s)"
    return None


class FolderLock:
    """Context manager: hold ``<folder>/LOCK.json`` while inside (see the module docstring).

    Parameters: ``timeout_s`` how long to wait for a live lock (``None``: forever); ``poll_s``
    how often to look again; ``heartbeat_s`` how often the holder refreshes the file;
    ``stale_after_s`` how old a heartbeat may be before the lock counts as abandoned (keep it
    well above ``heartbeat_s``); ``on_wait`` a callback ``(holder_info)`` called once when waiting
    starts (default: a printed line).
    """

    def __init__(self, folder: str | Path, *, timeout_s: float | None = None, poll_s: float = 2.0,
                 heartbeat_s: float = 30.0, stale_after_s: float = 600.0, on_wait=None):
        if stale_after_s <= heartbeat_s:
            raise ValueError(f"stale_after_s ({stale_after_s}) must exceed heartbeat_s ({heartbeat_s}).")
        self.folder = Path(folder)
        self.path = self.folder / LOCK_FILE
        self.timeout_s, self.poll_s = timeout_s, poll_s
        self.heartbeat_s, self.stale_after_s = heartbeat_s, stale_after_s
        self.on_wait = on_wait if on_wait is not None else self._print_wait
        self.token = uuid.uuid4().hex
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    @staticmethod
    def _print_wait(info: dict) -> None:
        print(f"[lock] waiting: {info.get('folder')} is held by pid {info.get('pid')} on {info.get('host')} "
              f"since {info.get('time')}", flush=True)

    def _try_create(self) -> bool:
        info = {"host": socket.gethostname(), "pid": os.getpid(), "time": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
                "token": self.token, "folder": str(self.folder)}
        try:
            fd = os.open(self.path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
        except FileExistsError:
            return False
        with os.fdopen(fd, "w") as fh:
            json.dump(info, fh)
        return True

    def _break(self, why: str) -> None:
        # Move the stale file aside under a unique name, then check it was the one judged stale:
        # if another job replaced it meanwhile, put that fresh lock back.
        judged = read_lock(self.path) or {}
        aside = self.path.with_name(f"{LOCK_FILE}.stale-{self.token}")
        try:
            os.rename(self.path, aside)
        except FileNotFoundError:
            return
        if (read_lock(aside) or {}).get("token") != judged.get("token"):
            try:
                os.link(aside, self.path)
            except FileExistsError:
                pass
        else:
            warnings.warn(f"Broke a stale lock on {self.folder} (held by pid {judged.get('pid')} on "
                          f"{judged.get('host')} since {judged.get('time')}): {why}.", RuntimeWarning, stacklevel=3)
        aside.unlink(missing_ok=True)

    def acquire(self) -> "FolderLock":
        self.folder.mkdir(parents=True, exist_ok=True)
        start, told = time.monotonic(), False
        while not self._try_create():
            why = is_stale(self.path, self.stale_after_s)
            if why:
                self._break(why)
                continue
            if self.timeout_s is not None and time.monotonic() - start >= self.timeout_s:
                info = read_lock(self.path) or {}
                raise LockedError(f"{self.folder} is locked by pid {info.get('pid')} on {info.get('host')} since "
                                  f"{info.get('time')} (waited {self.timeout_s:.0f} s). If that job is gone, "
                                  f"delete {self.path}.")
            if not told:
                self.on_wait(read_lock(self.path) or {"folder": str(self.folder)})
                told = True
            time.sleep(self.poll_s)
        self._stop.clear()
        self._thread = threading.Thread(target=self._beat, name=f"lock-heartbeat {self.folder.name}", daemon=True)
        self._thread.start()
        return self

    def _beat(self) -> None:
        while not self._stop.wait(self.heartbeat_s):
            try:
                os.utime(self.path)
            except OSError:
                return

    def release(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
            self._thread = None
        if (read_lock(self.path) or {}).get("token") == self.token:  # never remove a lock we do not hold
            self.path.unlink(missing_ok=True)

    def __enter__(self) -> "FolderLock":
        return self.acquire()

    def __exit__(self, *exc) -> None:
        self.release()
