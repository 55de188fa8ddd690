"""Rebuild the executed notebooks from their jupytext sources: ``python notebooks/build.py [NAME ...]``.

Each ``NN_name.py`` (py:percent, paired with ``ipynb``) is read with jupytext, executed in a fresh kernel with
its folder as the working directory (nbclient), and written to ``NN_name.ipynb`` with its outputs. Without names,
every chapter is rebuilt. Prints the execution time of each. Needs ``jupytext``, ``nbclient`` and ``ipykernel``.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

import jupytext
from nbclient import NotebookClient

HERE = Path(__file__).resolve().parent


def build(source: Path, timeout: int = 900) -> float:
    """Execute ``source`` (a ``.py`` notebook) and write the paired ``.ipynb``; returns the seconds taken."""
    nb = jupytext.read(source)
    start = time.perf_counter()
    NotebookClient(nb, timeout=timeout, kernel_name="python3", resources={"metadata": {"path": str(HERE)}}).execute()
    seconds = time.perf_counter() - start
    jupytext.write(nb, source.with_suffix(".ipynb"))
    return seconds


def main(names: list[str]) -> int:
    sources = sorted(HERE.glob("[0-9][0-9]_*.py"))
    if names:
        sources = [s for s in sources if any(s.stem.startswith(n) or s.stem == n for n in names)]
    for source in sources:
        print(f"{source.stem}: {build(source):.0f} s", flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
