"""How the library is laid out: one place computes the repository root, the benchmark scripts are thin
wrappers around :mod:`dynvfx.lab`, and the notebooks' setup helpers do not retry (the import structure:
test_imports.py)."""

from __future__ import annotations

import ast
import re

import pytest

from dynvfx.paths import REPO_ROOT

#: The one file that computes a path from ``__file__``.
ROOT_COMPUTERS = {"dynvfx/paths.py"}
BENCHMARKS = ("toy_edit", "toy_model_quality", "toy_word_sensitivity")


def test_only_dynvfx_paths_computes_the_repository_root():
    offenders = []
    for folder in ("dynvfx", "tests", "scripts", "benchmarks"):
        for path in sorted((REPO_ROOT / folder).rglob("*.py")):
            rel = path.relative_to(REPO_ROOT).as_posix()
            if rel not in ROOT_COMPUTERS and re.search(r"Path\(__file__\)\.resolve\(\)\.(parents?\b|parent\.)",
                                                       path.read_text()):
                offenders.append(rel)
    assert not offenders, f"use dynvfx.paths (REPO_ROOT, DATA_DIR, EXAMPLES_DIR, ...) in {offenders}"


def test_paths_point_into_this_checkout():
    from dynvfx import paths

    assert (paths.REPO_ROOT / "dynvfx" / "paths.py").is_file() and (paths.REPO_ROOT / "notebooks").is_dir()
    assert paths.EXAMPLES_DIR == paths.REPO_ROOT / "data" / "examples"
    assert (paths.EXAMPLES_DIR / "blue_ball_down.mp4").is_file()


@pytest.mark.parametrize("name", BENCHMARKS)
def test_benchmark_scripts_are_thin_wrappers(name):
    """A script defines only ``main`` (argument parsing and printing) and takes its logic from the package."""
    tree = ast.parse((REPO_ROOT / "benchmarks" / f"{name}.py").read_text())
    defined = [n.name for n in tree.body if isinstance(n, (ast.FunctionDef, ast.ClassDef))]
    assert defined == ["main"], f"benchmarks/{name}.py defines {defined}; move the logic to dynvfx/lab/"
    imports = {n.module for n in tree.body if isinstance(n, ast.ImportFrom)}
    assert any(m.startswith("dynvfx.lab.") for m in imports)


def test_load_model_tries_once(monkeypatch):
    """A model that cannot be read fails at once, with the loader's own error (no retry loop, no waiting)."""
    import dynvfx.pipeline
    from dynvfx import notebook

    calls = []

    def broken(name, **kwargs):
        calls.append(name)
        raise OSError(f"cannot parse {name}")

    monkeypatch.setattr(dynvfx.pipeline, "load_pipeline", broken)
    with pytest.raises(OSError, match="cannot parse toy"):
        notebook.load_model("toy")
    assert calls == ["toy"]
