"""The project's files agree with each other: dependencies, notebooks, the README's commands."""

import json
import re
import tomllib
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parent.parent
NOTEBOOKS = sorted((ROOT / "notebooks").glob("*.ipynb"))


def _name(req: str) -> str:
    return re.split(r"[<>=!~\[ ;]", req.strip(), maxsplit=1)[0].lower().replace("_", "-")


def test_environment_yml_lists_the_same_packages_as_pyproject():
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    wanted = {_name(r) for r in project["dependencies"]}
    for extra in project["optional-dependencies"].values():
        wanted |= {_name(r) for r in extra}
    env = yaml.safe_load((ROOT / "environment.yml").read_text())
    names = set()
    for dep in env["dependencies"]:
        if isinstance(dep, dict):
            names |= {_name(r) for r in dep.get("pip", []) if not r.startswith("-")}
        elif _name(dep) not in ("python", "pip"):
            names.add(_name(dep))
    assert names == wanted, f"only in environment.yml: {names - wanted}; only in pyproject.toml: {wanted - names}"


def test_there_are_notebooks():
    assert any(p.name.startswith("00_quickstart") for p in NOTEBOOKS)


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_notebooks_are_committed_without_outputs(path):
    nb = json.loads(path.read_text())
    dirty = [i for i, c in enumerate(nb["cells"]) if c["cell_type"] == "code" and (c.get("outputs") or c.get("execution_count"))]
    assert not dirty, f"{path.name}: cells {dirty} carry outputs; run scripts/strip_notebooks.py {path.relative_to(ROOT)}"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_notebooks_print_profile_first_and_end_with_exercises(path):
    nb = json.loads(path.read_text())
    first_code = next(c for c in nb["cells"] if c["cell_type"] == "code")
    assert "print_environment()" in "".join(first_code["source"]), f"{path.name}: first code cell must print the environment"
    assert re.match(r"\d\d_", path.name), "notebooks are numbered NN_name.ipynb"
    text = "".join("".join(c["source"]) for c in nb["cells"] if c["cell_type"] == "markdown")
    assert "Exercises" in text, f"{path.name}: end with a few exercises"


def test_readme_has_exactly_the_two_commands_and_ci_calls_the_test_one():
    readme = (ROOT / "README.md").read_text()
    first_block = re.search(r"```bash\n(.*?)```", readme, re.S).group(1)
    commands = [line.split("#")[0].strip() for line in first_block.splitlines() if line.split("#")[0].strip()]
    assert commands == ["make quickstart", "make test"]
    assert "make test" in (ROOT / ".ci" / "run").read_text()


def test_data_cards_ship_as_package_data():
    """After `pip install .` the cards must be inside the package, or the schema checks are skipped
    (issue 14); scripts/wheel_check.sh checks the built wheel itself in CI."""
    from mtbench.data.cards import cards_dir, list_cards

    pkg = ROOT / "mtbench"
    assert cards_dir().resolve().is_relative_to(pkg.resolve()), cards_dir()
    patterns = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]["package-data"]["mtbench"]
    shipped = {p.stem for pat in patterns for p in pkg.glob(pat)}
    assert set(list_cards()) <= shipped and "cohen_covid" in shipped


def test_no_blanket_warning_silencing_in_package_or_notebooks():
    """A bare ``simplefilter("ignore")`` (or ``filterwarnings("ignore")`` without a category) around
    metrics turned single-class folds into silent NaNs (issue 14 item 10); use
    ``mtbench.metrics.ignore_degenerate_input_warnings`` instead."""
    blanket = re.compile(r"""(simplefilter|filterwarnings)\(\s*["']ignore["']\s*\)""")
    files = sorted((ROOT / "mtbench").rglob("*.py")) + NOTEBOOKS
    hits = []
    for path in files:
        text = path.read_text()
        if path.suffix == ".ipynb":
            text = "\n".join("".join(c["source"]) for c in json.loads(text)["cells"])
        hits += [f"{path.relative_to(ROOT)}:{text[:m.start()].count(chr(10)) + 1}" for m in blanket.finditer(text)]
    assert not hits, f"blanket warning filters: {hits}"
