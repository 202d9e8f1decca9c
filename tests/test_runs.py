"""Run folders: provenance, no overwrite, resume by unit, plan/report round trip, 2-process DDP."""

import json
import os
import shlex
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

from mtbench.cli import main

ROOT = Path(__file__).resolve().parent.parent
TINY = [
    "--set", "data.n_patients=80", "--set", "data.size=48", "--set", "train.epochs=1", "--set", "seeds=[0]",
    "--set", "bootstrap.n_boot=20", "--set", "data.n_prognosis_labels=20",
]


def _run_dirs(tmp_path):
    return sorted((tmp_path / "quickstart").iterdir())


def test_run_writes_a_complete_run_folder_and_never_overwrites(tmp_path, capsys):
    args = ["run", "quickstart", "--profile", "smoke", "--out", str(tmp_path), "--quiet", *TINY]
    assert main(args) == 0
    (run_dir,) = _run_dirs(tmp_path)
    for name in ("config.yaml", "provenance.json", "splits.csv", "results.csv", "fig_learning_curves.png", "fig_metrics.png", "summary.txt"):
        assert (run_dir / name).is_file(), name
    prov = json.loads((run_dir / "provenance.json").read_text())
    assert {"torch", "device", "git_commit", "profile"} <= set(prov)
    fp = json.loads((run_dir / "data_fingerprint.json").read_text())
    assert fp["data"]["rows"] == 80 and len(fp["data"]["manifest_sha1"]) == 40
    unit = run_dir / "units" / "arm=multi_task" / "seed=0"
    for name in ("predictions.csv", "predictions.tasks.json", "history.csv", "metrics.csv", "DONE.json", "last.pt", "best.pt"):
        assert (unit / name).is_file(), name
    assert set(pd.read_csv(run_dir / "results.csv")["model"]) == {"single_task", "multi_task"}
    stamp = (unit / "predictions.csv").stat().st_mtime_ns
    capsys.readouterr()
    # The same command again: the same folder, every unit skipped, nothing rewritten.
    assert main(args) == 0
    assert "nothing was re-run" in capsys.readouterr().out
    assert _run_dirs(tmp_path) == [run_dir] and (unit / "predictions.csv").stat().st_mtime_ns == stamp
    # A different configuration gets its own folder.
    assert main(args + ["--set", "train.lr=0.01"]) == 0
    assert len(_run_dirs(tmp_path)) == 2
    # --new forces a fresh folder for the same configuration.
    assert main(args + ["--new", "--arm", "single_task"]) == 0
    assert len(_run_dirs(tmp_path)) == 3


def test_plan_then_units_then_report_round_trip(tmp_path, capsys):
    assert main(["plan", "quickstart", "--out", str(tmp_path), *TINY]) == 0
    lines = [line for line in capsys.readouterr().out.splitlines() if line.startswith("mtbench run")]
    assert len(lines) == 2 and all("--arm" in line and "--seed 0" in line for line in lines)
    # Run only the first unit (as one job of an array would); the report lists the other as missing.
    assert main(shlex.split(lines[0])[1:]) == 0
    run_dir = Path(shlex.split(lines[0])[shlex.split(lines[0]).index("--run-dir") + 1])
    capsys.readouterr()
    main(["report", str(run_dir)])
    out = capsys.readouterr().out
    assert "1 unit(s) missing: arm=multi_task/seed=0" in out
    assert main(shlex.split(lines[1])[1:]) == 0
    capsys.readouterr()
    assert main(["report", str(run_dir)]) == 0
    out = capsys.readouterr().out
    assert "All units finished." in out and "multi_task" in out and "single_task" in out


def test_select_unknown_unit_fails_clearly(tmp_path):
    with pytest.raises(ValueError, match="No unit matches"):
        main(["run", "quickstart", "--out", str(tmp_path), "--arm", "nope", *TINY, "--debug"])
    with pytest.raises(ValueError, match="have no 'fold'"):
        main(["run", "quickstart", "--out", str(tmp_path), "--fold", "1", *TINY, "--debug"])


@pytest.mark.slow
def test_two_process_ddp_on_cpu_gives_each_sample_once(tmp_path):
    env = dict(os.environ, PYTHONPATH=str(ROOT), OMP_NUM_THREADS="1", MTBENCH_PROFILE="smoke")
    cmd = [
        sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2",
        "-m", "mtbench", "run", "quickstart", "--out", str(tmp_path), "--quiet", *TINY,
        "--set", "data.n_patients=81",  # odd test split: the sampler must pad, and the padding must vanish
    ]
    out = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=900, cwd=tmp_path)
    assert out.returncode == 0, out.stderr[-3000:]
    (run_dir,) = _run_dirs(tmp_path)
    splits = pd.read_csv(run_dir / "splits.csv", dtype={"sample_id": str})
    test_ids = set(splits.loc[splits["split"] == "test", "sample_id"])
    for arm in ("single_task", "multi_task"):
        preds = pd.read_csv(run_dir / "units" / f"arm={arm}" / "seed=0" / "predictions.csv", dtype={"sample_id": str})
        assert preds["sample_id"].is_unique
        assert set(preds["sample_id"]) == test_ids
    assert (run_dir / "results.csv").is_file() and (run_dir / "summary.txt").is_file()
    invocations = [json.loads(line) for line in (run_dir / "invocations.jsonl").read_text().splitlines()]
    assert invocations[-1]["world_size"] == 2


def test_ruffini_units_respect_arm_dependencies_and_report(tmp_path, capsys):
    """The paper's sweep as units: FT/MDMT units run after (and from) their STL units' checkpoints."""
    from mtbench.experiments import ruffini2024
    from mtbench.runs import unit_key

    cfg = ruffini2024.default_config("smoke")
    units = ruffini2024.units(cfg)
    keys = [unit_key(u) for u in units]
    assert len(units) == len(cfg["model"]["backbones"]) * cfg["protocol"]["n_folds"] * len(cfg["arms"])
    for u in units:
        for dep in u.get("after", []):
            assert keys.index(dep) < keys.index(unit_key(u))
    mdmt = next(u for u in units if u["arm"] == "mdmt")
    assert sorted(mdmt["after"]) == sorted(unit_key({**mdmt, "arm": a}) for a in ("stl_prognosis", "stl_severity"))
    tiny = ["--set", "train.epochs=1", "--set", "train.steps=null", "--set", "data.synthetic.n_patients=60", "--set", "data.size=32",
            "--set", "bootstrap.n_boot=10", "--set", "protocol.folds=['0']"]
    # Asking for the MDMT unit alone runs its two STL dependencies first.
    assert main(["run", "ruffini2024", "--out", str(tmp_path), "--quiet", "--arm", "mdmt", *tiny]) == 0
    (run_dir,) = sorted((tmp_path / "ruffini2024").iterdir())
    done = sorted(p.parent.relative_to(run_dir / "units").as_posix() for p in run_dir.glob("units/**/DONE.json"))
    assert done == ["backbone=convnet/fold=0/arm=mdmt", "backbone=convnet/fold=0/arm=stl_prognosis",
                    "backbone=convnet/fold=0/arm=stl_severity"]
    out = capsys.readouterr().out
    assert "1 unit(s) not finished yet: backbone=convnet/fold=0/arm=ft" in out
    assert (run_dir / "compare_with_paper.csv").is_file()


def test_cobo_units_run_one_fold_and_report(tmp_path, capsys):
    """The ICH ablation as units (arm x fold): one unit runs alone, the report names the rest."""
    from mtbench.experiments import cobo2024

    cfg = cobo2024.default_config("smoke")
    assert len(cobo2024.units(cfg)) == len(cfg["arms"]) * cfg["cv"]["n_splits"]
    tiny = ["--set", "train.epochs=1", "--set", "data.phantom.n_patients=24", "--set", "bootstrap.n_boot=10"]
    assert main(["run", "cobo2024", "--out", str(tmp_path), "--quiet", "--arm", "mt_bin_gcs", "--fold", "0", *tiny]) == 0
    (run_dir,) = sorted((tmp_path / "cobo2024").iterdir())
    assert (run_dir / "units" / "arm=mt_bin_gcs" / "fold=0" / "DONE.json").is_file()
    assert (run_dir / "splits.csv").is_file() and (run_dir / "results.csv").is_file()
    out = capsys.readouterr().out
    assert "unit(s) not finished yet" in out and "arm=baseline/fold=0" in out


def test_data_fingerprint_names_files_and_refuses_changed_data(tmp_path):
    from mtbench.runs import data_fingerprint

    a, b = tmp_path / "a.png", tmp_path / "b.png"
    a.write_bytes(b"12345")
    b.write_bytes(b"1")
    table = pd.DataFrame({"sample_id": ["a", "b", "c"], "path": [str(a), str(b), str(tmp_path / "gone.png")]})
    fp = data_fingerprint(table)["data"]
    assert fp["files"] == 3 and fp["missing_files"] == 1 and fp["total_bytes"] == 6
    b.write_bytes(b"12")
    assert data_fingerprint(table)["data"]["files_sha1"] != fp["files_sha1"]


def test_resume_refuses_when_the_data_changed(tmp_path):
    args = ["run", "quickstart", "--out", str(tmp_path), "--quiet", "--arm", "single_task", *TINY]
    assert main(args) == 0
    (run_dir,) = _run_dirs(tmp_path)
    fp_file = run_dir / "data_fingerprint.json"
    fp = json.loads(fp_file.read_text())
    fp["data"]["rows"] = 79
    fp_file.write_text(json.dumps(fp))
    with pytest.raises(ValueError, match="The data changed since this run started"):
        main(["run", "quickstart", "--out", str(tmp_path), "--quiet", "--arm", "multi_task", *TINY, "--debug"])
