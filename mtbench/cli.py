"""The ``mtbench`` command line.

    mtbench --version
    mtbench list [backbones|experiments|datasets|weightings|metrics] [--pattern 'resnet*'] [--spatial-dims 3]
    mtbench run EXPERIMENT [--profile smoke|full] [--out DIR] [--set key.sub=value ...]
"""

from __future__ import annotations

import argparse
import os
import sys
from typing import Any, Sequence

import yaml


def _set_nested(cfg: dict, dotted: str, value: Any) -> None:
    keys = dotted.split(".")
    node = cfg
    for k in keys[:-1]:
        if k not in node or not isinstance(node[k], dict):
            raise SystemExit(f"--set {dotted}: no section {k!r} in the configuration (sections: {list(node)}).")
        node = node[k]
    if keys[-1] not in node:
        raise SystemExit(f"--set {dotted}: unknown key {keys[-1]!r} (keys here: {list(node)}).")
    node[keys[-1]] = value


def _cmd_list(args) -> int:
    what = args.what
    if what == "backbones":
        from mtbench.models import backbone_info, list_backbones

        native = list_backbones(args.spatial_dims, args.pattern, include_timm=False)
        print(f"mtbench backbones ({len(native)}):")
        for n in native:
            info = backbone_info(n)
            print(f"  {n:<28} {'/'.join(f'{d}D' for d in info.spatial_dims):<6} {info.description}")
        if args.spatial_dims in (None, 2):
            timm_names = [n for n in list_backbones(2, args.pattern) if n not in native]
            shown = timm_names if args.pattern else timm_names[:20]
            print(f"timm 2D models ({len(timm_names)}){'' if args.pattern else ', first 20; filter with --pattern'}:")
            for n in shown:
                print(f"  {n}")
    elif what == "experiments":
        from mtbench.experiments import list_experiments

        for n, d in list_experiments().items():
            print(f"  {n:<24} {d}")
    elif what == "datasets":
        from mtbench.data.sources import list_datasets

        for n, d in list_datasets().items():
            print(f"  {n:<24} {d}")
    elif what == "weightings":
        from mtbench.mtl import list_weightings

        for n in list_weightings():
            print(f"  {n}")
    elif what == "metrics":
        from mtbench.metrics import get_metric, list_metrics

        for n in list_metrics():
            m = get_metric(n)
            print(f"  {n:<20} {','.join(m.kinds):<36} {m.description}")
    return 0


def _cmd_run(args) -> int:
    if args.profile:
        os.environ["MTBENCH_PROFILE"] = args.profile
    if args.data_root:
        os.environ["MTBENCH_DATA_ROOT"] = args.data_root
    from mtbench.experiments import get_experiment
    from mtbench.profiles import current_profile
    from mtbench.runs import create_run_dir

    exp = get_experiment(args.experiment)
    cfg = exp.default_config(current_profile())
    for item in args.set or []:
        key, sep, raw = item.partition("=")
        if not sep:
            raise SystemExit(f"--set expects key=value, got {item!r}.")
        _set_nested(cfg, key, yaml.safe_load(raw))
    run_dir = create_run_dir(args.experiment, root=args.out)
    print(f"mtbench run {args.experiment} (profile {current_profile()}) -> {run_dir}")
    result = exp.run(cfg, run_dir=run_dir, progress=not args.quiet)
    summary = getattr(exp, "summarize", None)
    text = summary(result) if summary else (result.table().to_string() if hasattr(result, "table") else "")
    if text:
        print(text)
        (run_dir / "summary.txt").write_text(text + "\n")
    print(f"\nRun folder: {run_dir}")
    for p in sorted(run_dir.rglob("*")):
        if p.is_file() and p.parent == run_dir:
            print(f"  {p.name}")
    return 0


def build_parser() -> argparse.ArgumentParser:
    from mtbench import __version__

    parser = argparse.ArgumentParser(prog="mtbench", description="Multi-task learning for medical-image prognosis.")
    parser.add_argument("--version", action="version", version=f"mtbench {__version__}")
    sub = parser.add_subparsers(dest="command")
    p_list = sub.add_parser("list", help="list backbones, experiments, datasets, weightings or metrics")
    p_list.add_argument("what", choices=["backbones", "experiments", "datasets", "weightings", "metrics"])
    p_list.add_argument("--pattern", help="shell-style filter, e.g. 'resnet*'")
    p_list.add_argument("--spatial-dims", type=int, choices=[2, 3])
    p_list.set_defaults(func=_cmd_list)
    p_run = sub.add_parser("run", help="run an experiment and write a run folder")
    p_run.add_argument("experiment")
    p_run.add_argument("--profile", choices=["smoke", "full"], help="default: $MTBENCH_PROFILE or smoke")
    p_run.add_argument("--data-root", help="root of the real data sets (default: $MTBENCH_DATA_ROOT)")
    p_run.add_argument("--out", help="runs folder (default: $MTBENCH_RUNS_DIR or ./runs)")
    p_run.add_argument("--set", action="append", metavar="KEY=VALUE", help="override a config value, e.g. train.epochs=3")
    p_run.add_argument("--quiet", action="store_true", help="no progress bars")
    p_run.set_defaults(func=_cmd_run)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "command", None):
        parser.print_help()
        return 0
    return args.func(args)


if __name__ == "__main__":
    sys.exit(main())
