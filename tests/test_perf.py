"""The performance options and the one-command GPU check: the memory-efficient DenseNet computes the
same thing, cached volumes can be shared with loader workers, and ``benchmarks/gpu_check.py --device cpu
--tiny`` runs."""

from __future__ import annotations

import copy

import pytest
import torch

from mtbench.models import create_backbone

SMALL = {"init_features": 8, "growth_rate": 4, "block_config": (2, 3, 2, 2)}


@pytest.mark.parametrize("spatial_dims, shape", [(3, (2, 1, 32, 32, 32)), (2, (3, 1, 64, 64))])
def test_memory_efficient_densenet_equal_outputs_gradients_and_running_stats(spatial_dims, shape):
    torch.manual_seed(0)
    plain = create_backbone("densenet121_native", spatial_dims=spatial_dims, in_chans=1, **SMALL).train()
    eff = create_backbone("densenet121_native", spatial_dims=spatial_dims, in_chans=1, memory_efficient=True, **SMALL).train()
    eff.load_state_dict(plain.state_dict())
    x = torch.randn(*shape)
    xa, xb = x.clone().requires_grad_(True), x.clone().requires_grad_(True)
    ya, yb = plain(xa), eff(xb)
    torch.testing.assert_close(yb, ya, rtol=1e-5, atol=1e-6)
    w = torch.randn_like(ya)
    (ya * w).sum().backward()
    (yb * w).sum().backward()
    torch.testing.assert_close(xb.grad, xa.grad, rtol=1e-5, atol=1e-6)
    ga = dict(plain.named_parameters())
    for name, p in eff.named_parameters():
        torch.testing.assert_close(p.grad, ga[name].grad, rtol=1e-4, atol=1e-6, msg=f"gradient of {name}")
    # the backward recomputation must not update batch-norm running statistics a second time
    sa = plain.state_dict()
    for name, buf in eff.state_dict().items():
        torch.testing.assert_close(buf, sa[name], rtol=1e-5, atol=1e-6, msg=f"buffer {name}")
    # and the same in eval mode, and with the state dict of the other (same module names)
    plain.eval(), eff.eval()
    with torch.no_grad():
        torch.testing.assert_close(eff(x), plain(x), rtol=1e-5, atol=1e-6)


def test_memory_efficient_densenet_checkpoints_only_in_training_with_grad():
    eff = create_backbone("densenet121_native", spatial_dims=3, in_chans=1, memory_efficient=True, **SMALL)
    assert all(b.memory_efficient for n, b in eff.features.named_children() if n.startswith("denseblock"))
    with torch.no_grad():  # nothing to recompute: the plain path, in training mode too
        assert eff(torch.randn(2, 1, 32, 32, 32)).shape == (2, eff.num_features)


def test_volume_cache_hits_are_memory_mapped_and_equal(tmp_path):
    import numpy as np

    from mtbench.data.cache import VolumeCache

    src = tmp_path / "v.nii.gz"
    src.write_bytes(b"x")
    arr = np.arange(24, dtype=np.float32).reshape(1, 2, 3, 4)
    cache = VolumeCache(tmp_path / "c")
    cache.get_or_compute(src, {"a": 1}, lambda: arr)
    hit = cache.get_or_compute(src, {"a": 1}, lambda: pytest.fail("recomputed a cached array"))
    assert isinstance(hit, np.memmap) and hit.flags.writeable  # copy-on-write: torch.as_tensor takes it
    np.testing.assert_array_equal(hit, arr)
    hit[...] = 0  # never written back to the cache
    np.testing.assert_array_equal(cache.get_or_compute(src, {"a": 1}, lambda: arr), arr)
    assert not isinstance(VolumeCache(tmp_path / "c", mmap=False).get_or_compute(src, {"a": 1}, lambda: arr), np.memmap)


@pytest.mark.slow
def test_gpu_check_tiny_cpu_mode_prints_one_table(tmp_path):
    import os
    import subprocess
    import sys
    from pathlib import Path

    root = Path(__file__).resolve().parent.parent
    out = tmp_path / "table.md"
    env = {**os.environ, "PYTHONPATH": str(root)}
    proc = subprocess.run([sys.executable, str(root / "benchmarks" / "gpu_check.py"), "--device", "cpu", "--tiny",
                           "--out", str(out)], capture_output=True, text=True, env=env, timeout=1200)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    table = out.read_text()
    assert table.count("| what | figure | notes |") == 1 and table in proc.stdout
    for needle in ("fit / bare PyTorch loop", "native_me", "peak memory", "FLOP/s", "torch.mm", "cobo2024",
                   "cached 3D volumes", "X-ray"):
        assert needle in table, needle
    assert "FAILED" not in table
