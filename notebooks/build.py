"""Rebuild the executed notebooks from their jupytext sources, and keep what they say about themselves in step.

    python notebooks/build.py [NAME ...]   # execute every chapter (or those named) and store its outputs
    python notebooks/build.py --links      # execute nothing: rewrite the badges, install cells and run times,
                                           # and empty the solution cells' outputs

Each ``NN_name.py`` (py:percent, paired with ``ipynb``) is read with jupytext, executed in a fresh kernel with
its folder as the working directory (nbclient), and written to ``NN_name.ipynb`` with its outputs. The seconds it
took go into ``run_times.json`` with the threads, the CPU and the date (chapters not run keep their entry).
The exercises' solution cells (tagged ``solution``) run with the chapter, so their ``assert`` checks them, but
their outputs are not stored and their code is collapsed (:func:`hide_solutions`).

Then, in every chapter's ``.py`` and ``.ipynb`` (outputs kept), the Colab badge and the setup cell's ``git clone``
point at the public repository, ``Repository`` under ``[project.urls]`` in ``pyproject.toml`` (the one place that
names it), and the first cell's run-time line states the chapter's time from ``run_times.json``; the chapter tables
of ``README.md`` and ``notebooks/README.md`` are written from the same two files. ``--links`` does only this part
and :func:`hide_solutions` (a second, no kernel): run it after pointing ``pyproject.toml`` at a fork. Needs
``jupytext``, ``nbclient`` and ``ipykernel``.
"""

from __future__ import annotations

import datetime
import json
import os
import platform
import re
import sys
import time
import tomllib
from pathlib import Path

import jupytext
from nbclient import NotebookClient

from dynvfx.paths import REPO_ROOT

sys.path.insert(0, str(REPO_ROOT / "scripts"))
from docs_tables import write_block  # noqa: E402  (scripts/ is no package)

HERE = REPO_ROOT / "notebooks"
RUN_TIMES = HERE / "run_times.json"
#: What each chapter shows, for the chapter table of the README (the chapters' titles come from their headings).
SHOWS = {
    "00_overview": "the whole edit in a few cells: plan, run, the result and its masks, and whether it did what was "
                   "asked",
    "01_ddim_inversion": "v-prediction, the inversion loop written out, zero terminal SNR, and what brings the source "
                         "back from inside the injection window",
    "02_attention_maps": "why keys and values stay local, where the words look, a map that localises (the new "
                         "ball's attention to the source), and whether the model knows which ball each word belongs to",
    "03_vlm_planning": "what the plan changes in an edit (the same toy edits with P_comp and with the raw "
                       "instruction), the VFX assistant's prompts, the plan schema, the toy planner, optional real VLMs",
    "04_anchor_masking": "a chosen edit the anchors save, O_orig on the token grid, anchor sampling, Anchor "
                         "Extended Attention written out, and anchor / full / masked / no extended attention compared",
    "05_residual_refinement": "a chosen edit the passes save, the refinement loop written out, compositing, and the "
                              "toy benchmark's ablation table beside the paper's Table 1",
}
BADGE = re.compile(r"(\[!\[Open In Colab\]\(https://colab\.research\.google\.com/assets/colab-badge\.svg\)\]\()"
                   r"[^)\s]*(\))")
CLONE = re.compile(r"(git clone -q --depth 1 )\S+( dynvfx-course)")
RUN_TIME = re.compile(r"\*\*Run time\.\*\* .*? with the toy model \(measured by `notebooks/build\.py`\)\.")
SOLUTION = "solution"  # the tag of an exercise's solution cell
COLAB_FORM = "#@title"  # a solution cell's first line: Colab shows the cell as a collapsed form with this title


def chapters() -> list[Path]:
    """The chapters' jupytext sources, in order."""
    return sorted(HERE.glob("[0-9][0-9]_*.py"))


def repository_url() -> str:
    """The public repository: ``Repository`` under ``[project.urls]`` in ``pyproject.toml``."""
    with open(REPO_ROOT / "pyproject.toml", "rb") as f:
        return tomllib.load(f)["project"]["urls"]["Repository"].rstrip("/")


def colab_url(name: str, repository: str) -> str:
    """Colab's link that opens chapter ``name`` from the GitHub repository ``repository`` (its main branch)."""
    match = re.fullmatch(r"https://github\.com/([^/]+/[^/]+?)(\.git)?", repository)
    if match is None:
        raise ValueError(f"Colab opens notebooks from GitHub; the repository should be https://github.com/OWNER/NAME, "
                         f"not {repository!r}")
    return f"https://colab.research.google.com/github/{match[1]}/blob/main/notebooks/{name}.ipynb"


def load_run_times() -> dict[str, dict]:
    """``run_times.json``: per chapter, the seconds of its last build, the threads, the CPU and the date."""
    return json.loads(RUN_TIMES.read_text()) if RUN_TIMES.is_file() else {}


def duration(seconds: float) -> str:
    """``42 s``, ``1 min 25 s``."""
    minutes, rest = divmod(int(seconds + 0.5), 60)
    return f"{rest} s" if not minutes else f"{minutes} min {rest} s" if rest else f"{minutes} min"


def run_time_line(entry: dict) -> str:
    """The first cell's run-time sentence for a ``run_times.json`` entry."""
    threads = "one CPU thread" if entry["threads"] == 1 else f"{entry['threads']} CPU threads"
    return f"**Run time.** {duration(entry['seconds'])} on {threads} with the toy model (measured by " \
           f"`notebooks/build.py`)."


def front_matter(text: str, name: str, repository: str, run_times: dict) -> str:
    """``text`` (a chapter's ``.py`` or one cell) with its Colab badge, ``git clone`` URL and run-time line
    rewritten from the repository URL and ``run_times`` (a chapter with no entry keeps its line)."""
    text = BADGE.sub(lambda m: m[1] + colab_url(name, repository) + m[2], text)
    text = CLONE.sub(lambda m: m[1] + repository + m[2], text)
    if name in run_times:
        text = RUN_TIME.sub(lambda m: run_time_line(run_times[name]), text)
    return text


def is_solution(cell) -> bool:
    """Whether ``cell`` is an exercise's solution (a code cell tagged :data:`SOLUTION`)."""
    return cell.cell_type == "code" and SOLUTION in cell.metadata.get("tags", [])


def hide_solutions(nb) -> bool:
    """Keep the answers of ``nb``'s exercises out of sight until a student runs them: every solution cell loses its
    stored outputs (it keeps its execution count: it ran, and its ``assert`` held) and is collapsed in Jupyter
    (``jupyter.source_hidden``) and in Colab (``cellView: form``; its ``#@title`` line names the form). Returns
    whether ``nb`` changed."""
    changed = False
    for cell in filter(is_solution, nb.cells):
        meta = dict(cell.metadata, cellView="form", jupyter=dict(cell.metadata.get("jupyter", {}), source_hidden=True))
        if cell.outputs or meta != cell.metadata:
            cell.outputs, cell.metadata, changed = [], meta, True
    return changed


def chapter_title(source: Path) -> str:
    """The chapter's heading (``0 · DynVFX in one page``): the first ``# `` line of its first cell."""
    return next(c.source for c in jupytext.read(source).cells).splitlines()[0].removeprefix("# ").strip()


def chapters_table(repository: str, run_times: dict) -> str:
    """The README's "Start here" table: chapter (linked), what it shows, Colab, CPU time."""
    lines = ["| chapter | what it shows | open | CPU time |", "|---|---|---|---|"]
    for source in chapters():
        name, entry = source.stem, run_times.get(source.stem)
        time_text = duration(entry["seconds"]) if entry else "not measured"
        lines.append(f"| [{chapter_title(source)}](notebooks/{name}.ipynb) | {SHOWS.get(name, '')} | "
                     f"[Colab]({colab_url(name, repository)}) | {time_text} |")
    return "\n".join(lines)


def run_times_table(run_times: dict) -> str:
    """notebooks/README.md's table of ``run_times.json``: each chapter's time and where it was measured."""
    lines = ["| chapter | CPU time | threads | CPU (cores) | measured |", "|---|---|---|---|---|"]
    for source in chapters():
        entry = run_times.get(source.stem)
        if entry:
            lines.append(f"| [{source.stem}]({source.stem}.ipynb) | {duration(entry['seconds'])} | {entry['threads']} "
                         f"| {entry['cpu']} ({entry['cores']}) | {entry['date']} |")
        else:
            lines.append(f"| [{source.stem}]({source.stem}.ipynb) | not measured | | | |")
    return "\n".join(lines)


def cpu_name() -> str:
    """The CPU's model name (Linux), else what ``platform`` knows."""
    cpuinfo = Path("/proc/cpuinfo")
    if cpuinfo.is_file():
        for line in cpuinfo.read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    return platform.processor() or platform.machine()


def record_run_time(name: str, seconds: float) -> None:
    """Store chapter ``name``'s build time in ``run_times.json``; threads: ``OMP_NUM_THREADS``, else the cores."""
    run_times = load_run_times()
    run_times[name] = {"seconds": round(seconds, 1), "threads": int(os.environ.get("OMP_NUM_THREADS") or 0)
                       or os.cpu_count(), "cpu": cpu_name(), "cores": os.cpu_count(),
                       "date": datetime.date.today().isoformat()}
    RUN_TIMES.write_text(json.dumps(dict(sorted(run_times.items())), indent=1) + "\n")


def update_links() -> None:
    """Rewrite every chapter's front matter (:func:`front_matter`) in its ``.py`` and ``.ipynb`` (outputs kept but
    the solutions', :func:`hide_solutions`; nothing executed) and the chapter tables of README.md and
    notebooks/README.md."""
    repository, run_times = repository_url(), load_run_times()
    for source in chapters():
        text = source.read_text()
        new = front_matter(text, source.stem, repository, run_times)
        if new != text:
            source.write_text(new)
        ipynb = source.with_suffix(".ipynb")
        if ipynb.is_file():
            nb = jupytext.read(ipynb)
            old = [c.source for c in nb.cells]
            for cell in nb.cells:
                cell.source = front_matter(cell.source, source.stem, repository, run_times)
            if hide_solutions(nb) or [c.source for c in nb.cells] != old:
                jupytext.write(nb, ipynb)
    write_block(REPO_ROOT / "README.md", "chapters", chapters_table(repository, run_times))
    write_block(HERE / "README.md", "run_times", run_times_table(run_times))


def build(source: Path, timeout: int = 900) -> float:
    """Execute ``source`` (a ``.py`` notebook) and write the paired ``.ipynb``; returns the seconds taken."""
    nb = jupytext.read(source)
    start = time.perf_counter()
    NotebookClient(nb, timeout=timeout, kernel_name="python3", resources={"metadata": {"path": str(HERE)}}).execute()
    seconds = time.perf_counter() - start
    # no widget state: a viewer's output then shows its stored first picture (image/png) in nbconvert's HTML,
    # which would otherwise pick the widget view and fetch its JavaScript from a CDN
    nb.metadata.pop("widgets", None)
    hide_solutions(nb)
    jupytext.write(nb, source.with_suffix(".ipynb"))
    return seconds


def main(names: list[str]) -> int:
    if names == ["--links"]:
        update_links()
        return 0
    sources = chapters()
    if names:
        sources = [s for s in sources if any(s.stem.startswith(n) or s.stem == n for n in names)]
    for source in sources:
        seconds = build(source)
        record_run_time(source.stem, seconds)
        print(f"{source.stem}: {duration(seconds)}", flush=True)
    update_links()
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
