"""The front page and the docs: the README stays a front page, and every measured table in README.md and docs/ is
what ``scripts/docs_tables.py`` renders from the benchmarks' saved output (``benchmarks/results/``), the toy
model's training record and the cost model, so no figure there is typed by hand."""

from __future__ import annotations

import importlib.util
import json
import re
import shutil

import pytest

from dynvfx.paths import DOCS_DIR, REPO_ROOT

PAGES = ["README.md", "notebooks/README.md", *sorted(p.relative_to(REPO_ROOT).as_posix() for p in DOCS_DIR.glob("*.md"))]
#: Blocks written by notebooks/build.py (tested in test_notebooks.py), not by docs_tables.py.
BUILD_BLOCKS = {"chapters", "run_times"}


@pytest.fixture(scope="module")
def docs_tables():
    spec = importlib.util.spec_from_file_location("docs_tables", REPO_ROOT / "scripts" / "docs_tables.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_readme_is_a_front_page():
    lines = (REPO_ROOT / "README.md").read_text().splitlines()
    assert len(lines) <= 150, f"README.md has {len(lines)} lines; the details belong in docs/"
    assert lines[0].startswith("# ") and lines[1:3] == ["", "```bash"], "the README opens with its commands"
    commands = lines[3:lines.index("```", 3)]
    assert commands[0].startswith("make demo ") and commands[1].startswith("make test "), \
        "the README's first lines after the title are `make demo` and `make test`"
    head = "\n".join(lines[:40])
    chapters = sorted(p.stem for p in (REPO_ROOT / "notebooks").glob("[0-9][0-9]_*.ipynb"))
    assert chapters and all(f"(notebooks/{c}.ipynb)" in head for c in chapters), \
        "every chapter is linked in the README's first 40 lines"


@pytest.mark.parametrize("page", PAGES)
def test_pages_have_one_title_and_relative_links_that_resolve(page):
    path = REPO_ROOT / page
    text = re.sub(r"```.*?```", "", path.read_text(), flags=re.S)
    assert len(re.findall(r"^# ", text, re.M)) == 1, f"{page}: one H1 title"
    for target in re.findall(r"\]\(([^)#\s]+)(?:#[^)]*)?\)", text):
        if not re.match(r"[a-z]+:", target):
            assert (path.parent / target).exists(), f"{page}: the link {target} leads nowhere"


def test_every_generated_table_is_what_its_source_gives(docs_tables):
    found = {}
    for page in PAGES:
        for name in docs_tables.block_names((REPO_ROOT / page).read_text()):
            found.setdefault(name, []).append(page)
    assert set(found) - BUILD_BLOCKS == set(docs_tables.TABLES), "a page's block has no renderer, or a table no page"
    for name, (page, render) in docs_tables.TABLES.items():
        assert found[name] == [page.relative_to(REPO_ROOT).as_posix()], f"{name} belongs on {page} only"
        body = docs_tables.read_block(page.read_text(), name)
        assert body == render(), f"{page.name}: table {name} differs from its source; run python scripts/docs_tables.py"


def test_a_changed_result_changes_the_table(docs_tables, tmp_path):
    """The tables are read from the saved runs: one edit's success flipped moves the success cell."""
    results = tmp_path / "results"
    shutil.copytree(docs_tables.RESULTS, results)
    saved = json.loads((results / "toy_edit.json").read_text())
    rows = saved["results"]["authors"]
    rows[0]["success"] = not rows[0]["success"]
    (results / "toy_edit.json").write_text(json.dumps(saved))
    assert docs_tables.edit_table(results) != docs_tables.edit_table()


def test_write_block_replaces_only_its_block(docs_tables, tmp_path):
    page = tmp_path / "page.md"
    page.write_text("# T\n\n<!-- BEGIN generated: a -->\nold\n<!-- END generated: a -->\n\nkept\n")
    assert docs_tables.write_block(page, "a", "| new |") and not docs_tables.write_block(page, "a", "| new |")
    assert page.read_text() == "# T\n\n<!-- BEGIN generated: a -->\n| new |\n<!-- END generated: a -->\n\nkept\n"
    with pytest.raises(ValueError, match="no block"):
        docs_tables.write_block(page, "b", "x")
