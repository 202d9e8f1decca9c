"""The bring-your-own-data `table` source on messy real-world tables."""

import numpy as np
import pandas as pd
import pytest

from mtbench.data.sources import get_source
from mtbench.data.sources.table import load_image, load_manifest, parse_tasks
from _mtb_files import write_ct_series, write_messy_table


def test_messy_table_loads_and_says_what_it_assumed(tmp_path):
    m, report = load_manifest(write_messy_table(tmp_path), tasks="outcome:binary, severity:multiclass")
    assert len(m) == 4 and m["outcome"].tolist() == [1, 0, 1, 0]
    rep = report.counts
    assert rep["missing_images"] == 1 and rep["missing_image_paths"][0].endswith("missing.png")
    assert any("one image per patient" in a for a in rep["assumed"])
    assert rep["codings"] == {"severity": {"mild": 0, "moderate": 1, "severe": 2}}
    assert m["severity"].tolist() == [0, 2, 0, 1] and m["centre"].tolist() == ["A", "A", "B", "B"]
    assert m["patient_id"].is_unique
    assert get_source("table") is not None


def test_images_of_any_mode_and_size_resized_without_distortion(tmp_path):
    m = load_manifest(write_messy_table(tmp_path), tasks={"Outcome": "binary"}).table
    for p in m["path"]:
        img = load_image(p, size=64)
        assert img.shape == (64, 64) and img.dtype == np.float32 and 0 <= img.min() <= img.max() <= 1
    # b.png is 30 wide x 90 high: letterboxed to 21 x 64 columns of content, zeros either side
    img = load_image(m["path"][1], size=64)
    content = np.flatnonzero(img.any(axis=0))
    assert content.max() - content.min() + 1 == pytest.approx(64 * 30 / 90, abs=1)
    assert load_image(m["path"][1], size=64, keep_aspect=False).any(axis=0).all()


def test_dicom_series_folder_as_image(tmp_path):
    write_ct_series(tmp_path / "ct" / "p1", [np.full((8, 8), 1000, np.uint16)] * 3)
    pd.DataFrame({"image": ["ct/p1"], "patient": ["p1"], "y": [2.5]}).to_csv(tmp_path / "t.csv", index=False)
    m = load_manifest(tmp_path / "t.csv", tasks="y:regression").table
    assert load_image(m["path"][0]).shape == (3, 8, 8)


def test_errors_name_the_column(tmp_path):
    path = write_messy_table(tmp_path)
    with pytest.raises(KeyError, match=r"no task \(binary\) column 'label'.*Outcome"):
        load_manifest(path, tasks="label:binary")
    with pytest.raises(ValueError, match=r"column 'Severity' \(binary\) must hold two classes"):
        load_manifest(path, tasks="severity:binary")
    with pytest.raises(KeyError, match="no image column 'file'"):
        load_manifest(path, tasks="outcome:binary", image_column="file")
    with pytest.raises(ValueError, match="unknown task kind"):
        parse_tasks("outcome:yesno")


def test_patient_in_two_splits_refused(tmp_path):
    from mtbench.data.splits import LeakageError

    path = write_messy_table(tmp_path)
    df = pd.read_csv(path)
    df["patient"] = ["p1", "p1", "p2", "p3", "p4"]
    df["split"] = ["train", "test", "train", "test", "train"]
    df.to_csv(path, index=False)
    with pytest.raises(LeakageError, match="p1"):
        load_manifest(path, tasks="outcome:binary")


def test_mtbench_run_quickstart_on_your_own_table(tmp_path, capsys):
    """Issue 16 (bring your own data): `mtbench run quickstart --set data.source=table ...` trains both
    arms on a user's table (text labels, a regression column, stray spaces, no patient column) and
    its run folder says which real table it used."""
    import json

    from PIL import Image

    from mtbench.cli import main
    from mtbench.data import make_synthetic_cxr

    data = make_synthetic_cxr(n_patients=90, size=32, seed=0)
    (tmp_path / "img").mkdir()
    rows = []
    for i, (img, r) in enumerate(zip(data.images[:, 0], data.table.itertuples())):
        arr = (np.clip(img, 0, 1) * 255).astype(np.uint8)
        Image.fromarray(np.stack([arr] * 3, -1) if i % 2 else arr).save(tmp_path / "img" / f"{i}.png")
        rows.append({" Image ": f"img/{i}.png", "Outcome ": ["good", "poor"][int(r.prognosis)], "Score": r.severity})
    pd.DataFrame(rows).to_csv(tmp_path / "labels.csv", index=False)
    out = tmp_path / "runs"
    argv = ["run", "quickstart", "--profile", "smoke", "--out", str(out), "--set", "data.source=table",
            "--set", f"data.table={tmp_path / 'labels.csv'}", "--set", "data.tasks=outcome:binary,score:regression",
            "--set", "data.size=32", "--set", "train.epochs=2", "--set", "seeds=[0]", "--set", "bootstrap.n_boot=20"]
    assert main(argv) == 0, capsys.readouterr().err
    assert "assumed: no patient column ('patient'): one image per patient" in capsys.readouterr().out
    run_dir = next(p.parent for p in out.rglob("data_sources.json"))
    src = json.loads((run_dir / "data_sources.json").read_text())
    assert src[0]["kind"] == "real" and src[0]["source"] == "table" and src[0]["rows"] == 90
    assert src[0]["root"].endswith("labels.csv") and src[0]["files_missing"] == 0
    res = pd.read_csv(run_dir / "results.csv")
    assert {"single_task", "multi_task"} == set(res["model"])
    assert set(res.loc[res["model"] == "multi_task", "task"]) == {"outcome", "score"}
    assert res.loc[(res["task"] == "outcome") & (res["metric"] == "auc"), "value"].notna().all()


def test_data_check_table_takes_the_task_kinds(tmp_path, capsys):
    from mtbench.cli import main

    path = write_messy_table(tmp_path)
    assert main(["data", "check", "table", "--root", str(path), "--quiet"]) == 1  # without kinds: an error saying how
    assert "tasks='outcome:binary'" in capsys.readouterr().out
    assert main(["data", "check", "table", "--root", str(path), "--tasks", "outcome:binary", "--quiet"]) == 0
    assert "missing_images=1" in capsys.readouterr().out
