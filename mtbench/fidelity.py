"""Fidelity tables: what each paper / its original code does, what mtbench does by default, and the switch.

The facts live in ``mtbench/references/protocols/<experiment>.yaml``, one row per aspect:

``aspect``     what is compared;
``paper``      the paper's / original code's value, with its source ([code], [README], [abs]);
``key``        the dotted path of the experiment's configuration that sets it (``null``: no setting);
``original``   that value in configuration terms (omitted where the paper states none);
``match``      ``equal`` (default) or ``contains`` (the paper names a family, e.g. "resnet"; a list of
               ``original`` names: the default contains any of them);
``mtbench``    for rows without ``key``: what mtbench does, in words;
``switch``     how to get the other behaviour;
``deviation``  why the full-profile default still differs (present only while it does).

:func:`fidelity_table` reads the default at ``key`` from a configuration dict (an experiment's
``default_config("full")``), flags the rows that differ, and :func:`to_markdown` renders the table.
"""

from __future__ import annotations

from importlib import resources
from typing import Any, Mapping

import pandas as pd
import yaml

EXPERIMENTS = ("ruffini2024", "cobo2024", "gong2023", "hirano2021")
MISSING = object()
COLUMNS = ["aspect", "paper / original code", "mtbench default", "switch", "differs"]


def protocol_rows(experiment: str) -> list[dict[str, Any]]:
    """The rows of ``protocols/<experiment>.yaml``."""
    path = resources.files("mtbench.references") / "protocols" / f"{experiment}.yaml"
    if not path.is_file():
        raise FileNotFoundError(f"No fidelity table for {experiment!r}; shipped: {list(EXPERIMENTS)}")
    rows = yaml.safe_load(path.read_text(encoding="utf-8"))["rows"]
    for i, r in enumerate(rows):
        missing = {"aspect", "paper", "switch"} - set(r)
        if missing:
            raise ValueError(f"{path.name} row {i} ({r.get('aspect')!r}) lacks {sorted(missing)}")
    return rows


def get_path(config: Mapping[str, Any], key: str) -> Any:
    """The value at a dotted ``key`` of a nested dict, or :data:`MISSING`."""
    node: Any = config
    for part in key.split("."):
        if not isinstance(node, Mapping) or part not in node:
            return MISSING
        node = node[part]
    return node


def _same(value: Any, original: Any, match: str = "equal") -> bool:
    if value is MISSING:
        return False
    if match == "contains":
        names = original if isinstance(original, (list, tuple)) else [original]
        return any(str(o).lower() in str(value).lower() for o in names)
    if isinstance(original, float) or isinstance(value, float):
        try:
            return abs(float(value) - float(original)) <= 1e-12 * max(1.0, abs(float(original)))
        except (TypeError, ValueError):
            return False
    if isinstance(original, (list, tuple)) and isinstance(value, (list, tuple)):
        return len(value) == len(original) and all(_same(v, o) for v, o in zip(value, original))
    if isinstance(original, Mapping) and isinstance(value, Mapping):
        return set(value) == set(original) and all(_same(value[k], original[k]) for k in original)
    return value == original


def row_status(row: Mapping[str, Any], config: Mapping[str, Any]) -> tuple[Any, bool | None]:
    """``(default, differs)`` for one row: ``differs`` is None where nothing can be compared."""
    key = row.get("key")
    if not key:
        return row.get("mtbench", ""), (True if row.get("deviation") else None)
    value = get_path(config, key)
    if "original" not in row:
        return value, None
    return value, not _same(value, row["original"], row.get("match", "equal"))


def _fmt(value: Any) -> str:
    if value is MISSING:
        return "(no setting)"
    return str(value).replace("|", "\\|")


def fidelity_table(experiment: str, config: Mapping[str, Any]) -> pd.DataFrame:
    """The table ``aspect | paper / original code | mtbench default | switch`` (+ ``differs``) for a config."""
    out = []
    for r in protocol_rows(experiment):
        value, differs = row_status(r, config)
        shown = f"`{r['key']}` = {_fmt(value)}" if r.get("key") else _fmt(value)
        switch = r["switch"] + (f" (deviation: {r['deviation']})" if differs and r.get("deviation") else "")
        out.append({"aspect": r["aspect"], "paper / original code": r["paper"], "mtbench default": shown,
                    "switch": switch, "differs": differs})
    return pd.DataFrame(out, columns=COLUMNS)


def to_markdown(table: pd.DataFrame) -> str:
    """The table as GitHub Markdown; rows whose default differs from the original are marked **≠**."""
    lines = ["| aspect | paper / original code | mtbench default | switch |", "|---|---|---|---|"]
    for r in table.itertuples(index=False):
        mark = "**≠** " if r.differs else ""
        cells = [r.aspect, r[1], mark + r[2], r.switch]
        lines.append("| " + " | ".join(str(c).replace("\n", " ") for c in cells) + " |")
    return "\n".join(lines)


def describe(experiment: str, profile: str = "full") -> str:
    """The fidelity table of an experiment's ``default_config(profile)``, as Markdown (for ``mtbench describe``)."""
    from importlib import import_module

    module = import_module(f"mtbench.experiments.{experiment}")
    return to_markdown(fidelity_table(experiment, module.default_config(profile)))


#: The documentation page holding each experiment's generated table.
DOC_PAGES = {"ruffini2024": "docs/covid.md", "cobo2024": "docs/ich.md", "gong2023": "docs/ich.md", "hirano2021": "docs/ich.md"}
_BEGIN = "<!-- fidelity:{} begin: generated by `python -m mtbench.fidelity`, do not edit -->"
_END = "<!-- fidelity:{} end -->"


def doc_section(experiment: str) -> str:
    """The generated block (markers included) for an experiment's doc page: full-profile defaults."""
    legend = ("Generated from `default_config(\"full\")` and `mtbench/references/protocols/"
              f"{experiment}.yaml`; **≠** marks a default that differs from the original.")
    return "\n".join([_BEGIN.format(experiment), legend, "", describe(experiment, "full"), _END.format(experiment)])


def update_docs(root: str = ".") -> list[str]:
    """Rewrite the generated blocks of :data:`DOC_PAGES` under ``root``; returns the pages changed."""
    from pathlib import Path

    changed = []
    for exp, page in DOC_PAGES.items():
        path = Path(root) / page
        text = path.read_text(encoding="utf-8")
        begin, end = _BEGIN.format(exp), _END.format(exp)
        if begin not in text or end not in text:
            raise ValueError(f"{path} has no generated block for {exp}: add the lines\n{begin}\n{end}")
        head, rest = text.split(begin, 1)
        new = head + doc_section(exp) + rest.split(end, 1)[1]
        if new != text:
            path.write_text(new, encoding="utf-8")
            changed.append(str(path))
    return changed


if __name__ == "__main__":  # python -m mtbench.fidelity: refresh the tables in docs/
    print("\n".join(update_docs()) or "docs up to date")
