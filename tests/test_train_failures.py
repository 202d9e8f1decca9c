"""Training-loop failures that used to be silent or hang (issue 14, items 1, 9 and 10)."""

import os
import signal
import subprocess
import sys
import textwrap
import warnings
from pathlib import Path

import numpy as np
import pytest
import torch

from mtbench import MultiTaskLoss, Task, create_model
from mtbench.data import MultiTaskDataset, make_synthetic_cxr
from mtbench.train import fit, make_loader

ROOT = Path(__file__).resolve().parents[1]
TASKS = [Task("prognosis", "binary")]


def _data(n=32, nan_image=None, one_class_val=False):
    d = make_synthetic_cxr(n_patients=n, size=32, seed=1)
    t = d.table.copy()
    t["prognosis"] = t["prognosis"].astype(float)
    images = d.images.copy()
    if nan_image is not None:
        images[nan_image] = np.nan
    half = n // 2
    val = t.iloc[half:].copy()
    if one_class_val:
        val["prognosis"] = 1.0
    tr = make_loader(MultiTaskDataset(t.iloc[:half], TASKS, images[:half]), batch_size=8, shuffle=False)
    va = make_loader(MultiTaskDataset(val, TASKS, images[half:]), batch_size=8)
    return tr, va


def _model():
    torch.manual_seed(0)
    return create_model("convnet", TASKS, in_chans=1, backbone_kwargs={"channels": (4, 8)})


def test_non_finite_loss_stops_before_the_bad_update():
    """Item 9: the check ran after optimizer.step(), so NaN weights were applied before the error."""
    tr, va = _data(nan_image=0)  # the first batch gives a NaN loss
    model = _model()
    before = {k: v.detach().clone() for k, v in model.named_parameters()}  # (BatchNorm's running stats see the NaN forward)
    with pytest.raises(FloatingPointError, match="Training loss became nan"):
        fit(model, tr, va, TASKS, MultiTaskLoss(TASKS), epochs=1, progress=False)
    for k, v in model.named_parameters():
        assert torch.equal(v.detach(), before[k]), f"{k} was updated by a non-finite loss"


def test_nan_monitor_is_reported_with_the_metric_warning():
    """Item 10: a blanket simplefilter('ignore') hid why the monitor was NaN (a one-class fold)."""
    tr, va = _data(one_class_val=True)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        res = fit(_model(), tr, va, TASKS, MultiTaskLoss(TASKS), epochs=2, progress=False, monitor="prognosis.auc")
    messages = [str(w.message) for w in caught]
    assert any("monitor 'prognosis.auc' is NaN at epoch 1" in m for m in messages), messages
    assert res.history["val_warnings"].str.contains("prognosis.auc").all()


DDP_SCRIPT = textwrap.dedent(
    """
    import numpy as np, torch
    from mtbench import MultiTaskLoss, Task, create_model
    from mtbench.data import MultiTaskDataset, make_synthetic_cxr
    from mtbench.train import fit, make_loader
    from mtbench.train.distributed import init_distributed

    info = init_distributed()
    tasks = [Task("prognosis", "binary")]
    d = make_synthetic_cxr(n_patients=16, size=32, seed=1)
    t = d.table.copy()
    t["prognosis"] = t["prognosis"].astype(float)
    t.loc[t.index[1::2], "prognosis"] = np.nan  # the sampler gives rank 1 the odd rows: no label at all
    loader = make_loader(MultiTaskDataset(t, tasks, d.images), batch_size=4)
    torch.manual_seed(0)
    model = create_model("convnet", tasks, in_chans=1, backbone_kwargs={"channels": (4, 8)})
    res = fit(model, loader, None, tasks, MultiTaskLoss(tasks), epochs=2, progress=False, device="cpu")
    w = torch.cat([p.detach().flatten() for p in model.parameters()])
    # one file per rank: two processes printing to one pipe can interleave their lines
    with open(f"rank{info.rank}.txt", "w") as fh:
        print("RANK", info.rank, "SKIPPED", int(res.history["skipped_batches"].fillna(0).sum()) if "skipped_batches" in res.history else 0,
              "CHECKSUM", float(w.double().sum()), file=fh)
    """
)


def test_ddp_rank_without_labels_does_not_hang(tmp_path):
    """Item 1: a rank whose batch had no labelled sample skipped backward while the other waited in
    DDP's all-reduce (it hung). Both ranks must take the same path and end with the same weights."""
    script = tmp_path / "ddp_nolabel.py"
    script.write_text(DDP_SCRIPT)
    env = dict(os.environ, PYTHONPATH=str(ROOT), OMP_NUM_THREADS="1", MTBENCH_DIST_BACKEND="gloo")
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2", str(script)]
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=tmp_path,
                            start_new_session=True)  # its own process group, so a hang can be killed whole
    try:
        stdout, stderr = proc.communicate(timeout=120)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.communicate()
        pytest.fail("two-process training hung on a rank without labels")
    assert proc.returncode == 0, stderr[-3000:]
    lines = [(tmp_path / f"rank{r}.txt").read_text().split() for r in (0, 1)]
    assert [ln[:2] for ln in lines] == [["RANK", "0"], ["RANK", "1"]], lines
    checksums = {ln[5] for ln in lines}
    assert len(checksums) == 1, lines  # DDP kept the replicas identical
