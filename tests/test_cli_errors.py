"""CLI errors are one line with exit code 2; --debug shows the traceback (issue 14)."""

import io

import numpy as np
import pandas as pd
import pytest
from PIL import Image

from mtbench.cli import main
from mtbench.cli_errors import friendly_errors


def _one_error_line(capsys) -> str:
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1, err
    assert err.startswith("mtbench: error: ")
    return err


def test_unknown_experiment_is_one_line_exit_2(capsys, tmp_path):
    assert main(["run", "no_such_experiment", "--out", str(tmp_path)]) == 2
    err = _one_error_line(capsys)
    assert "no_such_experiment" in err and "Traceback" not in err and "--debug" in err


def test_debug_shows_the_traceback(tmp_path):
    with pytest.raises(Exception, match="no_such_experiment"):
        main(["run", "no_such_experiment", "--out", str(tmp_path), "--debug"])


def test_bad_set_key_is_one_line_exit_2(capsys, tmp_path):
    assert main(["run", "quickstart", "--out", str(tmp_path), "--set", "train.epochz=1"]) == 2
    assert "unknown key 'epochz'" in _one_error_line(capsys)


def test_argparse_usage_errors_keep_their_exit_code():
    with pytest.raises(SystemExit) as e:
        main(["list", "nothing"])
    assert e.value.code == 2


def _truncated_jpeg(path):
    buf = io.BytesIO()
    Image.fromarray((np.random.default_rng(0).random((64, 64)) * 255).astype(np.uint8)).save(buf, "JPEG")
    path.write_bytes(buf.getvalue()[: len(buf.getvalue()) // 2])
    return path


def test_truncated_jpeg_is_one_line_naming_the_file(capsys, tmp_path):
    """The X-ray reader (mtbench.data.cxr) on a truncated JPEG, run behind the CLI's error handling."""
    from mtbench.data.cxr import CXRPreprocess, preprocess_images

    bad = _truncated_jpeg(tmp_path / "patient7_truncated.jpg")

    @friendly_errors
    def cli(argv):
        preprocess_images(pd.DataFrame({"path": [str(bad)]}), CXRPreprocess(size=32), progress=False)
        return 0

    assert cli([]) == 2
    err = _one_error_line(capsys)
    assert "patient7_truncated.jpg" in err and "truncated" in err
    with pytest.raises(ValueError, match="patient7_truncated.jpg"):
        cli(["--debug"])
