import os
from pathlib import Path

import pytest

os.environ.setdefault("MTBENCH_PROFILE", "smoke")
os.environ.setdefault("MPLBACKEND", "Agg")

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="session")
def shared_data():
    """The real public data in ../shared/data; skipped with a reason only outside CI when absent."""
    from mtbench.profiles import data_root

    root = data_root()
    if not (root / "cohen-covid-mini").is_dir():
        if os.environ.get("CI"):
            pytest.fail(f"CI must have the real data at {root} (MTBENCH_DATA_ROOT)")
        pytest.skip(f"real public data not found at {root}; set MTBENCH_DATA_ROOT")
    return root


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    """Keep each phase's report on the item (``item.rep_call.passed``) for fixtures to read."""
    outcome = yield
    rep = outcome.get_result()
    setattr(item, f"rep_{rep.when}", rep)
