"""Resume after a kill: a run killed mid-epoch and restarted ends with the numbers of an uninterrupted run."""

import os
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

ROOT = Path(__file__).resolve().parent.parent

SCRIPT = r'''
import os, sys
import numpy as np
from mtbench import MultiTaskLoss, Task, create_model
from mtbench.data import MultiTaskDataset, make_synthetic_cxr
from mtbench.metrics import compute_metrics
from mtbench.train import fit, make_loader, predict, seed_everything

ckpt, kill_at, out = sys.argv[1], int(sys.argv[2]), sys.argv[3]
TASKS = [Task("prognosis", "binary"), Task("severity", "regression")]


class KilledAt(MultiTaskDataset):
    calls = 0

    def __getitem__(self, i):
        KilledAt.calls += 1
        if kill_at and KilledAt.calls == kill_at:
            os.kill(os.getpid(), 9)  # SIGKILL: no cleanup, no chance to save anything
        return super().__getitem__(i)


d = make_synthetic_cxr(n_patients=80, size=32, seed=2)
t = d.table.assign(severity=lambda x: (x.severity - 7) / 4)
train = make_loader(KilledAt(t.iloc[:48], TASKS, d.images[:48]), batch_size=16, shuffle=True, seed=0)
val = make_loader(MultiTaskDataset(t.iloc[48:], TASKS, d.images[48:]), batch_size=16)
seed_everything(0)
model = create_model("convnet", TASKS, in_chans=1, head_dropout=0.3, backbone_kwargs={"channels": (8, 16)})
res = fit(model, train, val, TASKS, MultiTaskLoss(TASKS), epochs=4, lr=5e-3, scheduler="cosine",
          monitor="prognosis.auc", checkpoint_dir=ckpt, progress=False, seed=0)
compute_metrics(predict(res.model, val, TASKS)).to_csv(out, index=False)
res.history.drop(columns="time_s").to_csv(out + ".history.csv", index=False)
'''


def _run(tmp_path, ckpt, kill_at, out):
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    script = tmp_path / "train.py"
    script.write_text(SCRIPT)
    return subprocess.run(
        [sys.executable, str(script), str(ckpt), str(kill_at), str(out)], env=env, capture_output=True, text=True, timeout=600
    )


@pytest.mark.slow
def test_killed_run_resumes_to_identical_metrics(tmp_path):
    clean = _run(tmp_path, tmp_path / "clean", 0, tmp_path / "clean.csv")
    assert clean.returncode == 0, clean.stderr
    # 48 training + 32 validation samples per epoch: call 100 is in the middle of epoch 2's training.
    killed = _run(tmp_path, tmp_path / "resumed", 100, tmp_path / "resumed.csv")
    assert killed.returncode == -9, killed.stderr
    assert (tmp_path / "resumed" / "last.pt").is_file() and not (tmp_path / "resumed.csv").exists()
    resumed = _run(tmp_path, tmp_path / "resumed", 0, tmp_path / "resumed.csv")
    assert resumed.returncode == 0, resumed.stderr
    pd.testing.assert_frame_equal(pd.read_csv(tmp_path / "clean.csv"), pd.read_csv(tmp_path / "resumed.csv"))
    pd.testing.assert_frame_equal(
        pd.read_csv(tmp_path / "clean.csv.history.csv"), pd.read_csv(tmp_path / "resumed.csv.history.csv")
    )


def test_resume_refuses_a_changed_configuration(tmp_path):
    import torch

    from mtbench import Task, create_model
    from mtbench.data import MultiTaskDataset, make_synthetic_cxr
    from mtbench.train import fit, make_loader

    tasks = [Task("prognosis", "binary")]
    d = make_synthetic_cxr(n_patients=24, size=32)
    dl = make_loader(MultiTaskDataset(d.table, tasks, d.images), batch_size=12)
    fit(create_model("convnet", tasks, backbone_kwargs={"channels": (4,)}), dl, None, tasks, epochs=1, checkpoint_dir=str(tmp_path), progress=False)
    assert torch.load(tmp_path / "last.pt", weights_only=False)["epoch"] == 1
    with pytest.raises(ValueError, match="configuration changed.*'lr'"):
        fit(create_model("convnet", tasks, backbone_kwargs={"channels": (4,)}), dl, None, tasks, epochs=2, lr=0.5,
            checkpoint_dir=str(tmp_path), progress=False)
