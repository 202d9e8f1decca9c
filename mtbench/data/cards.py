"""Data cards: one Markdown file per data set in ``mtbench/data_cards/``, with machine-readable front matter.

A card opens with a YAML block between ``---`` lines::

    ---
    name: cohen_covid                 # the card's id (= file stem)
    title: ...
    modality: CXR                     # CXR | CT | tabular
    adapter: cohen_covid              # the source in mtbench.data.sources, or null (no adapter yet)
    tasks:                            # the label schema: one entry per task
      - {name: prognosis, column: prognosis, kind: binary, values: [0, 1], meaning: {0: mild, 1: severe}}
      - {name: brixia_global, column: brixia_global, kind: regression, range: [0, 18]}
    expected_counts:                  # per variant (a folder name, 'published', 'full'): adapter report keys
      cohen-covid-mini: {images: 120, patients: 76}
    access: ...
    licence: ...
    citation: ...
    ---
    Markdown body: provenance, how to obtain, preprocessing, pitfalls and biases, what mtbench does.

:func:`list_cards` and :func:`load_card` read them; the adapters take their expected counts and
label schema from here (:meth:`DataCard.expected_counts`), and ``tests/test_data_cards.py`` keeps
cards and adapters in agreement. The folder is found at ``$MTBENCH_CARDS_DIR`` or
``mtbench/data_cards/`` (shipped as package data).
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from mtbench.data.report import Report, check_counts

REQUIRED_FIELDS = ("name", "title", "modality", "adapter", "tasks", "expected_counts", "access", "licence", "citation")
TASK_KINDS = ("binary", "multiclass", "ordinal", "regression", "segmentation")


def cards_dir() -> Path:
    """The ``data_cards`` folder: ``$MTBENCH_CARDS_DIR``, else ``mtbench/data_cards`` (package data,
    so a wheel install has the cards and their schema checks too)."""
    env = os.environ.get("MTBENCH_CARDS_DIR")
    if env:
        return Path(env).expanduser().resolve()
    return Path(__file__).resolve().parent.parent / "data_cards"


@dataclass
class DataCard:
    """A parsed card: ``meta`` (the front matter), ``body`` (Markdown), ``path``."""

    name: str
    meta: dict[str, Any]
    body: str = ""
    path: Path | None = None
    _tasks: list[dict] = field(default_factory=list, repr=False)

    @property
    def adapter(self) -> str | None:
        return self.meta.get("adapter")

    @property
    def tasks(self) -> list[dict]:
        """The label schema, one dict per task (``name``, ``kind``, ``column``/``columns``, ``values``/``range``)."""
        return list(self.meta.get("tasks") or [])

    def task(self, name: str) -> dict:
        for t in self.tasks:
            if t["name"] == name:
                return t
        raise KeyError(f"Card {self.name!r} has no task {name!r} (tasks: {[t['name'] for t in self.tasks]}).")

    @property
    def label_columns(self) -> list[str]:
        """Every label column the schema names, in order."""
        cols: list[str] = []
        for t in self.tasks:
            cols += list(t["columns"]) if "columns" in t else [t.get("column", t["name"])]
        return cols

    def allowed_values(self, column: str) -> list | None:
        """The values a classification label column may take (``None`` if not constrained)."""
        for t in self.tasks:
            cols = list(t["columns"]) if "columns" in t else [t.get("column", t["name"])]
            if column in cols:
                return list(t["values"]) if "values" in t else None
        raise KeyError(f"Card {self.name!r} has no label column {column!r}.")

    def expected_counts(self, variant: str | None = None) -> dict[str, Any]:
        """The expected counts of ``variant`` (a folder name, ``published``, ``full``); with ``None``
        the first variant. An unknown variant gives ``{}`` (nothing to compare against)."""
        counts = self.meta.get("expected_counts") or {}
        if variant is None:
            return dict(next(iter(counts.values()), {}) or {})
        return dict(counts.get(variant) or {})

    def variant_for(self, root: str | os.PathLike | None) -> str | None:
        """The counts variant matching a data folder: its name if the card has it, else ``full`` /
        ``published`` when present."""
        counts = self.meta.get("expected_counts") or {}
        if root is not None and Path(root).name in counts:
            return Path(root).name
        for v in ("full", "published"):
            if v in counts:
                return v
        return None


def parse_card(text: str, path: Path | None = None) -> DataCard:
    """A card from its text; errors name the file and what is wrong."""
    where = str(path) if path else "card"
    if not text.startswith("---"):
        raise ValueError(f"{where}: a data card starts with a '---' YAML front-matter block.")
    parts = text.split("\n---", 1)
    if len(parts) != 2:
        raise ValueError(f"{where}: the front matter has no closing '---' line.")
    head = parts[0][3:]
    body = parts[1].split("\n", 1)[1] if "\n" in parts[1] else ""
    try:
        meta = yaml.safe_load(head) or {}
    except yaml.YAMLError as err:
        raise ValueError(f"{where}: front matter is not valid YAML: {err}") from None
    if not isinstance(meta, dict):
        raise ValueError(f"{where}: front matter must be a mapping, got {type(meta).__name__}.")
    missing = [f for f in REQUIRED_FIELDS if f not in meta]
    if missing:
        raise ValueError(f"{where}: front matter lacks field(s) {missing}.")
    for i, t in enumerate(meta["tasks"] or []):
        if not isinstance(t, dict) or "name" not in t or "kind" not in t:
            raise ValueError(f"{where}: task {i} needs 'name' and 'kind' (got {t!r}).")
        if t["kind"] not in TASK_KINDS:
            raise ValueError(f"{where}: task {t['name']!r} has kind {t['kind']!r}; expected one of {TASK_KINDS}.")
    return DataCard(name=str(meta["name"]), meta=meta, body=body.strip(), path=path)


def list_cards(directory: str | os.PathLike | None = None) -> list[str]:
    """Names of every card (file stems of ``data_cards/*.md``, README excluded), sorted."""
    d = Path(directory) if directory is not None else cards_dir()
    if not d.is_dir():
        raise FileNotFoundError(f"No data_cards folder at {d}; set MTBENCH_CARDS_DIR.")
    return sorted(p.stem for p in d.glob("*.md") if p.stem.lower() != "readme")


def load_card(name: str, directory: str | os.PathLike | None = None) -> DataCard:
    """The card ``data_cards/<name>.md``."""
    d = Path(directory) if directory is not None else cards_dir()
    path = d / f"{name}.md"
    if not path.is_file():
        avail = list_cards(d) if d.is_dir() else []
        raise FileNotFoundError(f"No data card {name!r} at {path}; cards: {avail}.")
    card = parse_card(path.read_text(encoding="utf-8"), path)
    if card.name != name:
        raise ValueError(f"{path}: front matter name {card.name!r} differs from the file name {name!r}.")
    return card


def find_card(adapter: str, directory: str | os.PathLike | None = None) -> DataCard | None:
    """The card whose ``adapter`` field is ``adapter`` (``None`` if there is none or no cards folder)."""
    d = Path(directory) if directory is not None else cards_dir()
    if not d.is_dir():
        return None
    for n in list_cards(d):
        card = load_card(n, d)
        if card.adapter == adapter:
            return card
    return None


def compare_with_card(adapter: str, observed: dict, root=None, report=None):
    """Add the differences between an adapter's counts and its card to a validation ``report``
    (a missing card is a warning, never an error: an installed package may not ship the cards).
    Returns ``{key: (found, expected)}`` for every difference."""
    report = report if report is not None else Report(dataset=adapter)
    try:
        card = find_card(adapter)
    except (OSError, ValueError) as err:
        report.warning("no-card", f"data card for {adapter!r} could not be read: {err}")
        return {}
    if card is None:
        report.warning("no-card", f"no data card names adapter {adapter!r} (looked in {cards_dir()})")
        return {}
    variant = card.variant_for(root)
    expected = card.expected_counts(variant) if variant else {}
    check_counts(observed, expected, report, label=f"card {card.name!r} ({variant})")
    return {k: (observed.get(k), v) for k, v in expected.items() if v is not None and observed.get(k) != v}
