"""A chapter's setup cell where the package is not installed (Colab's path): it clones the repository that
``pyproject.toml`` names, installs it, and ``import dynvfx`` works.

It runs in a fresh virtual environment that sees the dependencies installed in this one (through links, so torch
is not downloaded again) but not dynvfx, with the URL pointed at this checkout (``file://``: its committed HEAD) and
pip kept offline. What it leaves out of Colab's path: downloading the dependencies and the setup tools.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import sysconfig
import tomllib
from pathlib import Path

import jupytext
import pytest

from dynvfx.paths import REPO_ROOT

CHAPTER = REPO_ROOT / "notebooks" / "00_overview.py"


def _links_to_dependencies(folder: Path) -> Path:
    """``folder`` filled with links to everything installed in this environment except dynvfx itself."""
    folder.mkdir()
    for entry in Path(sysconfig.get_paths()["purelib"]).iterdir():
        if entry.suffix != ".pth" and not entry.name.lower().startswith(("dynvfx", "__editable__")):
            (folder / entry.name).symlink_to(entry)
    return folder


def _setup_cell() -> str:
    cells = [c.source for c in jupytext.read(CHAPTER).cells if c.cell_type == "code"]
    return next(src for src in cells if "pip install" in src and "git clone" in src)


@pytest.mark.skipif(not (REPO_ROOT / ".git").exists() or shutil.which("git") is None,
                    reason="needs a git checkout of the course and git")
def test_setup_cell_clones_installs_and_imports_in_a_fresh_environment(tmp_path):
    with open(REPO_ROOT / "pyproject.toml", "rb") as f:
        repository = tomllib.load(f)["project"]["urls"]["Repository"].rstrip("/")
    cell = _setup_cell()
    assert repository in cell, "the setup cell should clone pyproject.toml's Repository"
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True)
    python = str(venv / "bin" / "python")
    site = subprocess.run([python, "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
                          capture_output=True, text=True, check=True).stdout.strip()
    Path(site, "dependencies.pth").write_text(f"{_links_to_dependencies(tmp_path / 'dependencies')}\n")
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PYTHON", "PIP_", "VIRTUAL_ENV"))}
    env |= {"PIP_NO_INDEX": "1", "PIP_NO_BUILD_ISOLATION": "0", "PIP_DISABLE_PIP_VERSION_CHECK": "1"}
    work, elsewhere = tmp_path / "colab", tmp_path / "elsewhere"
    work.mkdir(), elsewhere.mkdir()
    where = "import dynvfx.paths; print(dynvfx.paths.REPO_ROOT)"

    before = subprocess.run([python, "-c", where], cwd=work, env=env, capture_output=True, text=True)
    assert before.returncode != 0 and "No module named 'dynvfx'" in before.stderr, "dynvfx leaked into the venv"
    run = subprocess.run([python, "-c", cell.replace(repository, REPO_ROOT.as_uri()) + "\n" + where], cwd=work,
                         env=env, capture_output=True, text=True, timeout=600)
    assert run.returncode == 0, run.stderr[-3000:]
    clone = work / "dynvfx-course"
    assert Path(run.stdout.split()[-1]) == clone and (clone / "data" / "models" / "toy").is_dir()
    after = subprocess.run([python, "-c", "import dynvfx.pipeline\n" + where], cwd=elsewhere, env=env,
                           capture_output=True, text=True)
    assert after.returncode == 0 and Path(after.stdout.split()[-1]) == clone, \
        f"the install did not last beyond the cell: {after.stderr[-2000:]}"
