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


def test_bad_set_key_is_a_clear_error(tmp_path, capsys):
    assert main(["run", "quickstart", "--out", str(tmp_path), "--set", "train.epochz=1"]) == 2
    assert "unknown key 'epochz'" in capsys.readouterr().err
