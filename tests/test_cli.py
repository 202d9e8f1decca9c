import subprocess
import sys

import pandas as pd

from mtbench import __version__
from mtbench.cli import main


def test_version():
    out = subprocess.run([sys.executable, "-m", "mtbench", "--version"], capture_output=True, text=True)
    assert out.stdout.strip() == f"mtbench {__version__}"


def test_list(capsys):
    for what in ("backbones", "experiments", "datasets", "weightings", "metrics"):
        assert main(["list", what]) == 0
    out = capsys.readouterr().out
    assert "convnet" in out and "quickstart" in out and "synthetic_cxr" in out and "equal" in out and "qwk" in out


def test_run_quickstart_writes_a_run_folder(tmp_path, capsys):
    args = [
        "run", "quickstart", "--profile", "smoke", "--out", str(tmp_path), "--quiet",
        "--set", "data.n_patients=80", "--set", "data.size=48", "--set", "train.epochs=1",
        "--set", "seeds=[0]", "--set", "bootstrap.n_boot=20", "--set", "data.n_prognosis_labels=20",
    ]
    assert main(args) == 0
    (run_dir,) = list((tmp_path / "quickstart").iterdir())
    for name in ("config.yaml", "provenance.json", "splits.csv", "results.csv", "learning_curves.png", "comparison.png", "summary.txt"):
        assert (run_dir / name).is_file(), name
    assert (run_dir / "multi_task" / "seed0" / "predictions.csv").is_file()
    results = pd.read_csv(run_dir / "results.csv")
    assert set(results["model"]) == {"single_task", "multi_task"}
    assert "auc" in capsys.readouterr().out
    # A second run never overwrites the first.
    assert main(args) == 0
    assert len(list((tmp_path / "quickstart").iterdir())) == 2


def test_bad_set_key_is_a_clear_error(tmp_path):
    import pytest

    with pytest.raises(SystemExit, match="unknown key 'epochz'"):
        main(["run", "quickstart", "--out", str(tmp_path), "--set", "train.epochz=1"])
