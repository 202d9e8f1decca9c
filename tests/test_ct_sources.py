"""CQ500 and RSNA 2019 ICH adapters on fixtures written in their real layouts."""

import numpy as np
import pandas as pd
import pytest

from mtbench.data.io import read_volume
from mtbench.data.sources import get_source, list_datasets
from _mtb_files import write_cq500_set, write_rsna_set


def test_cq500_selects_the_thin_plain_axial_series_and_votes(tmp_path):
    # reads of studies 1 (bone series only) and 7 (no folder) are left out: counted and said (issue 14 item 8)
    with pytest.warns(UserWarning, match=r"CQ500: 2 of 3 rows of reads.csv .*CQ500-CT-1"):
        m, report = get_source("cq500").load_manifest(write_cq500_set(tmp_path))
    assert report.counts["reads_without_image"] == 2
    assert m["sample_id"].tolist() == ["CQ500-CT-0"]  # study 1 has only a bone series, study 7 no images
    row = m.iloc[0]
    assert row["path"].endswith("CT PLAIN THIN") and row["n_series"] == 4
    # majority vote of three readers: ICH 1,1,0 -> 1; SDH 1,0,0 -> 0; fracture 0,1,1 -> 1
    assert (row["ich"], row["sdh"], row["fracture"], row["mass_effect"]) == (1, 0, 1, 0)
    assert (row["r1_sdh"], row["r3_ich"]) == (1, 0)
    rep = report.counts
    assert rep["reads_without_study"] == ["CQ500-CT-7"]
    assert "CQ500CT1 CQ500CT1" in rep["studies_without_usable_series"][0]
    assert read_volume(row["path"]).shape == (22, 16, 16)


def test_cq500_reads_table_errors_name_the_column(tmp_path):
    write_cq500_set(tmp_path)
    reads = pd.read_csv(tmp_path / "reads.csv")
    reads.loc[0, "R2:ICH"] = 3
    reads.to_csv(tmp_path / "reads.csv", index=False)
    with pytest.raises(ValueError, match=r"'R2:ICH'.*0/1"):
        get_source("cq500").load_manifest(tmp_path)
    reads.drop(columns=["R3:MassEffect"]).to_csv(tmp_path / "reads.csv", index=False)
    with pytest.raises(KeyError, match="R3:MassEffect"):
        get_source("cq500").load_manifest(tmp_path)


def test_rsna_groups_slices_into_position_sorted_studies(tmp_path):
    with pytest.warns(UserWarning, match=r"1 labelled slice\(s\) have no file .*ID_ffffffff"):
        m, report = get_source("rsna_ich").load_manifest(write_rsna_set(tmp_path / "rsna"), studies_dir=tmp_path / "studies")
    assert report.counts["labels_without_file"] == 1
    assert len(m) == 2 and sorted(m["n_slices"]) == [2, 3]
    big = m.set_index("n_slices").loc[3]
    assert big["any"] == 1 and big["subdural"] == 1 and big["epidural"] == 0
    assert m.set_index("n_slices").loc[2, ["any", "subdural"]].tolist() == [0, 0]
    assert report.counts["labelled_slices_without_file"] == ["ID_ffffffff"]
    vol = read_volume(big["path"])
    # written with z = 5 * (n - k): the stack runs inferior -> superior, so the values (1000 + k) - 1024 descend
    np.testing.assert_array_equal(vol.array[:, 0, 0], [-22.0, -23.0, -24.0])


def test_rsna_label_table_errors_name_the_column(tmp_path):
    root = write_rsna_set(tmp_path / "rsna")
    pd.DataFrame({"ID": ["ID_1_bleed"], "Label": [1]}).to_csv(root / "stage_2_train.csv", index=False)
    with pytest.raises(ValueError, match=r"'ID'.*bleed"):
        get_source("rsna_ich").load_manifest(root, studies_dir=tmp_path / "s")


def test_registered():
    assert {"cq500", "rsna_ich"} <= set(list_datasets())
