"""Profiles and environment: the one place that reads mtbench's environment variables.

``MTBENCH_PROFILE``
    ``smoke`` (default): synthetic data plus the small real public sets, few epochs, random-init
    weights; what CI and laptops run. ``full``: the papers' protocols on the real data, on a GPU.
``MTBENCH_DATA_ROOT``
    Where real data sets live. Defaults to ``../shared/data`` next to the project checkout (the
    small real public sets the project is developed with), else ``./data``.
``MTBENCH_RUNS_DIR``
    Where run folders are written (default ``./runs``).
"""

from __future__ import annotations

import os
import platform
import sys
from pathlib import Path
from typing import TypeVar

PROFILES = ("smoke", "full")
T = TypeVar("T")

_PROJECT_ROOT = Path(__file__).resolve().parent.parent


def current_profile() -> str:
    """The active profile name, from ``MTBENCH_PROFILE`` (default ``smoke``)."""
    name = os.environ.get("MTBENCH_PROFILE", "smoke").strip().lower() or "smoke"
    if name not in PROFILES:
        raise ValueError(f"MTBENCH_PROFILE={name!r} is not a profile; use one of {PROFILES}.")
    return name


def by_profile(smoke: T, full: T, profile: str | None = None) -> T:
    """Pick a value for the active (or given) profile: ``by_profile(smoke=3, full=100)``."""
    profile = profile or current_profile()
    if profile not in PROFILES:
        raise ValueError(f"Unknown profile {profile!r}; use one of {PROFILES}.")
    return smoke if profile == "smoke" else full


def data_root() -> Path:
    """Root folder of real data sets (``MTBENCH_DATA_ROOT``, else ``../shared/data``, else ``./data``)."""
    env = os.environ.get("MTBENCH_DATA_ROOT")
    if env:
        return Path(env).expanduser().resolve()
    for candidate in (_PROJECT_ROOT.parent / "shared" / "data", Path.cwd().parent / "shared" / "data"):
        if candidate.is_dir():
            return candidate.resolve()
    return (Path.cwd() / "data").resolve()


def runs_root() -> Path:
    """Where run folders go (``MTBENCH_RUNS_DIR``, default ``./runs``)."""
    return Path(os.environ.get("MTBENCH_RUNS_DIR", "runs")).expanduser().resolve()


def environment_report() -> dict[str, str]:
    """Profile, device and versions: printed by the first cell of every notebook."""
    import numpy
    import torch

    from mtbench import __version__
    from mtbench.train.device import resolve_device

    device = resolve_device("auto")
    report = {
        "mtbench": __version__,
        "profile": current_profile(),
        "device": str(device) + (f" ({torch.cuda.get_device_name(device)})" if device.type == "cuda" else ""),
        "python": sys.version.split()[0],
        "torch": torch.__version__,
        "numpy": numpy.__version__,
        "platform": platform.platform(terse=True),
        "cpu_threads": str(torch.get_num_threads()),
        "data_root": str(data_root()),
    }
    try:
        import timm

        report["timm"] = timm.__version__
    except ImportError:  # pragma: no cover
        pass
    return report


def print_environment() -> None:
    """Print :func:`environment_report` as aligned ``key: value`` lines."""
    rep = environment_report()
    width = max(map(len, rep))
    for k, v in rep.items():
        print(f"{k:<{width}} : {v}")
