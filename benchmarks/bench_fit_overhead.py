"""The fit loop's overhead against a bare PyTorch training loop, measured side by side in one run.

Same model, data, batches, optimiser and number of steps; the bare loop does forward, masked loss,
backward and step and nothing else. ``fit`` adds label masks, per-task bookkeeping, the weighting,
progress handling and history. Repeats alternate the two to share any drift of the machine.

    python benchmarks/bench_fit_overhead.py [--epochs 3] [--repeats 3] [--size 64] [--n 512]

Goal (issue 8): fit / bare <= 1.05.
"""

from __future__ import annotations

import argparse
import statistics
import time

import torch

from mtbench import MultiTaskLoss, Task, create_model
from mtbench.data import MultiTaskDataset, make_synthetic_cxr
from mtbench.train import fit, make_loader, resolve_device, seed_everything

TASKS = [Task("prognosis", "binary"), Task("severity", "regression")]


def build(n: int, size: int):
    d = make_synthetic_cxr(n_patients=n, size=size, seed=0)
    table = d.table.assign(severity=lambda t: (t.severity - 7) / 4)
    return MultiTaskDataset(table, TASKS, d.images)


def _sync(device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def bare_loop(dataset, epochs: int, batch: int, backbone: str, device) -> float:
    seed_everything(0)
    model = create_model(backbone, TASKS, in_chans=1).to(device)
    loss_fn = MultiTaskLoss(TASKS)
    opt = torch.optim.AdamW(model.parameters(), lr=1e-3, weight_decay=1e-4)
    loader = make_loader(dataset, batch_size=batch, shuffle=True, seed=0)
    model.train()
    t0 = time.perf_counter()
    for _ in range(epochs):
        for b in loader:
            x = b["image"].to(device)
            targets = {k: v.to(device) for k, v in b["targets"].items()}
            masks = {k: v.to(device) for k, v in b["mask"].items()}
            loss = loss_fn(model(x), targets, masks).total
            loss.backward()
            opt.step()
            opt.zero_grad(set_to_none=True)
    _sync(device)
    return time.perf_counter() - t0


def fit_loop(dataset, epochs: int, batch: int, backbone: str, device) -> float:
    seed_everything(0)
    model = create_model(backbone, TASKS, in_chans=1)
    loader = make_loader(dataset, batch_size=batch, shuffle=True, seed=0)
    t0 = time.perf_counter()
    fit(model, loader, None, TASKS, MultiTaskLoss(TASKS), epochs=epochs, lr=1e-3, weight_decay=1e-4,
        progress=False, device=str(device), amp=False)
    _sync(device)
    return time.perf_counter() - t0


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--epochs", type=int, default=3)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--size", type=int, default=64)
    ap.add_argument("--n", type=int, default=512)
    ap.add_argument("--batch", type=int, default=32)
    ap.add_argument("--backbone", default="convnet")
    ap.add_argument("--device", default="auto", help="auto, cpu or cuda (both loops use the same device, full precision)")
    args = ap.parse_args()
    device = resolve_device(args.device)
    ds = build(args.n, args.size)
    bare_loop(ds, 1, args.batch, args.backbone, device)  # warm-up (allocator, kernels)
    bare, fitted = [], []
    for _ in range(args.repeats):
        bare.append(bare_loop(ds, args.epochs, args.batch, args.backbone, device))
        fitted.append(fit_loop(ds, args.epochs, args.batch, args.backbone, device))
    b, f = statistics.median(bare), statistics.median(fitted)
    print(f"{args.backbone}, {args.n} images {args.size}x{args.size}, batch {args.batch}, {args.epochs} epochs, "
          f"{args.repeats} alternating repeats, device {device}, torch threads {torch.get_num_threads()}")
    print(f"bare loop : median {b:.2f} s  ({', '.join(f'{x:.2f}' for x in bare)})")
    print(f"mtbench fit: median {f:.2f} s  ({', '.join(f'{x:.2f}' for x in fitted)})")
    print(f"overhead ratio fit / bare = {f / b:.3f}")


if __name__ == "__main__":
    main()
