"""One-command performance check at the papers' scale: one Markdown table, measured side by side in one run.

    PYTHONPATH=. python benchmarks/gpu_check.py --out gpu_check.md            # a GPU, paper scale, < 4 min
    PYTHONPATH=. python benchmarks/gpu_check.py --device cpu --tiny           # the same code, small sizes

Needs only torch, numpy and the mtbench package (MONAI rows are skipped, with a line saying so, when
MONAI is absent; the X-ray rows when the real X-rays are absent). Sections:

1. ``fit`` vs a bare PyTorch loop (``bench_fit_overhead.py``), same model, data and device.
2. DenseNet-121-3D at the paper's input (Cobo et al. 2024: 1x40x301x301, batch 8): step time
   (forward + backward) of the native network, the native one with ``memory_efficient=True`` and
   MONAI's ``DenseNet121``, same weights and input, alternated; in fp32 and in bf16 autocast +
   channels-last-3d. Peak memory of one step: ``max_memory_allocated`` on CUDA; on the CPU the rise
   of ``ru_maxrss`` over the resident size before the step, each configuration in a fresh process.
3. Achieved FLOP/s of the native step (FLOPs counted by ``torch.utils.flop_counter.FlopCounterMode``)
   for fp32, bf16 autocast, channels-last-3d and both; divided by the FLOP/s of a large ``torch.mm``
   of the same dtype in this run, and on CUDA by the device's published dense peak.
4. One epoch of ``cobo2024``'s training (its ``baseline_densenet`` arm, full-profile settings, one
   fold) on phantom volumes of the paper's shape.
5. Loader throughput of cached 3D volumes with 0/1/2 workers, and of real X-ray decoding.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import torch

HERE = Path(__file__).resolve().parent
sys.path[:0] = [str(HERE.parent), str(HERE)]

# Published dense (non-sparse) peaks in TFLOP/s, (fp32, tf32, bf16), from NVIDIA's data sheets.
PEAK_TFLOPS = {
    "H100 PCIe": (51.2, 378.0, 756.0),
    "H200": (67.0, 494.7, 989.4),
    "H100": (67.0, 494.7, 989.4),  # SXM
    "A100": (19.5, 156.0, 312.0),
    "L40S": (91.6, 183.0, 362.0),
}

SIZES = {  # tiny: the same code on a 2-core CPU in about a minute
    "full": dict(batch=8, shape=(40, 301, 301), mm=8192, repeats=3, fit_n=512, fit_size=64, fit_epochs=2,
                 cobo_patients=24, cobo_shape=(40, 301, 301), cobo_batch=8, cobo_accum=3, loader_volumes=8,
                 loader_shape=(40, 301, 301), xrays=None),
    "tiny": dict(batch=2, shape=(32, 32, 32), mm=1024, repeats=3, fit_n=64, fit_size=32, fit_epochs=1,
                 cobo_patients=32, cobo_shape=(16, 32, 32), cobo_batch=4, cobo_accum=1, loader_volumes=8,
                 loader_shape=(16, 48, 48), xrays=24),
}
ROWS: list[tuple[str, str, str]] = []


def row(what: str, value: str, note: str = "") -> None:
    ROWS.append((what, value, note))
    print(f"  {what}: {value}  {note}", flush=True)


def rate_text(flops_per_s: float) -> str:
    return f"{flops_per_s / 1e12:.2f} TFLOP/s" if flops_per_s >= 1e12 else f"{flops_per_s / 1e9:.1f} GFLOP/s"


def sync(dev: torch.device) -> None:
    if dev.type == "cuda":
        torch.cuda.synchronize(dev)


def autocast(dev, bf16: bool):
    return torch.autocast(device_type=dev.type, dtype=torch.bfloat16, enabled=bf16)


# --------------------------------------------------------------------------- models
def build(kind: str, dev: torch.device, channels_last: bool = False):
    """``(step, model)``: one forward+backward of ``kind`` in native / native_me / monai, seed 0 weights."""
    from mtbench.models import create_backbone

    torch.manual_seed(0)
    try:
        from monai.networks.nets import DenseNet121
        monai_net = DenseNet121(spatial_dims=3, in_channels=1, out_channels=1)
    except ImportError:
        monai_net = None
        if kind == "monai":
            raise
    if kind == "monai":
        model = monai_net
    else:
        net = create_backbone("densenet121_native", spatial_dims=3, in_chans=1, memory_efficient=kind == "native_me")
        if monai_net is not None:  # the same weights as MONAI's
            net.load_monai_state_dict(monai_net.state_dict())
        model = torch.nn.Sequential(net, torch.nn.Linear(net.num_features, 1))
    model = model.to(dev).train()
    if channels_last:
        model = model.to(memory_format=torch.channels_last_3d)
    return model


def make_step(model, x, dev, bf16: bool):
    def step():
        model.zero_grad(set_to_none=True)
        with autocast(dev, bf16):
            out = model(x)
        out.float().sum().backward()

    return step


def make_input(batch, shape, dev, channels_last):
    torch.manual_seed(1)
    x = torch.randn(batch, 1, *shape, device=dev)
    return x.contiguous(memory_format=torch.channels_last_3d) if channels_last else x


def timed(steps: dict, dev, repeats: int, warmup: int = 1) -> dict:
    """Median seconds per step of each callable, alternated (and alternating who goes first)."""
    for fn in steps.values():
        for _ in range(warmup):
            fn()
    times = {k: [] for k in steps}
    order = list(steps)
    for r in range(repeats):
        for k in (order if r % 2 == 0 else order[::-1]):
            sync(dev)
            t0 = time.perf_counter()
            steps[k]()
            sync(dev)
            times[k].append(time.perf_counter() - t0)
    return {k: statistics.median(v) for k, v in times.items()}


def peak_memory(kind, dev, batch, shape, bf16, cl) -> float:
    """Bytes of peak memory one step adds over what the model, its input and one warm step hold."""
    if dev.type == "cuda":
        model = build(kind, dev, cl)
        x = make_input(batch, shape, dev, cl)
        step = make_step(model, x, dev, bf16)
        step()  # the gradients exist from here on, as in training
        sync(dev)
        torch.cuda.empty_cache()
        torch.cuda.reset_peak_memory_stats(dev)
        base = torch.cuda.memory_allocated(dev)
        step()
        sync(dev)
        peak = torch.cuda.max_memory_allocated(dev) - base
        del model, x, step
        torch.cuda.empty_cache()
        return float(peak)
    # CPU: a fresh process per configuration, as ru_maxrss only ever grows
    spec = json.dumps(dict(kind=kind, batch=batch, shape=list(shape), bf16=bf16, cl=cl))
    out = subprocess.run([sys.executable, __file__, "--child-memory", spec], capture_output=True, text=True,
                         env={**os.environ, "PYTHONPATH": os.pathsep.join([str(HERE.parent), os.environ.get("PYTHONPATH", "")])})
    if out.returncode != 0:
        raise RuntimeError(f"memory child {spec} failed:\n{out.stderr[-2000:]}")
    return float(out.stdout.strip().splitlines()[-1])


def _child_memory(spec: str) -> None:
    s = json.loads(spec)
    dev = torch.device("cpu")
    model = build(s["kind"], dev, s["cl"])
    step = make_step(model, make_input(s["batch"], s["shape"], dev, s["cl"]), dev, s["bf16"])
    with open("/proc/self/statm") as f:  # resident pages now
        base = int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
    step()
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024  # KiB on Linux
    print(peak - base)


# --------------------------------------------------------------------------- sections
def section_fit(dev, z):
    from bench_fit_overhead import bare_loop, build as build_data, fit_loop

    ds = build_data(z["fit_n"], z["fit_size"])
    bare, fit = [], []
    for _ in range(2):
        bare.append(bare_loop(ds, z["fit_epochs"], 32, "convnet", dev))
        fit.append(fit_loop(ds, z["fit_epochs"], 32, "convnet", dev))
    b, f = statistics.median(bare), statistics.median(fit)
    row("fit / bare PyTorch loop (convnet, fp32)", f"{f / b:.2f}x",
        f"{z['fit_n']} images {z['fit_size']}^2, {z['fit_epochs']} epochs: {f:.2f} s vs {b:.2f} s")


def section_densenet(dev, z, has_monai):
    inp = f"{z['batch']}x1x{'x'.join(map(str, z['shape']))}"
    kinds = ["native", "native_me"] + (["monai"] if has_monai else [])
    if not has_monai:
        row("MONAI DenseNet121 rows", "skipped", "MONAI is not installed here (pip install monai)")
    for label, bf16, cl in (("fp32", False, False), ("bf16 autocast + channels-last-3d", True, True)):
        if dev.type == "cpu" and bf16:  # the GPU's mode; the FLOP/s section covers bf16 on the CPU
            continue
        # on the CPU one fresh process per model and configuration: fp32 only, to stay short
        mem = {k: peak_memory(k, dev, z["batch"], z["shape"], bf16, cl) for k in kinds} if dev.type == "cuda" or not bf16 else {}
        x = make_input(z["batch"], z["shape"], dev, cl)
        steps = {k: make_step(build(k, dev, cl), x, dev, bf16) for k in kinds}
        t = timed(steps, dev, z["repeats"])
        del steps
        if dev.type == "cuda":
            torch.cuda.empty_cache()
        ref = "monai" if has_monai else "native"
        for k in kinds:
            row(f"DenseNet-121-3D {k}, {label}, {inp}: step time", f"{t[k] * 1000:.0f} ms",
                f"{t[k] / t[ref]:.2f}x {ref}")
            if mem:
                row(f"DenseNet-121-3D {k}, {label}, {inp}: peak memory", f"{mem[k] / 2**20:.0f} MiB",
                    f"{mem[k] / mem[ref]:.2f}x {ref}" + ("" if dev.type == "cuda" else " (ru_maxrss rise, fresh process)"))


def section_flops(dev, z):
    from torch.utils.flop_counter import FlopCounterMode

    def mm_rate(dtype):
        n = z["mm"]
        a, b = torch.randn(n, n, device=dev, dtype=dtype), torch.randn(n, n, device=dev, dtype=dtype)
        t = timed({"mm": lambda: torch.mm(a, b)}, dev, 5, warmup=2)["mm"]
        return 2 * n**3 / t

    ceil = {False: mm_rate(torch.float32), True: mm_rate(torch.bfloat16)}
    row(f"torch.mm {z['mm']}^2 fp32 / bf16", f"{rate_text(ceil[False])} / {rate_text(ceil[True])}",
        f"TF32 matmul {'on' if torch.backends.cuda.matmul.allow_tf32 else 'off'}, cuDNN TF32 "
        f"{'on' if torch.backends.cudnn.allow_tf32 else 'off'}" if dev.type == "cuda" else "empirical ceiling")
    peak = None
    if dev.type == "cuda":
        name = torch.cuda.get_device_name(dev)
        peak = next((v for k, v in PEAK_TFLOPS.items() if k in name), None)
        if peak is None:
            row("published peak", "unknown", f"{name} is not in PEAK_TFLOPS")
    inp = f"{z['batch']}x1x{'x'.join(map(str, z['shape']))}"
    for label, bf16, cl in (("fp32", False, False), ("bf16 autocast", True, False),
                            ("channels-last-3d fp32", False, True), ("bf16 + channels-last-3d", True, True)):
        if dev.type == "cpu" and bf16 and not z["tiny"]:
            continue
        model = build("native", dev, cl)
        step = make_step(model, make_input(z["batch"], z["shape"], dev, cl), dev, bf16)
        step()
        with FlopCounterMode(display=False) as fc:
            step()
        flops = fc.get_total_flops()
        t = timed({"s": step}, dev, z["repeats"], warmup=0)["s"]
        rate = flops / t
        note = f"{flops / 1e9:.1f} GFLOP per step, {t * 1000:.0f} ms; {rate / ceil[bf16]:.2f}x torch.mm {'bf16' if bf16 else 'fp32'}"
        if peak:
            p = peak[2] if bf16 else (peak[1] if torch.backends.cudnn.allow_tf32 else peak[0])
            note += f"; {rate / (p * 1e12):.3f}x published {'bf16' if bf16 else ('tf32' if torch.backends.cudnn.allow_tf32 else 'fp32')} peak ({p:g} TFLOP/s)"
        row(f"native DenseNet-121-3D {label}, {inp}: achieved", rate_text(rate), note)
        del model, step
        if dev.type == "cuda":
            torch.cuda.empty_cache()


def section_cobo(dev, z):
    from mtbench.experiments import cobo2024

    cfg = cobo2024.default_config("smoke" if z["tiny"] else "full")
    cfg["data"].update(source="phantom", phantom={"n_patients": z["cobo_patients"], "shape": list(z["cobo_shape"]), "seed": 0})
    cfg["data"]["preprocess"]["shape"] = list(z["cobo_shape"])
    cfg["cv"].update(n_splits=3, folds=[0], val_fraction=0.25)  # both classes in every part
    cfg["train"].update(epochs=1, batch_size=z["cobo_batch"], grad_accum_steps=z["cobo_accum"], patience=None,
                        device=str(dev), amp="auto")
    t0 = time.perf_counter()
    prep = cobo2024.prepare(cfg)
    t_data = time.perf_counter() - t0
    t0 = time.perf_counter()
    cobo2024.train_unit(cfg, {"arm": "baseline_densenet", "fold": 0}, prep, progress=False)
    sync(dev)
    t = time.perf_counter() - t0
    n = len(prep["table"])
    row(f"cobo2024 baseline_densenet, 1 epoch, fold 0 of 3, {n} phantom volumes 1x{'x'.join(map(str, z['cobo_shape']))}",
        f"{t:.1f} s", f"batch {z['cobo_batch']}, accumulation {z['cobo_accum']}, AMP auto, incl. val+test prediction; "
        f"phantom + preprocessing {t_data:.1f} s")


def section_loader(dev, z):
    import numpy as np  # noqa: F401  (the loaders' arrays)

    from bench_data import TASK, CachedCXR, epoch_rate
    from mtbench.data import MultiTaskDataset
    from mtbench.data.cache import VolumeLoader
    from mtbench.data.phantom import make_head_ct_phantom
    from mtbench.data.sources import ich_ct
    from mtbench.data.transforms import CTPreprocess

    with tempfile.TemporaryDirectory() as root, tempfile.TemporaryDirectory() as cache:
        make_head_ct_phantom(n_patients=z["loader_volumes"], shape=tuple(z["loader_shape"]), seed=0).to_nifti(root)
        table = ich_ct.load_manifest(root).table
        ds = MultiTaskDataset(table, TASK, VolumeLoader(CTPreprocess(windows=("cobo",), shape=tuple(z["loader_shape"])), cache))
        epoch_rate(ds, 0, 1)  # fills the cache
        rates = {w: epoch_rate(ds, w, 2, pin_memory=dev.type == "cuda") for w in (0, 1, 2)}
    row(f"cached 3D volumes 1x{'x'.join(map(str, z['loader_shape']))}, samples/s with 0 / 1 / 2 workers",
        " / ".join(f"{r:.0f}" for r in rates.values()),
        f"{rates[1] / rates[0]:.2f}x / {rates[2] / rates[0]:.2f}x of 0 workers; memory-mapped cache, persistent workers")
    try:
        from mtbench.data.cxr import CXRPreprocess
        from mtbench.data.sources import cohen_covid

        manifest = cohen_covid.load_manifest().table  # MTBENCH_DATA_ROOT/cohen-covid-mini
    except (FileNotFoundError, ImportError) as e:
        row("real X-ray decoding rows", "skipped", f"no real X-rays here ({str(e)[:80]})")
        return
    manifest = manifest[manifest["prognosis"].notna()].reset_index(drop=True)
    if z["xrays"]:
        manifest = manifest.iloc[: z["xrays"]].reset_index(drop=True)
    ds = MultiTaskDataset(manifest, TASK, CachedCXR(CXRPreprocess(size=224, channels=1, normalisation="minmax"), None))
    rates = {w: epoch_rate(ds, w, 1) for w in (0, 1, 2)}
    row(f"real X-rays decoded (no cache), {len(manifest)} -> 1x224x224, samples/s with 0 / 1 / 2 workers",
        " / ".join(f"{r:.0f}" for r in rates.values()), f"{rates[1] / rates[0]:.2f}x / {rates[2] / rates[0]:.2f}x of 0 workers")


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    ap.add_argument("--tiny", action="store_true", help="small sizes (the CPU test)")
    ap.add_argument("--out", help="also write the Markdown table to this file")
    ap.add_argument("--only", nargs="+", default=["fit", "densenet", "flops", "cobo", "loader"],
                    choices=["fit", "densenet", "flops", "cobo", "loader"])
    ap.add_argument("--batch", type=int, help="override the DenseNet batch size")
    ap.add_argument("--shape", type=int, nargs=3, metavar=("D", "H", "W"), help="override the DenseNet input size")
    ap.add_argument("--repeats", type=int, help="override the timed steps per configuration")
    ap.add_argument("--child-memory", help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.child_memory:
        _child_memory(args.child_memory)
        return 0
    dev = torch.device(args.device)
    z = {**SIZES["tiny" if args.tiny else "full"], "tiny": args.tiny}
    z.update({k: v for k, v in (("batch", args.batch), ("shape", args.shape and tuple(args.shape)), ("repeats", args.repeats)) if v})
    try:
        import monai  # noqa: F401
        has_monai = True
    except ImportError:
        has_monai = False
    name = torch.cuda.get_device_name(dev) if dev.type == "cuda" else f"CPU ({platform.processor() or platform.machine()}, {os.cpu_count()} cores, {torch.get_num_threads()} torch threads)"
    head = (f"{name}; torch {torch.__version__}; {'tiny' if args.tiny else 'paper'} sizes; "
            f"{time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}")
    print(head, flush=True)
    t_all = time.perf_counter()
    sections = {"fit": lambda: section_fit(dev, z), "densenet": lambda: section_densenet(dev, z, has_monai),
                "flops": lambda: section_flops(dev, z), "cobo": lambda: section_cobo(dev, z),
                "loader": lambda: section_loader(dev, z)}
    for s in args.only:
        t0 = time.perf_counter()
        print(f"[{s}]", flush=True)
        try:
            sections[s]()
        except Exception as e:  # one failing section must not lose the others' figures
            row(f"section {s}", "FAILED", f"{type(e).__name__}: {str(e)[:200]}")
        print(f"[{s}] {time.perf_counter() - t0:.0f} s", flush=True)
    lines = [f"Measured on {head}; total {time.perf_counter() - t_all:.0f} s.", "",
             "| what | figure | notes |", "|---|---|---|"] + [f"| {a} | {b} | {c} |" for a, b, c in ROWS]
    table = "\n".join(lines)
    print("\n" + table)
    if args.out:
        Path(args.out).write_text(table + "\n")
    return 1 if any(b == "FAILED" for _, b, _ in ROWS) else 0


if __name__ == "__main__":
    sys.exit(main())
