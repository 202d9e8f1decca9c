"""Issue 14, "runs that say what they used": every run records and prints its data sources
(``data_sources.json``), flags degenerate results (``degenerate_flags.csv``), refuses single-class
test folds, draws its figures; ``--data-root`` selects real data or says how; nothing is dropped
without a count. Each test here failed before the change it checks."""

import json
import shutil

import numpy as np
import pandas as pd
import pytest

from mtbench.cli import main
from mtbench.experiments.base import Experiment, UnitResult, arm_seed_units
from mtbench.guards import DegenerateResultError
from mtbench.runs import data_fingerprint
from mtbench.tasks import Task

TASK = Task("y", "binary")


def default_config(profile=None):
    return {"experiment": "tiny_checks", "profile": "smoke", "data": {"n": 60, "single_class": False},
            "arms": {"signal": ["y"], "constant": ["y"]}, "seeds": [0]}


class Prepared:
    def __init__(self, table, sources=None):
        self.table = table
        if sources is not None:
            self.sources = sources


def prepare(cfg):
    n = cfg["data"]["n"]
    y = np.tile([0.0, 1.0], n // 2)
    if cfg["data"]["single_class"]:
        y[n // 2:] = 1.0  # every test label is 1
    table = pd.DataFrame({"sample_id": [f"s{i}" for i in range(n)], "patient_id": [f"p{i}" for i in range(n)], "y": y,
                          "split": np.where(np.arange(n) < n // 2, "train", "test")})
    return Prepared(table, cfg["data"].get("sources"))


def train_unit(cfg, unit, prepared, checkpoint_dir=None, progress=True, upstream=None):
    from mtbench.stats import bootstrap_metrics

    test = prepared.table[prepared.table["split"] == "test"]
    rng = np.random.default_rng(0)
    y = test["y"].to_numpy()
    prob = np.clip(0.6 * y + 0.4 * rng.uniform(0, 1, len(y)), 0, 1) if unit["arm"] == "signal" else np.full(len(y), 0.3)
    preds = pd.DataFrame({"sample_id": test["sample_id"].to_numpy(), "y.target": y, "y.prob": prob,
                          "y.pred": (prob >= 0.5).astype(int)})
    preds.attrs["tasks"] = [TASK.to_dict()]
    metrics = bootstrap_metrics(preds, [TASK], n_boot=20, seed=0)
    metrics.insert(0, "arm", unit["arm"])
    metrics.insert(1, "seed", unit["seed"])
    history = pd.DataFrame({"epoch": [1, 2, 3], "train_loss": [0.9, 0.7, 0.6], "val_loss": [0.8, 0.7, 0.75],
                            "best_epoch": [2, 2, 2]})
    return UnitResult(preds, history, metrics)


def aggregate(result, run_dir):
    result.results.to_csv(run_dir / "results.csv", index=False)
    return "aggregated"


EXP = Experiment("tiny_checks", default_config=default_config, prepare=prepare, units=arm_seed_units,
                 train_unit=train_unit, aggregate=aggregate)


def test_run_records_and_prints_its_data_sources(tmp_path, capsys):
    EXP.run(run_dir=tmp_path, progress=False)
    sources = json.loads((tmp_path / "data_sources.json").read_text())
    assert sources == [{"name": "data", "kind": "synthetic", "source": None, "root": None, "rows": 60, "excluded": {}}]
    assert "data data: synthetic (None): 60 rows" in capsys.readouterr().out


def test_declared_sources_are_written_as_given(tmp_path):
    cfg = default_config()
    cfg["data"]["sources"] = [{"name": "prognosis", "kind": "real", "source": "cohen_covid", "root": "/x", "rows": 30,
                               "files_found": 30, "files_missing": 6, "excluded": {"image file missing": 6}}]
    EXP.run(cfg, run_dir=tmp_path, progress=False)
    assert json.loads((tmp_path / "data_sources.json").read_text()) == cfg["data"]["sources"]


def test_degenerate_results_flagged_in_run_and_report(tmp_path, capsys):
    EXP.run(run_dir=tmp_path, progress=False)
    out = capsys.readouterr().out
    flags = pd.read_csv(tmp_path / "degenerate_flags.csv")
    const = flags[flags["model"] == "constant/seed0"]
    assert set(const["what"]) == {"one_class_predictions", "constant_scores"}
    assert "signal/seed0" not in set(flags["model"])
    assert "WARNING degenerate result: [constant_scores] task 'y' (model=constant/seed0)" in out
    text = EXP.report(tmp_path)  # what `mtbench report` prints
    assert "WARNING degenerate result: [one_class_predictions]" in text


def test_single_class_test_fold_refused_unless_allowed(tmp_path):
    cfg = default_config()
    cfg["data"]["single_class"] = True
    with pytest.raises(DegenerateResultError, match="allow_single_class"):
        EXP.run(cfg, run_dir=tmp_path / "a", progress=False)
    cfg["allow_single_class"] = True
    EXP.run(cfg, run_dir=tmp_path / "b", progress=False)
    flags = pd.read_csv(tmp_path / "b" / "degenerate_flags.csv")
    assert "single_class_fold" in set(flags["what"])


def test_single_class_test_fold_refused_before_any_training(tmp_path, monkeypatch):
    """The refusal comes from the label table and the split, before a unit trains (issue 14):
    through ``Experiment.run``, through ``mtbench run``'s ``run_experiment``, and for a long split
    table (one row per fold and sample, as Cobo et al.'s) beside a table without split columns."""
    from mtbench.runs import run_experiment
    from mtbench.run_checks import refuse_single_class_folds

    trained = []
    exp = Experiment("tiny_checks", default_config=default_config, prepare=prepare, units=arm_seed_units,
                     train_unit=lambda *a, **k: trained.append(1) or train_unit(*a, **k), aggregate=aggregate,
                     tasks=lambda cfg: {"y": TASK})
    cfg = default_config()
    cfg["data"]["single_class"] = True
    with pytest.raises(DegenerateResultError, match=r"nothing was trained(.|\n)*allow_single_class"):
        exp.run(cfg, run_dir=tmp_path / "a", progress=False)
    with pytest.raises(DegenerateResultError, match="single_class_fold"):
        run_experiment(exp, cfg, tmp_path / "b", progress=False)
    assert trained == []
    assert exp.check_test_folds(default_config()) == []  # both classes in the test split: nothing to say
    table = pd.DataFrame({"sample_id": list("abcd"), "y": [0, 1, 0, 0]})
    long = pd.DataFrame({"fold": [0, 0, 0, 0, 1, 1, 1, 1], "sample_id": list("abcdabcd"),
                         "split": ["test", "test", "train", "train", "train", "train", "test", "test"]})
    with pytest.raises(DegenerateResultError, match=r"fold=1"):
        refuse_single_class_folds({}, table, long, {"y": TASK})
    with pytest.warns(UserWarning, match="single_class_fold"):
        flags = refuse_single_class_folds({"allow_single_class": True}, table, long, [TASK, Task("r", "regression")])
    assert [(f.fold, f.what) for f in flags] == [("1", "single_class_fold")]


def test_run_folder_holds_figures(tmp_path):
    from PIL import Image

    EXP.run(run_dir=tmp_path, progress=False)
    for name in ("fig_metrics.png", "fig_learning_curves.png", "fig_roc.png"):
        with Image.open(tmp_path / name) as im:
            assert im.size[0] > 200 and im.size[1] > 200, name


def test_learning_curves_compare_arms_on_the_tasks_they_share():
    from mtbench.plots import history_columns

    single = pd.DataFrame({"epoch": [1, 2], "train_loss": [1.0, 0.5], "train_loss.p": [1.0, 0.5],
                           "val_loss": [1.1, 0.9], "val_loss.p": [1.1, 0.9]})
    multi = single.assign(**{"train_loss.s": [2.0, 1.0], "val_loss.s": [2.0, 1.5], "train_loss": [3.0, 1.5]})
    # the multi-task total (p + s) is not comparable with the single-task one: each shared task once
    assert history_columns({"st/seed0": single, "mt/seed0": multi}) == ["train_loss.p", "val_loss.p"]
    assert history_columns({"mt/seed0": multi}) == ["train_loss.p", "train_loss.s", "val_loss.p", "val_loss.s"]
    other = pd.DataFrame({"epoch": [1], "train_loss": [1.0], "train_loss.q": [1.0]})
    assert history_columns({"st/seed0": single, "q/seed0": other}) == ["train_loss", "val_loss"]


# ------------------------------------------------------------------ real data: missing images
@pytest.fixture
def cohen_copy(shared_data, tmp_path):
    """The shared Cohen mini clone with its images as symlinks (cheap to delete from)."""
    src = shared_data / "cohen-covid-mini"
    dst = tmp_path / "cohen-covid-mini"
    shutil.copytree(src, dst, symlinks=True, ignore=shutil.ignore_patterns("images"))
    images = dst / "covid-chestxray-dataset" / "images"
    images.mkdir()
    for f in (src / "covid-chestxray-dataset" / "images").iterdir():
        (images / f.name).symlink_to(f)
    return dst


def test_deleted_images_are_counted_in_fingerprint_and_sources(cohen_copy):
    from mtbench.data.sources import cohen_covid
    from mtbench.run_checks import manifest_sources, source_lines

    before = cohen_covid.load_manifest(cohen_copy)
    base_missing = data_fingerprint(before)["data"]["missing_files"]
    for p in sorted(before.table["path"])[:6]:
        (cohen_copy / "covid-chestxray-dataset" / "images" / p.split("/")[-1]).unlink()
    after = cohen_covid.load_manifest(cohen_copy)
    assert len(after.table) == len(before.table) - 6  # the loader skips them ...
    assert data_fingerprint(after)["data"]["missing_files"] == base_missing + 6  # ... and the fingerprint says so
    src = manifest_sources(after, {"data": {"source": "cohen"}})[0]
    assert src["kind"] == "real" and src["root"] == str(cohen_copy)
    assert src["files_missing"] == base_missing + 6 and src["excluded"]["image file missing"] == base_missing + 6
    assert source_lines([src])[0].startswith("WARNING data data: real (cohen) at")
    assert "the loader left out (whole collection):" in source_lines([src])[0]


# ------------------------------------------------------------------ CLI
def test_data_root_with_synthetic_config_refused_with_the_set_to_use(capsys, tmp_path):
    assert main(["run", "ruffini2024", "--profile", "smoke", "--data-root", str(tmp_path), "--out", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert "data.source=synthetic" in err and "--set data.source=aiforcovid_brixia" in err and "data.source=cohen" in err
    assert main(["run", "quickstart", "--data-root", str(tmp_path), "--out", str(tmp_path)]) == 2
    assert "--set data.source=table --set data.table=" in capsys.readouterr().err  # your own data (issue 16)


def test_describe_prints_the_fidelity_table(capsys):
    from mtbench.fidelity import describe

    assert main(["describe", "cobo2024"]) == 0
    assert describe("cobo2024", "full") in capsys.readouterr().out
    assert main(["describe", "gong2023", "--profile", "smoke"]) == 0
    assert describe("gong2023", "smoke") in capsys.readouterr().out
    assert main(["describe", "quickstart"]) == 2
    assert "no fidelity table" in capsys.readouterr().err


def test_allow_single_class_is_a_generic_set_key():
    from mtbench.cli import _set_nested

    cfg = {"data": {}}
    _set_nested(cfg, "allow_single_class", True)
    assert cfg["allow_single_class"] is True


# ------------------------------------------------------------------ nothing dropped without a count
def test_validate_split_file_drops_no_row(shared_data, tmp_path):
    from mtbench.data.sources import cohen_covid
    from mtbench.data.validate import validate_dataset

    ids = cohen_covid.load_manifest(shared_data / "cohen-covid-mini").table["sample_id"].tolist()
    sp = pd.DataFrame({"sample_id": ids[:-3] + [ids[0]], "split": ["train"] * (len(ids) - 3) + ["train"]})
    sp.to_csv(tmp_path / "splits.csv", index=False)
    rep = validate_dataset("cohen_covid", root=shared_data / "cohen-covid-mini", read_files=False, hash_files=False,
                           splits=tmp_path / "splits.csv", progress=False)
    codes = [p.code for p in rep.problems]
    assert rep.counts["samples_without_split"] == 3 and "not-in-splits" in codes
    assert "duplicate-id" in codes
