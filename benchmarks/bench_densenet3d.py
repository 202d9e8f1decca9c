"""Benchmark: native 3D DenseNet-121 vs MONAI's, and a cached vs an uncached epoch of CT volumes.

Run from the repository root (MONAI, a dependency of mtbench, is the reference)::

    python benchmarks/bench_densenet3d.py                      # CPU defaults, a few minutes
    python benchmarks/bench_densenet3d.py --device cuda --batch 4 --shape 40 301 301

Two ratios are printed, each measured side by side in this one run:

1. forward+backward time of ``create_backbone("densenet121_native", spatial_dims=3)`` divided by
   that of ``monai.networks.nets.DenseNet121(spatial_dims=3)``, same input, same weights
   (copied from MONAI into the native model), alternating the two so background load hits
   both alike and alternating which goes first; medians over ``--repeats``. Goal: <= 1.0.
2. time of one epoch reading preprocessed volumes from the disk cache divided by one epoch that
   reads and preprocesses the NIfTI files every time (phantom volumes written as ``.nii.gz``).
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))


def _sync(device):
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def bench_densenet(batch: int, shape, repeats: int, device: str, warmup: int = 2, channels_last: bool = False) -> dict:
    try:
        from monai.networks.nets import DenseNet121
    except ImportError:
        print("MONAI is not installed: pip install -e .  (skipping the DenseNet comparison)")
        return {}
    from mtbench.models import create_backbone

    dev = torch.device(device)
    torch.manual_seed(0)
    monai_net = DenseNet121(spatial_dims=3, in_channels=1, out_channels=1).to(dev).train()
    native = create_backbone("densenet121_native", spatial_dims=3, in_chans=1).to(dev).train()
    native.load_monai_state_dict(monai_net.state_dict())
    head = torch.nn.Linear(native.num_features, 1).to(dev)
    with torch.no_grad():
        head.weight.copy_(monai_net.class_layers.out.weight)
        head.bias.copy_(monai_net.class_layers.out.bias)
    x = torch.randn(batch, 1, *shape, device=dev)
    if channels_last:  # the same memory format for both models and the input
        x = x.contiguous(memory_format=torch.channels_last_3d)
        native.to(memory_format=torch.channels_last_3d)
        monai_net.to(memory_format=torch.channels_last_3d)

    def step_native():
        native.zero_grad(set_to_none=True)
        head(native(x)).sum().backward()

    def step_monai():
        monai_net.zero_grad(set_to_none=True)
        monai_net(x).sum().backward()

    for _ in range(warmup):
        step_native()
        step_monai()
    times = {"native": [], "monai": []}
    pair = [("native", step_native), ("monai", step_monai)]
    for r in range(repeats):
        for name, fn in (pair if r % 2 == 0 else pair[::-1]):  # alternate who goes first
            _sync(dev)
            t0 = time.perf_counter()
            fn()
            _sync(dev)
            times[name].append(time.perf_counter() - t0)
    med = {k: statistics.median(v) for k, v in times.items()}
    best = {k: min(v) for k, v in times.items()}  # least disturbed by other processes (as timeit)
    return {"native_s": med["native"], "monai_s": med["monai"], "ratio": med["native"] / med["monai"],
            "native_min_s": best["native"], "monai_min_s": best["monai"], "ratio_min": best["native"] / best["monai"],
            "times": times}


def bench_cache(n_volumes: int, shape, out_shape) -> dict:
    from mtbench.data.cache import VolumeLoader
    from mtbench.data.phantom import make_head_ct_phantom
    from mtbench.data.transforms import CTPreprocess

    ph = make_head_ct_phantom(n_patients=n_volumes, shape=tuple(shape), seed=0)
    with tempfile.TemporaryDirectory() as tmp:
        root = ph.to_nifti(Path(tmp) / "data")
        paths = sorted(str(p) for p in root.rglob("*_brain.nii.gz"))
        pre = CTPreprocess(windows=("cobo",), shape=tuple(out_shape))
        uncached = VolumeLoader(pre, cache_dir=None)
        cached = VolumeLoader(pre, cache_dir=Path(tmp) / "cache")

        def epoch(loader):
            t0 = time.perf_counter()
            total = 0.0
            for p in paths:
                total += float(loader.load(p)[0, 0, 0, 0])
            return time.perf_counter() - t0

        t_fill = epoch(cached)  # first epoch: reads, preprocesses and writes the cache
        t_unc = [epoch(uncached) for _ in range(2)]
        t_hit = [epoch(cached) for _ in range(2)]
        assert cached.cache.hits == 2 * len(paths)
    return {
        "uncached_s": min(t_unc),
        "cached_s": min(t_hit),
        "fill_s": t_fill,
        "ratio": min(t_hit) / min(t_unc),
        "n": len(paths),
    }


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    ap.add_argument("--batch", type=int, default=2)
    ap.add_argument("--shape", type=int, nargs=3, default=[32, 96, 96], metavar=("D", "H", "W"))
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--channels-last", action="store_true", help="also time both models in channels_last_3d memory format")
    ap.add_argument("--cache-volumes", type=int, default=24)
    ap.add_argument("--cache-shape", type=int, nargs=3, default=[40, 128, 128], help="source volume size (written as NIfTI)")
    ap.add_argument("--cache-out", type=int, nargs=3, default=[40, 96, 96], help="preprocessed size")
    args = ap.parse_args(argv)
    print(f"torch {torch.__version__}, device {args.device}, threads {torch.get_num_threads()}")
    d = bench_densenet(args.batch, args.shape, args.repeats, args.device)
    if d:
        print(
            f"DenseNet-121 3D fwd+bwd, input {args.batch}x1x{'x'.join(map(str, args.shape))}: "
            f"native {d['native_s'] * 1000:.0f} ms, MONAI {d['monai_s'] * 1000:.0f} ms (medians of {args.repeats}) "
            f"-> ratio native/MONAI = {d['ratio']:.3f}; fastest runs: native {d['native_min_s'] * 1000:.0f} ms, "
            f"MONAI {d['monai_min_s'] * 1000:.0f} ms -> ratio {d['ratio_min']:.3f}"
        )
    if args.channels_last:
        d2 = bench_densenet(args.batch, args.shape, args.repeats, args.device, channels_last=True)
        if d2:
            print(
                f"  channels_last_3d (both): native {d2['native_s'] * 1000:.0f} ms, MONAI {d2['monai_s'] * 1000:.0f} ms "
                f"-> ratio {d2['ratio']:.3f}; native channels_last / native default = {d2['native_s'] / d['native_s']:.3f}"
            )
    c = bench_cache(args.cache_volumes, args.cache_shape, args.cache_out)
    print(
        f"Epoch over {c['n']} NIfTI volumes {'x'.join(map(str, args.cache_shape))} -> {'x'.join(map(str, args.cache_out))}: "
        f"uncached {c['uncached_s']:.2f} s, cached {c['cached_s']:.3f} s (first, cache-filling epoch {c['fill_s']:.2f} s) "
        f"-> ratio cached/uncached = {c['ratio']:.3f} ({1 / c['ratio']:.1f}x faster)"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
