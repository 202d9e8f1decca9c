"""Validation findings: :class:`Problem` and :class:`Report` (what :mod:`mtbench.data.validate`
checks and the adapters and data cards fill in), and :class:`Manifest`, what every adapter returns.

Self-contained (no imports back into ``mtbench.data``), so that :mod:`~mtbench.data.cards`,
:mod:`~mtbench.data.validate` and the adapters can all use it without an import cycle.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Iterable, Mapping, NamedTuple

import numpy as np
import pandas as pd

__all__ = ["DataValidationError", "FoldError", "Manifest", "Problem", "Report", "as_manifests", "check_counts"]

SEVERITIES = ("error", "warning")
NIFTI_SUFFIXES = (".nii", ".nii.gz")
DICOM_SUFFIXES = (".dcm", ".dicom")
#: Voxel spacing (mm) outside this range is implausible for a clinical CT/MR volume.
PLAUSIBLE_SPACING_MM = (0.05, 20.0)


class DataValidationError(ValueError):
    """A data set has errors; ``.report`` holds every problem found."""

    def __init__(self, report: "Report"):
        self.report = report
        super().__init__(report.format(max_per_code=5))


class FoldError(ValueError):
    """A fold (or split) cannot be evaluated, e.g. it has no positive case of a binary task."""


@dataclass(frozen=True)
class Problem:
    """One finding. ``file``/``row``/``column`` say where (``row`` is the manifest or file row)."""

    severity: str
    code: str
    message: str
    file: str | None = None
    row: Any = None
    column: str | None = None

    def __post_init__(self) -> None:
        if self.severity not in SEVERITIES:
            raise ValueError(f"severity must be one of {SEVERITIES}, got {self.severity!r}.")

    def where(self) -> str:
        parts = []
        if self.file:
            parts.append(str(self.file))
        if self.row is not None:
            parts.append(f"row {self.row}")
        if self.column:
            parts.append(f"column {self.column}")
        return ", ".join(parts)

    def __str__(self) -> str:
        w = self.where()
        return f"{self.severity.upper()} [{self.code}] {w + ': ' if w else ''}{self.message}"


@dataclass
class Report:
    """The problems found in one data set, and the counts the checks saw."""

    dataset: str = ""
    problems: list[Problem] = field(default_factory=list)
    counts: dict[str, Any] = field(default_factory=dict)

    # ------------------------------------------------------------------ adding
    def add(self, severity: str, code: str, message: str, file=None, row=None, column=None) -> Problem:
        p = Problem(severity, code, message, None if file is None else str(file), row, column)
        self.problems.append(p)
        return p

    def error(self, code: str, message: str, **where) -> Problem:
        return self.add("error", code, message, **where)

    def warning(self, code: str, message: str, **where) -> Problem:
        return self.add("warning", code, message, **where)

    def extend(self, other: "Report | Iterable[Problem]") -> "Report":
        if isinstance(other, Report):
            self.problems.extend(other.problems)
            for k, v in other.counts.items():
                self.counts.setdefault(k, v)
        else:
            self.problems.extend(other)
        return self

    def with_counts(self, **counts) -> "Report":
        """A copy with ``counts`` added (e.g. what a later step left out)."""
        return Report(self.dataset, list(self.problems), {**self.counts, **counts})

    # ------------------------------------------------------------------ reading
    @property
    def errors(self) -> list[Problem]:
        return [p for p in self.problems if p.severity == "error"]

    @property
    def warnings(self) -> list[Problem]:
        return [p for p in self.problems if p.severity == "warning"]

    @property
    def ok(self) -> bool:
        """True when there is no error (warnings allowed)."""
        return not self.errors

    def codes(self) -> dict[str, int]:
        """``{code: number of problems}``."""
        out: dict[str, int] = {}
        for p in self.problems:
            out[p.code] = out.get(p.code, 0) + 1
        return out

    def by_code(self, code: str) -> list[Problem]:
        return [p for p in self.problems if p.code == code]

    def to_frame(self) -> pd.DataFrame:
        cols = ["severity", "code", "message", "file", "row", "column"]
        return pd.DataFrame([{c: getattr(p, c) for c in cols} for p in self.problems], columns=cols)

    def raise_if_errors(self) -> None:
        if self.errors:
            raise DataValidationError(self)

    def format(self, max_per_code: int = 10) -> str:
        """Readable text: a summary line, then the problems grouped by code (errors first)."""
        head = f"{self.dataset or 'data'}: {len(self.errors)} error(s), {len(self.warnings)} warning(s)"
        lines = [head]
        if self.counts:
            lines.append("  counts: " + ", ".join(f"{k}={v}" for k, v in self.counts.items()))
        order = sorted(self.codes(), key=lambda c: (self.by_code(c)[0].severity != "error", c))
        for code in order:
            ps = self.by_code(code)
            lines.append(f"  {ps[0].severity.upper()} {code} ({len(ps)}):")
            for p in ps[:max_per_code]:
                w = p.where()
                lines.append(f"    - {w + ': ' if w else ''}{p.message}")
            if len(ps) > max_per_code:
                lines.append(f"    ... and {len(ps) - max_per_code} more")
        return "\n".join(lines)

    __str__ = format


class Manifest(NamedTuple):
    """What a data-source adapter returns: ``table`` (one row per image) and ``report``, the
    :class:`Report` of what it read: ``report.counts`` holds what it counted (kept, skipped and
    why, card differences), ``report.problems`` every row it skipped or doubted.

    Unpack it (``table, report = load_manifest(...)``) or use the fields (``m.table``,
    ``m.report.counts["missing_files"]``); ``len(m)`` is 2, the number of fields, so count rows
    with ``len(m.table)``."""

    table: pd.DataFrame
    report: Report


def as_manifests(manifest) -> dict[str, Manifest]:
    """``{name: Manifest}`` of what an experiment names as its data: one table or
    :class:`Manifest` (named ``"data"``), or a ``{name: table or Manifest}`` dict. A bare table gets
    an empty report; entries that are neither are left out."""
    if isinstance(manifest, (pd.DataFrame, Manifest)):
        manifest = {"data": manifest}
    out = {}
    for name, m in dict(manifest or {}).items():
        if isinstance(m, pd.DataFrame):
            m = Manifest(m, Report())
        if isinstance(m, Manifest):
            out[str(name)] = m
    return out


# ---------------------------------------------------------------------------- manifest checks


def row_name(manifest: pd.DataFrame, idx) -> str:
    if "sample_id" in manifest.columns:
        return f"{idx} ({manifest.at[idx, 'sample_id']})"
    return str(idx)


def check_counts(observed: Mapping[str, Any], expected: Mapping[str, Any], report: Report, label: str = "card") -> Report:
    """Observed counts against a card's expected counts: one warning per difference."""
    for key, want in expected.items():
        if want is None:
            continue
        if key not in observed:
            report.warning("count-unknown", f"the {label} expects {key}={want}, the adapter did not count {key!r}")
            continue
        got = observed[key]
        if got != want:
            report.warning("count-mismatch", f"{key}: found {got}, the {label} says {want} ({got - want:+d})"
                           if isinstance(got, (int, np.integer)) and isinstance(want, int) else
                           f"{key}: found {got!r}, the {label} says {want!r}")
    return report
