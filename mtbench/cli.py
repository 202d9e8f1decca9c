"""The ``mtbench`` command line.

    mtbench --version
    mtbench list [backbones|experiments|datasets|weightings|metrics] [--pattern 'resnet*'] [--spatial-dims 3]
    mtbench run EXPERIMENT [--profile smoke|full] [--data-root P] [--set key.sub=value ...]
                           [--arm A] [--backbone B] [--fold K] [--seed S] [--setting S]
                           [--run-dir D | --new]
    mtbench plan EXPERIMENT [same options]    one command per unit, for a cluster job array
    mtbench report RUN_DIR ...                aggregate finished units, list missing ones
    mtbench describe EXPERIMENT [--profile full|smoke]
                                              paper / original code vs mtbench default, and the switch
    mtbench data check DATASET [--data-root P | --root P] [--splits CSV] [--tasks COL:KIND,...] [--no-read]
                                              validate a data set against its card; exit 1 on errors
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path
from typing import Any, Sequence

import yaml

from mtbench.cli_errors import friendly_errors


GENERIC_KEYS = {"allow_single_class": False}  # top-level switches every experiment accepts (mtbench.run_checks)


def _set_nested(cfg: dict, dotted: str, value: Any) -> None:
    keys = dotted.split(".")
    if dotted in GENERIC_KEYS:
        cfg[dotted] = value
        return
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


def _resolved_config(args) -> tuple[Any, dict]:
    if getattr(args, "profile", None):
        os.environ["MTBENCH_PROFILE"] = args.profile
    if getattr(args, "data_root", None):
        os.environ["MTBENCH_DATA_ROOT"] = args.data_root
    from mtbench.experiments import get_experiment
    from mtbench.profiles import current_profile

    exp = get_experiment(args.experiment)
    cfg = exp.default_config(current_profile())
    for item in args.set or []:
        key, sep, raw = item.partition("=")
        if not sep:
            raise SystemExit(f"--set expects key=value, got {item!r}.")
        _set_nested(cfg, key, yaml.safe_load(raw))
    if getattr(args, "data_root", None):
        _check_data_root(args, exp, cfg)
    return exp, cfg


def _check_data_root(args, exp, cfg: dict) -> None:
    """``--data-root`` must select real data: refuse a configuration that would train on synthetic
    data anyway, naming the ``--set`` that selects a real source (issue 14: it used to train on
    synthetic data without a word)."""
    from mtbench.run_checks import SYNTHETIC

    source = (cfg.get("data") or {}).get("source") if isinstance(cfg.get("data"), dict) else None
    if source is None:
        raise SystemExit(f"--data-root {args.data_root} was given, but {args.experiment} trains on generated data only "
                         "(its configuration has no data.source): drop --data-root.")
    if not str(source).startswith(SYNTHETIC):
        return
    full = (exp.default_config("full").get("data") or {}).get("source")
    hint = (f"--set data.source={full}" if full and not str(full).startswith(SYNTHETIC)
            else "--set data.source=table --set data.table=<labels.csv> --set data.tasks=<column:kind,...> (README, "
                 "'Your own data')" if "table" in cfg["data"]
            else "a real data.source (see the experiment's doc page)")
    raise SystemExit(
        f"--data-root {args.data_root} was given, but {args.experiment}'s {cfg.get('profile')} configuration uses "
        f"data.source={source} (generated data): --data-root only says where real data sets are. "
        f"To train on real data add {hint}"
        + (" (or --set data.source=cohen for the COVID-19 image collection at <data root>/cohen-covid-mini)"
           if args.experiment.startswith("ruffini2024") and full != "cohen" else "")
        + "; to keep the generated data, drop --data-root.")


UNIT_FLAGS = ("arm", "backbone", "fold", "seed", "setting")  # the keys a unit may have (mtbench.runs.unit_key)


def _selection(args) -> dict:
    return {k: getattr(args, k) for k in UNIT_FLAGS if getattr(args, k, None) is not None}


def _cmd_run(args) -> int:
    from mtbench.runs import create_run_dir, missing_units, run_dir_for, run_experiment
    from mtbench.train import distributed as ddp

    ddp.init_distributed()  # a no-op unless launched by torchrun
    exp, cfg = _resolved_config(args)
    main = ddp.is_main_process()
    if args.run_dir:
        run_dir = Path(args.run_dir)
    elif args.new:
        run_dir = ddp.broadcast_object(create_run_dir(args.experiment, root=args.out) if main else None)
    else:
        run_dir = run_dir_for(args.experiment, cfg, args.out)
    if main:
        print(f"mtbench run {args.experiment} (profile {cfg.get('profile')}) -> {run_dir}")
    done = run_experiment(exp, cfg, run_dir, _selection(args), progress=not args.quiet)
    text = ""
    if main:
        if done["skipped"] and not done["ran"]:
            print(f"Every selected unit had finished earlier ({len(done['skipped'])}); nothing was re-run.")
        text = exp.report(run_dir)
        missing = missing_units(exp, cfg, run_dir)
        if missing:
            text += f"\n\n{len(missing)} unit(s) not finished yet: {', '.join(missing)}"
    if main:
        if text:
            print(text)
            (Path(run_dir) / "summary.txt").write_text(text + "\n")
        print(f"\nRun folder: {run_dir}")
        for p in sorted(Path(run_dir).iterdir()):
            if p.is_file():
                print(f"  {p.name}")
    return 0


def _cmd_plan(args) -> int:
    import shlex

    from mtbench.runs import run_dir_for, unit_key

    exp, cfg = _resolved_config(args)
    run_dir = Path(args.run_dir) if args.run_dir else run_dir_for(args.experiment, cfg, args.out)
    base = ["mtbench", "run", args.experiment, "--profile", cfg.get("profile", "smoke"), "--run-dir", str(run_dir), "--quiet"]
    for item in args.set or []:
        base += ["--set", item]
    if args.data_root:
        base += ["--data-root", args.data_root]
    units = exp.units(cfg)
    n_dep = sum(1 for u in units if u.get("after"))
    print(f"# {len(units)} units of {args.experiment} ({n_dep} marked '# after:' depend on others and run them first "
          "if missing); run each line anywhere (a job array), then:")
    print(f"#   mtbench report {shlex.quote(str(run_dir))}")
    for u in units:
        flags = []
        for k, v in u.items():
            if k == "after":
                continue
            if k not in UNIT_FLAGS:
                raise SystemExit(f"Unit key {k!r} has no command-line flag.")
            flags += [f"--{k}", str(v)]
        after = f"  # after: {', '.join(u['after'])}" if u.get("after") else ""
        print(" ".join(shlex.quote(a) for a in base + flags) + after)
    return 0


def _cmd_report(args) -> int:
    from mtbench.experiments import get_experiment
    from mtbench.runs import load_run_config, missing_units

    status = 0
    for run_dir in args.run_dirs:
        cfg = load_run_config(run_dir)
        exp = get_experiment(cfg["experiment"])
        print(f"== {run_dir} ({cfg['experiment']}, profile {cfg.get('profile')})")
        missing = missing_units(exp, cfg, run_dir)
        try:
            print(exp.report(Path(run_dir)))
        except FileNotFoundError as err:
            print(f"  {err}")
            status = 1
        if missing:
            print(f"\n{len(missing)} unit(s) missing: {', '.join(missing)}")
        else:
            print("\nAll units finished.")
    return status


def _cmd_describe(args) -> int:
    from mtbench.experiments import get_experiment
    from mtbench.fidelity import EXPERIMENTS, describe

    get_experiment(args.experiment)  # an unknown name fails with the registry's list
    if args.experiment not in EXPERIMENTS:
        raise SystemExit(f"{args.experiment} reproduces no paper, so it has no fidelity table; "
                         f"experiments with one: {', '.join(EXPERIMENTS)}.")
    print(f"{args.experiment}: paper / original code vs mtbench ({args.profile} profile defaults)\n")
    print(describe(args.experiment, args.profile))
    return 0


def _cmd_data_check(args) -> int:
    if args.data_root:
        os.environ["MTBENCH_DATA_ROOT"] = args.data_root
    from mtbench.data.sources import list_datasets
    from mtbench.data.validate import validate_dataset

    if args.dataset not in list_datasets():
        print(f"Unknown dataset {args.dataset!r}; datasets with an adapter: {sorted(list_datasets())}", file=sys.stderr)
        return 2
    options = {"tasks": args.tasks} if args.tasks else {}  # the `table` source: your task columns and kinds
    report = validate_dataset(args.dataset, root=args.root, read_files=not args.no_read, hash_files=not args.no_read,
                              splits=args.splits, progress=not args.quiet, **options)
    print(report.format(max_per_code=args.max_per_code))
    if args.csv:
        report.to_frame().to_csv(args.csv, index=False)
        print(f"All {len(report.problems)} problems written to {args.csv}")
    return 0 if report.ok else 1


def _add_data_commands(sub) -> None:
    p_data = sub.add_parser("data", help="data set tools: `mtbench data check DATASET`")
    data_sub = p_data.add_subparsers(dest="data_command", required=True)
    p_check = data_sub.add_parser("check", help="validate a data set against its card (exit code 1 on errors)")
    p_check.add_argument("dataset", help="a data set name (mtbench list datasets)")
    p_check.add_argument("--data-root", help="root of the real data sets (default: $MTBENCH_DATA_ROOT)")
    p_check.add_argument("--root", help="the data set's own folder (default: <data root>/<its default folder>)")
    p_check.add_argument("--splits", help="CSV with sample_id and split and/or fold columns to check too")
    p_check.add_argument("--tasks", help="`table` source only: task columns and kinds, e.g. outcome:binary,score:regression")
    p_check.add_argument("--no-read", action="store_true", help="do not open and hash every image file")
    p_check.add_argument("--csv", help="write every problem to this CSV file")
    p_check.add_argument("--max-per-code", type=int, default=10, help="problems printed per code (default 10)")
    p_check.add_argument("--quiet", action="store_true", help="no progress bar")
    p_check.set_defaults(func=_cmd_data_check)


def build_parser() -> argparse.ArgumentParser:
    from mtbench import __version__

    parser = argparse.ArgumentParser(prog="mtbench", description="Multi-task learning for medical-image prognosis.")
    parser.add_argument("--version", action="version", version=f"mtbench {__version__}")
    parser.add_argument("--debug", action="store_true", help="show the full traceback on errors (also after the command)")
    sub = parser.add_subparsers(dest="command")
    p_list = sub.add_parser("list", help="list backbones, experiments, datasets, weightings or metrics")
    p_list.add_argument("what", choices=["backbones", "experiments", "datasets", "weightings", "metrics"])
    p_list.add_argument("--pattern", help="shell-style filter, e.g. 'resnet*'")
    p_list.add_argument("--spatial-dims", type=int, choices=[2, 3])
    p_list.set_defaults(func=_cmd_list)
    def experiment_args(p):
        p.add_argument("experiment")
        p.add_argument("--profile", choices=["smoke", "full"], help="default: $MTBENCH_PROFILE or smoke")
        p.add_argument("--data-root", help="root of the real data sets (default: $MTBENCH_DATA_ROOT)")
        p.add_argument("--out", help="runs folder (default: $MTBENCH_RUNS_DIR or ./runs)")
        p.add_argument("--run-dir", help="an explicit run folder (what `mtbench plan` prints)")
        p.add_argument("--set", action="append", metavar="KEY=VALUE", help="override a config value, e.g. train.epochs=3")

    p_run = sub.add_parser("run", help="run (or resume) an experiment into its run folder")
    experiment_args(p_run)
    for key in UNIT_FLAGS:
        p_run.add_argument(f"--{key}", help=f"run only the units with this {key}")
    p_run.add_argument("--new", action="store_true", help="start a fresh run folder instead of resuming")
    p_run.add_argument("--quiet", action="store_true", help="no progress bars")
    p_run.set_defaults(func=_cmd_run)
    p_plan = sub.add_parser("plan", help="print one `mtbench run` command per independent unit (for job arrays)")
    experiment_args(p_plan)
    p_plan.set_defaults(func=_cmd_plan)
    p_report = sub.add_parser("report", help="aggregate finished units of run folders; list what is missing")
    p_report.add_argument("run_dirs", nargs="+")
    p_report.set_defaults(func=_cmd_report)
    p_desc = sub.add_parser("describe", help="what the paper / original code does vs mtbench's defaults, and the switch")
    p_desc.add_argument("experiment")
    p_desc.add_argument("--profile", choices=["smoke", "full"], default="full", help="defaults of this profile (default full)")
    p_desc.set_defaults(func=_cmd_describe)
    _add_data_commands(sub)
    return parser


@friendly_errors  # errors: one line, exit code 2; --debug anywhere shows the traceback
def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "command", None):
        parser.print_help()
        return 0
    return args.func(args)


if __name__ == "__main__":
    sys.exit(main())
