"""Run folders: where an experiment writes its configuration, provenance and results.

A run never overwrites another: each gets a new folder ``<root>/<experiment>/<timestamp>-<profile>``.
"""

from __future__ import annotations

import json
import platform
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any, Mapping

import yaml

from mtbench.profiles import current_profile, runs_root


def create_run_dir(experiment: str, root: str | Path | None = None, profile: str | None = None) -> Path:
    """Make and return a fresh run folder (a numeric suffix is added rather than overwrite)."""
    root = Path(root) if root is not None else runs_root()
    stamp = time.strftime("%Y%m%d-%H%M%S")
    base = root / experiment / f"{stamp}-{profile or current_profile()}"
    path, k = base, 1
    while True:
        try:
            path.mkdir(parents=True, exist_ok=False)
            return path
        except FileExistsError:
            k += 1
            path = base.with_name(f"{base.name}-{k}")


def _git_commit() -> str | None:
    try:
        here = Path(__file__).resolve().parent
        out = subprocess.run(["git", "rev-parse", "HEAD"], cwd=here, capture_output=True, text=True, timeout=5)
        if out.returncode != 0:
            return None
        dirty = subprocess.run(["git", "status", "--porcelain"], cwd=here, capture_output=True, text=True, timeout=5)
        return out.stdout.strip() + ("+dirty" if dirty.stdout.strip() else "")
    except (OSError, subprocess.SubprocessError):
        return None


def provenance() -> dict[str, Any]:
    """Versions, git commit, device and host: what is needed to say where a number came from."""
    from mtbench.profiles import environment_report

    env = environment_report()
    return {
        **env,
        "git_commit": _git_commit(),
        "command": " ".join(sys.argv),
        "host": socket.gethostname(),
        "machine": platform.machine(),
        "time": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
    }


def write_run_info(run_dir: str | Path, config: Mapping[str, Any], extra: Mapping[str, Any] | None = None) -> None:
    """Write ``config.yaml`` and ``provenance.json`` into a run folder."""
    run_dir = Path(run_dir)
    (run_dir / "config.yaml").write_text(yaml.safe_dump(_plain(config), sort_keys=False))
    (run_dir / "provenance.json").write_text(json.dumps({**provenance(), **dict(extra or {})}, indent=2, default=str))


def _plain(obj: Any) -> Any:
    """Make a config YAML-safe (tuples -> lists, paths -> strings)."""
    if isinstance(obj, Mapping):
        return {str(k): _plain(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_plain(v) for v in obj]
    if isinstance(obj, Path):
        return str(obj)
    return obj
