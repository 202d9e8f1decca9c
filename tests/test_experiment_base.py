"""The experiment recipe of docs/architecture.md, followed by a tiny example; and the one run-folder
layout: a folder written by ``Experiment.run`` in a notebook is read by ``mtbench report`` exactly
like one written by ``mtbench run``."""

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from mtbench.cli import main
from mtbench.experiments import EXPERIMENTS, get_experiment
from mtbench.experiments.base import Arm, Experiment, ExperimentResult, UnitResult, arm_seed_units, cell_text
from mtbench.runs import run_experiment
from mtbench.tasks import Task

# ---------------------------------------------------------------- the recipe, step by step
# 1. default_config(profile): every setting in one dict (with "experiment" and "profile").
NAME = "tiny_threshold"
DESCRIPTION = "a score that is the label plus noise, vs. pure noise (the recipe's example)"
TASK = Task("y", "binary")


def default_config(profile=None):
    return {"experiment": NAME, "profile": profile or "smoke", "data": {"n": 60, "seed": 0},
            "arms": {"signal": ["y"], "noise": ["y"]}, "seeds": [0, 1], "bootstrap": {"n_boot": 30}}


# 2. prepare(cfg): the data and its splits, once per process (here an object with a .table).
class Prepared:
    def __init__(self, table):
        self.table = table


def prepare(cfg):
    rng = np.random.default_rng(cfg["data"]["seed"])
    n = cfg["data"]["n"]
    table = pd.DataFrame({"sample_id": [f"s{i}" for i in range(n)], "patient_id": [f"p{i}" for i in range(n)],
                          "y": rng.integers(0, 2, n).astype(float)})
    table["split"] = np.where(np.arange(n) < n // 2, "train", "test")
    return Prepared(table)


# 3. units(cfg): one per arm and seed (the shared helper does it).
units = arm_seed_units


# 4. train_unit(...): one unit's predictions, history and metrics.
def train_unit(cfg, unit, prepared, checkpoint_dir=None, progress=True, upstream=None):
    from mtbench.stats import bootstrap_metrics

    rng = np.random.default_rng(int(unit["seed"]))
    test = prepared.table[prepared.table["split"] == "test"]
    noise = rng.uniform(0, 1, len(test))
    prob = np.clip(0.6 * test["y"].to_numpy() + 0.4 * noise, 0, 1) if unit["arm"] == "signal" else noise
    preds = pd.DataFrame({"sample_id": test["sample_id"].to_numpy(), "y.target": test["y"].to_numpy(),
                          "y.prob": prob, "y.pred": (prob >= 0.5).astype(int)})
    preds.attrs["tasks"] = [TASK.to_dict()]
    metrics = bootstrap_metrics(preds, [TASK], n_boot=cfg["bootstrap"]["n_boot"], seed=int(unit["seed"]))
    metrics.insert(0, "arm", unit["arm"])
    metrics.insert(1, "seed", unit["seed"])
    history = pd.DataFrame({"epoch": [1], "train_loss": [0.0], "best_epoch": [1]})
    return UnitResult(preds, history, metrics)


# 5. aggregate(result, run_dir): tables over the finished units; the summary as text.
def aggregate(result, run_dir):
    result.results.to_csv(run_dir / "results.csv", index=False)
    auc = result.results[result.results["metric"] == "auc"]
    return "\n".join(f"{r.arm} seed {r.seed}: AUC {cell_text(r.value, r.ci_low, r.ci_high)}" for r in auc.itertuples())


# 6. EXPERIMENT = Experiment(...) and re-export its functions; 7. register the module.
EXPERIMENT = Experiment(NAME, default_config=default_config, prepare=prepare, units=units, train_unit=train_unit,
                        aggregate=aggregate)
run, run_unit, report, load_result = EXPERIMENT.run, EXPERIMENT.run_unit, EXPERIMENT.report, EXPERIMENT.load
data_manifest, data_splits = EXPERIMENT.data_manifest, EXPERIMENT.data_splits


@pytest.fixture
def registered():
    EXPERIMENTS.register(NAME, __name__)
    yield get_experiment(NAME)
    EXPERIMENTS.unregister(NAME)


def _folder_files(run_dir: Path) -> set[str]:
    skip = {"provenance.json", "invocations.jsonl", "summary.txt"}
    return {str(p.relative_to(run_dir)) for p in run_dir.rglob("*") if p.is_file() and p.name not in skip}


def test_recipe_example_runs_in_memory_and_the_signal_arm_wins(registered, tmp_path):
    result = registered.run(None, run_dir=tmp_path / "nb")
    assert isinstance(result, ExperimentResult) and set(result.predictions) == {"signal/seed0", "noise/seed0",
                                                                                 "signal/seed1", "noise/seed1"}
    auc = result.results[result.results["metric"] == "auc"].groupby("arm")["value"].mean()
    assert auc["signal"] > 0.9 and auc["noise"] < 0.8
    assert result.best_epochs == {k: 1 for k in result.predictions}


def test_notebook_and_cli_write_the_same_folder_and_report_reads_both(registered, tmp_path, capsys):
    nb_dir, cli_dir = tmp_path / "nb", tmp_path / "cli"
    registered.run(None, run_dir=nb_dir, progress=False)
    run_experiment(registered, default_config(), cli_dir, progress=False)
    assert registered.report(cli_dir)
    assert _folder_files(nb_dir) == _folder_files(cli_dir)
    for name in ("config.yaml", "data_fingerprint.json", "splits.csv", "results.csv"):
        assert (nb_dir / name).read_bytes() == (cli_dir / name).read_bytes(), name
    assert json.loads((nb_dir / "data_fingerprint.json").read_text())["data"]["rows"] == 60
    assert set(pd.read_csv(nb_dir / "splits.csv")["split"]) == {"train", "test"}
    capsys.readouterr()
    assert main(["report", str(nb_dir), str(cli_dir)]) == 0
    out = capsys.readouterr().out
    assert out.count("All units finished.") == 2 and out.count("signal seed 0: AUC") == 2


def test_quickstart_notebook_folder_is_read_by_mtbench_report(tmp_path, capsys):
    from mtbench.experiments import quickstart

    cfg = quickstart.default_config("smoke")
    cfg["data"].update(n_patients=80, size=48, n_prognosis_labels=20)
    cfg["train"]["epochs"], cfg["seeds"], cfg["bootstrap"]["n_boot"] = 1, [0], 20
    result = quickstart.run(cfg, run_dir=tmp_path, progress=False)
    capsys.readouterr()
    assert main(["report", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    assert "All units finished." in out and "multi_task" in out
    assert (tmp_path / "units" / "arm=multi_task" / "seed=0" / "DONE.json").is_file()
    assert quickstart.load_result(tmp_path).table().equals(result.table())


def test_notebook_run_resumes_like_mtbench_run(registered, tmp_path, capsys, monkeypatch):
    trained = []

    def counting(cfg, unit, *args, **kwargs):
        trained.append(f"{unit['arm']}/seed{unit['seed']}")
        return train_unit(cfg, unit, *args, **kwargs)

    monkeypatch.setattr(EXPERIMENT, "train_unit", counting)
    full = registered.run(None, run_dir=tmp_path / "full", progress=False)
    assert len(trained) == 4
    # the CLI finishes the signal arm; the notebook path, on the same folder, trains only the rest
    run_experiment(registered, default_config(), tmp_path / "mixed", select={"arm": "signal"}, progress=False)
    trained.clear()
    mixed = registered.run(None, run_dir=tmp_path / "mixed", progress=False)
    assert sorted(trained) == ["noise/seed0", "noise/seed1"]
    assert "2 of 4 unit(s) already finished" in capsys.readouterr().out
    pd.testing.assert_frame_equal(mixed.results, full.results)
    # a second notebook call trains nothing and reads the same result; mtbench report reads the folder
    trained.clear()
    again = registered.run(None, run_dir=tmp_path / "mixed", progress=False)
    assert trained == [] and set(again.models) == set(full.models)
    pd.testing.assert_frame_equal(again.results, full.results)
    assert main(["report", str(tmp_path / "mixed")]) == 0
    assert "All units finished." in capsys.readouterr().out


def test_changed_data_is_refused_on_resume(registered, tmp_path):
    run_experiment(registered, default_config(), tmp_path, select={"arm": "signal"}, progress=False)
    EXPERIMENT.prepare = lambda cfg: Prepared(prepare(cfg).table.assign(y=0.0))
    EXPERIMENT._last = None  # forget the data kept for the last configuration
    try:
        with pytest.raises(ValueError, match="data changed"):
            run_experiment(registered, default_config(), tmp_path, progress=False)
        with pytest.raises(ValueError, match="data changed"):  # the notebook path refuses it alike
            registered.run(None, run_dir=tmp_path, progress=False)
    finally:
        EXPERIMENT.prepare, EXPERIMENT._last = prepare, None


def test_arms_are_data():
    assert Arm.parse(["a", "b"]) == Arm(("a", "b"))
    assert Arm.parse({"tasks": ["a"], "upstream": "joint"}).needs == ["joint"]
    assert Arm.parse({"tasks": ["a"], "init": "average_of:stl_t1, stl_t2"}).needs == ["stl_t1", "stl_t2"]
    with pytest.raises(ValueError, match="upstream"):
        Arm.parse({"tasks": ["a"], "init": "copy:x"}).needs
    cfg = {"seeds": [3], "arms": {"joint": ["a"], "ft": {"tasks": ["a"], "upstream": "joint"}}}
    assert arm_seed_units(cfg) == [{"arm": "joint", "seed": 3}, {"arm": "ft", "seed": 3, "after": ["arm=joint/seed=3"]}]
