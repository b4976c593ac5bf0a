"""docs/ as reference pages: docs/experiments.md's table of recipes is the registry of emnist_study/recipes.py, each
experiment with its one line, verbatim, in the registry's order.

After changing a recipe's name or line, regenerate the table with `.venv/bin/python tests/test_docs.py`.
"""

import re
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
EXPERIMENTS_PAGE = ROOT / "docs" / "experiments.md"
BEGIN = "<!-- recipes: generated from emnist_study/recipes.py -->"
END = "<!-- end recipes -->"
BETWEEN = re.compile(re.escape(BEGIN) + r"\n(.*?)" + re.escape(END), re.S)


def row(name: str, line: str) -> str:
    return f"| `{name}` | {line.replace('|', '&#124;')} |"


def recipes_table() -> str:
    """The table the page holds between its markers: every experiment of the registry and its one line."""
    from emnist_study.recipes import EXPERIMENTS

    rows = ["| experiment | what it adds |", "|---|---|"] + [row(name, line) for name, (line, _) in EXPERIMENTS.items()]
    return "\n".join(rows) + "\n"


def test_the_experiments_page_lists_every_recipe_as_recipes_py_describes_it():
    from emnist_study.recipes import EXPERIMENTS

    page = EXPERIMENTS_PAGE.read_text(encoding="utf-8")
    assert page.count(BEGIN) == 1 and page.count(END) == 1, f"docs/experiments.md: one {BEGIN} ... {END}, please"
    shown = BETWEEN.search(page).group(1)
    missing = [name for name, (line, _) in EXPERIMENTS.items() if row(name, line) not in shown.splitlines()]
    assert not missing, f"not in docs/experiments.md as recipes.py has them: {missing}; run python tests/test_docs.py"
    assert shown == recipes_table(), "docs/experiments.md's recipes table is out of date: run python tests/test_docs.py"


def write_recipes_table() -> None:
    page = EXPERIMENTS_PAGE.read_text(encoding="utf-8")
    if not BETWEEN.search(page):
        sys.exit(f"docs/experiments.md: no {BEGIN} ... {END} to fill")
    EXPERIMENTS_PAGE.write_text(BETWEEN.sub(lambda _: f"{BEGIN}\n{recipes_table()}{END}", page), encoding="utf-8")
    print(f"{EXPERIMENTS_PAGE.relative_to(ROOT)}: the recipes' table written from emnist_study/recipes.py")


if __name__ == "__main__":
    sys.path.insert(0, str(ROOT))
    write_recipes_table()
