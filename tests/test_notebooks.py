"""The tutorial notebooks, checked without running them (``pytest --nbval-lax notebooks/`` executes them).

Every chapter is a jupytext ``py:percent`` file paired with an executed ``.ipynb``; both must hold the same cells.
Cells stay short (a function longer than a few lines goes to the library module of its stage, see
``HELPER_HOMES``), the first cell says what the chapter teaches and how long it takes on a CPU (the time
``notebooks/build.py`` measured, from ``run_times.json``) and on a GPU, and each chapter has a Colab badge and a
setup cell that point at the repository ``pyproject.toml`` names, and a model switch. What the notebooks take from
``dynvfx`` exists.
"""

from __future__ import annotations

import ast
import importlib
import importlib.util
import json
import re
import tomllib
from pathlib import Path

import jupytext
import nbformat
import pytest

from dynvfx.paths import REPO_ROOT

NOTEBOOKS = REPO_ROOT / "notebooks"
CHAPTERS = ("00_overview", "01_ddim_inversion", "02_attention_maps", "03_vlm_planning", "04_anchor_masking",
            "05_residual_refinement")
MAX_FUNCTION_LINES = 15
#: Where a helper that outgrows a cell goes: the library is organised by the method's stages.
HELPER_HOMES = {
    "notebook setup (logging, model choice, loading, the source video)": "dynvfx/notebook.py",
    "anything that draws (static figures, overlays, videos)": "dynvfx/figures.py",
    "interactive sliders": "dynvfx/widgets.py",
    "measurements inside the model (attention, keys, inversion views)": "dynvfx/probes.py",
    "a step of the method": "its stage's module (sampling, inversion, attention, anchors, masks, refinement, "
                            "edit, planning/, segmentation/)",
    "benchmark logic": "dynvfx/lab/ (edit_bench, quality_bench, words_bench, stats, reports)",
}
BADGE_IMAGE = "https://colab.research.google.com/assets/colab-badge.svg"
with open(REPO_ROOT / "pyproject.toml", "rb") as _f:
    #: The public repository: pyproject.toml's [project.urls], the one place that names it.
    REPOSITORY = tomllib.load(_f)["project"]["urls"]["Repository"].rstrip("/")
BADGE_LINK = ("https://colab.research.google.com/github/" + REPOSITORY.removeprefix("https://github.com/")
              + "/blob/main/notebooks/{}.ipynb")
RUN_TIMES = json.loads((NOTEBOOKS / "run_times.json").read_text())
DURATION = re.compile(r"\d+(\.\d+)?\s*(s|sec|seconds?|min|minutes?|h|hours?)\b")


@pytest.fixture(scope="module")
def build():
    """``notebooks/build.py`` as a module (it writes the chapters' badges, install cells and run times)."""
    spec = importlib.util.spec_from_file_location("notebooks_build", NOTEBOOKS / "build.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _cells(path: Path) -> list[tuple[str, str]]:
    """``(cell_type, source)`` of every cell, as jupytext reads the file (either format)."""
    return [(c.cell_type, c.source.rstrip()) for c in jupytext.read(path).cells]


def _code(name: str) -> list[str]:
    return [src for kind, src in _cells(NOTEBOOKS / f"{name}.py") if kind == "code"]


def _parse(source: str) -> ast.Module:
    """A code cell as Python; IPython magics and shell escapes become ``pass``."""
    lines = [("pass" if line.lstrip().startswith(("%", "!")) else line) for line in source.splitlines()]
    return ast.parse("\n".join(lines))


def test_every_chapter_is_paired_and_nothing_else_is_there():
    ipynbs = sorted(p.stem for p in NOTEBOOKS.glob("*.ipynb"))
    sources = sorted(p.stem for p in NOTEBOOKS.glob("[0-9][0-9]_*.py"))
    assert ipynbs == sorted(CHAPTERS), f"notebooks/*.ipynb should be exactly the six chapters, found {ipynbs}"
    assert sources == sorted(CHAPTERS), f"each chapter needs its jupytext source, found {sources}"


@pytest.mark.parametrize("name", CHAPTERS)
def test_ipynb_is_in_sync_with_its_py_source(name):
    py, ipynb = _cells(NOTEBOOKS / f"{name}.py"), _cells(NOTEBOOKS / f"{name}.ipynb")
    assert len(py) == len(ipynb), f"{name}: {len(py)} cells in the .py, {len(ipynb)} in the .ipynb; re-run " \
        "`python notebooks/build.py`"
    for i, (a, b) in enumerate(zip(py, ipynb)):
        assert a == b, f"{name}: cell {i} differs between .py and .ipynb; re-run `python notebooks/build.py`"


@pytest.mark.parametrize("name", CHAPTERS)
def test_pairing_metadata(name):
    meta = jupytext.read(NOTEBOOKS / f"{name}.py").metadata
    assert meta["jupytext"]["formats"] == "ipynb,py:percent"
    assert meta["kernelspec"]["name"] == "python3"


@pytest.mark.parametrize("name", CHAPTERS)
def test_ipynb_is_executed_without_errors(name):
    nb = nbformat.read(NOTEBOOKS / f"{name}.ipynb", as_version=4)
    code = [c for c in nb.cells if c.cell_type == "code"]
    assert all(c.execution_count is not None for c in code), f"{name} has cells that were never run"
    errors = [o for c in code for o in c.outputs if o.output_type == "error"]
    assert not errors, f"{name}: stored outputs hold an error: {errors[0].get('ename')}: {errors[0].get('evalue')}"


@pytest.mark.parametrize("name", CHAPTERS)
def test_viewers_store_their_first_picture(name):
    """Before a kernel runs, a viewer's cell shows its stored first picture: each stored widget view has an
    ``image/png`` beside it, and no widget state is stored (with it, nbconvert's HTML would show the widget, whose
    JavaScript comes from a CDN, instead of the picture)."""
    nb = nbformat.read(NOTEBOOKS / f"{name}.ipynb", as_version=4)
    views = [o for c in nb.cells if c.cell_type == "code" for o in c.outputs
             if "application/vnd.jupyter.widget-view+json" in o.get("data", {})]
    assert all("image/png" in o.data for o in views), f"{name}: a viewer's stored output has no first picture"
    assert "widgets" not in nb.metadata, f"{name} stores widget state; rebuild it with `python notebooks/build.py`"


@pytest.mark.parametrize("name", CHAPTERS)
def test_checked_cells_print_plain_text_only(name):
    """Cells whose output nbval compares print text to stdout only (no figures, no warnings, no reprs)."""
    nb = nbformat.read(NOTEBOOKS / f"{name}.ipynb", as_version=4)
    checked = [c for c in nb.cells if c.cell_type == "code" and "NBVAL_CHECK_OUTPUT" in c.source]
    assert checked, f"{name} has no NBVAL_CHECK_OUTPUT cell"
    for cell in checked:
        kinds = {(o.output_type, o.get("name")) for o in cell.outputs}
        assert kinds == {("stream", "stdout")}, f"{name}: a checked cell shows {kinds}:\n{cell.source[:200]}"


EXERCISE = re.compile(r"^\*\*(\d+) ·", re.M)  # an exercise's heading in a markdown cell: **1 · ...**


@pytest.mark.parametrize("name", CHAPTERS)
def test_every_exercise_has_a_cell_for_the_student_and_then_its_solution(name, build):
    """Each exercise (a markdown ``**N ·`` heading) is followed by a code cell for the student, a scaffold of
    ``...`` with a ``TODO``, and then its solution (tagged ``solution``), a Colab form (``#@title`` first, a
    ``#@markdown`` line) that is collapsed in Jupyter too; the scaffold runs and does not hold the solution."""
    cells = jupytext.read(NOTEBOOKS / f"{name}.py").cells
    exercises = [i for i, c in enumerate(cells) if c.cell_type == "markdown" and EXERCISE.search(c.source)]
    solutions = [i for i, c in enumerate(cells) if build.is_solution(c)]
    assert exercises, f"{name} has no exercises"
    assert [i + 2 for i in exercises] == solutions, \
        f"{name}: each exercise should be followed by the student's cell and then its solution"
    for i in exercises:
        student, solution = cells[i + 1], cells[i + 2]
        assert student.cell_type == "code" and not build.is_solution(student), f"{name}: no cell for the student"
        assert "TODO" in student.source and "..." in student.source, \
            f"{name}: the student's cell should be a TODO scaffold with ... for what to fill in"
        compile(student.source, f"{name} student cell", "exec")
        assert not set(_statements(solution.source)) <= set(_statements(student.source)), \
            f"{name}: the student's cell gives the solution away"
        assert solution.source.startswith(build.COLAB_FORM) and "\n#@markdown " in solution.source, \
            f"{name}: a solution should be a Colab form cell ({build.COLAB_FORM} first, then #@markdown)"
        assert solution.metadata.get("jupyter", {}).get("source_hidden"), f"{name}: a solution should be collapsed"


def _statements(source: str) -> list[str]:
    """The statements of a cell, normalised (comments and formatting gone)."""
    return [ast.unparse(node) for node in _parse(source).body]


@pytest.mark.parametrize("name", CHAPTERS)
def test_stored_solutions_show_no_answer(name, build):
    """The executed chapter stores no output of a solution cell (it ran: its execution count is there), and each
    solution is collapsed in Jupyter and Colab."""
    nb = nbformat.read(NOTEBOOKS / f"{name}.ipynb", as_version=4)
    solutions = [c for c in nb.cells if build.is_solution(c)]
    assert solutions, f"{name}: no solution cells in the .ipynb"
    for cell in solutions:
        assert cell.outputs == [], f"{name}: a solution's stored output shows its answer; run " \
            f"`python notebooks/build.py --links`:\n{cell.source[:120]}"
        assert cell.metadata.get("cellView") == "form" and cell.metadata["jupyter"]["source_hidden"], \
            f"{name}: a solution should be collapsed in Colab (cellView: form) and Jupyter (source_hidden)"


def test_hide_solutions_empties_and_collapses_only_the_solutions(build):
    nb = nbformat.v4.new_notebook(cells=[
        nbformat.v4.new_code_cell("print(1)", outputs=[nbformat.v4.new_output("stream", text="1\n")]),
        nbformat.v4.new_code_cell("#@title S\nprint(2)", metadata={"tags": ["solution"]},
                                  outputs=[nbformat.v4.new_output("stream", text="2\n")], execution_count=2)])
    assert build.hide_solutions(nb) and not build.hide_solutions(nb)  # changed once, then nothing to do
    kept, solution = nb.cells
    assert kept.outputs and "cellView" not in kept.metadata
    assert solution.outputs == [] and solution.execution_count == 2
    assert solution.metadata["cellView"] == "form" and solution.metadata["jupyter"]["source_hidden"]


@pytest.mark.parametrize("name", CHAPTERS)
def test_no_long_functions_in_cells(name):
    for source in _code(name):
        for node in ast.walk(_parse(source)):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                lines = node.body[-1].end_lineno - node.body[0].lineno + 1
                homes = "; ".join(f"{what} -> {where}" for what, where in HELPER_HOMES.items())
                assert lines <= MAX_FUNCTION_LINES, \
                    f"{name}: {node.name}() has a {lines}-line body; move it to the library module of its stage " \
                    f"({homes})"


def _dynvfx_uses(tree: ast.Module) -> list[tuple[str, str]]:
    """``(module, attribute)`` for every ``from dynvfx.x import y`` and every ``m.y`` on a name bound by
    ``from dynvfx[.x] import m`` or ``import dynvfx.x as m`` anywhere in ``tree`` (a notebook's cells)."""
    bound, uses = {}, []
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and (node.module or "").split(".")[0] == "dynvfx":
            for alias in node.names:
                uses.append((node.module, alias.name))
                bound[alias.asname or alias.name] = f"{node.module}.{alias.name}"
        elif isinstance(node, ast.Import):
            for alias in node.names:
                if alias.name.startswith("dynvfx.") and alias.asname:
                    bound[alias.asname] = alias.name
    for node in ast.walk(tree):
        if isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name) and node.value.id in bound:
            uses.append((bound[node.value.id], node.attr))
    return uses


def _resolve(dotted: str):
    """The module, or the attribute of a module (of a class ...), that ``dotted`` names."""
    try:
        return importlib.import_module(dotted)
    except ImportError:
        parent, _, attr = dotted.rpartition(".")
        if not parent:
            raise
        return getattr(_resolve(parent), attr)


@pytest.mark.parametrize("name", CHAPTERS)
def test_what_the_notebooks_take_from_dynvfx_exists(name):
    """Every ``from dynvfx... import y`` and every ``module.y`` on an imported dynvfx module names something
    that exists (``y`` a submodule or an attribute), so a helper that moved cannot leave a stale call behind."""
    cells = [_parse(src) for src in _code(name)]
    uses = _dynvfx_uses(ast.Module(body=[stmt for cell in cells for stmt in cell.body], type_ignores=[]))
    assert uses, f"{name} takes nothing from dynvfx"
    missing = []
    for module, attr in uses:
        try:
            _resolve(f"{module}.{attr}")
        except (ImportError, AttributeError):
            missing.append(f"{module}.{attr}")
    assert not missing, f"{name} uses what dynvfx does not have: {sorted(set(missing))}"


@pytest.mark.parametrize("name", CHAPTERS)
def test_first_cell_says_what_and_how_long(name, build):
    kind, text = _cells(NOTEBOOKS / f"{name}.py")[0]
    assert kind == "markdown", f"{name}: the first cell should be markdown"
    assert "learn" in text.lower(), f"{name}: the first cell should say what you will learn"
    assert "GPU" in text, f"{name}: the first cell should say what the chapter takes on a GPU"
    assert build.run_time_line(RUN_TIMES[name]) in text, \
        f"{name}: the first cell should state the CPU time of run_times.json; run `python notebooks/build.py --links`"
    rest = [s for s in re.split(r"(?<=[.;])\s+", build.RUN_TIME.sub("", text)) if "CPU" in s and DURATION.search(s)]
    assert not rest, f"{name}: a CPU time besides the measured one: {rest}"


def test_run_times_say_where_they_were_measured():
    assert sorted(RUN_TIMES) == sorted(CHAPTERS)
    for name, entry in RUN_TIMES.items():
        assert entry["seconds"] > 0 and entry["threads"] >= 1 and entry["cpu"] and entry["date"], name


def test_chapter_tables_follow_run_times_and_the_repository(build):
    from docs_tables import read_block  # build.py puts scripts/ on the path

    assert read_block((REPO_ROOT / "README.md").read_text(), "chapters") == build.chapters_table(REPOSITORY, RUN_TIMES)
    assert read_block((NOTEBOOKS / "README.md").read_text(), "run_times") == build.run_times_table(RUN_TIMES)


def test_a_fork_url_reaches_every_link(build):
    """What ``build.py --links`` does to a chapter after pyproject.toml names another repository."""
    text = (NOTEBOOKS / "00_overview.py").read_text()
    forked = build.front_matter(text, "00_overview", "https://github.com/someone/course", RUN_TIMES)
    assert REPOSITORY not in forked and REPOSITORY.removeprefix("https://github.com/") not in forked
    assert "colab.research.google.com/github/someone/course/blob/main/notebooks/00_overview.ipynb" in forked
    assert "git clone -q --depth 1 https://github.com/someone/course dynvfx-course" in forked
    with pytest.raises(ValueError, match="GitHub"):
        build.colab_url("00_overview", "https://gitlab.com/someone/course")


@pytest.mark.parametrize("name", CHAPTERS)
def test_colab_badge(name):
    text = _cells(NOTEBOOKS / f"{name}.py")[0][1]
    assert BADGE_IMAGE in text and BADGE_LINK.format(name) in text, f"{name}: no Colab badge linking to itself"


def _run_setup_cell(src: str, installed: bool, monkeypatch) -> list[str]:
    """Execute a setup cell with ``subprocess.run`` recorded (not run) and dynvfx (not) importable."""
    import importlib.util
    import subprocess

    calls: list[str] = []
    monkeypatch.setattr(subprocess, "run", lambda cmd, *a, **k: calls.append(cmd if isinstance(cmd, str)
                                                                              else " ".join(map(str, cmd))))
    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec",
                        lambda name, *a: (real(name, *a) if installed or name != "dynvfx" else None))
    monkeypatch.setattr("sys.path", list(__import__("sys").path))
    exec(compile(src, "<setup cell>", "exec"), {})
    return calls


@pytest.mark.parametrize("name", CHAPTERS)
def test_setup_cell_installs_only_when_needed(name, monkeypatch):
    code = _code(name)
    setup = [src for src in code if "pip install" in src and "dynvfx" in src]
    assert len(setup) == 1, f"{name}: expected one setup cell that installs dynvfx"
    assert f"git clone -q --depth 1 {REPOSITORY} dynvfx-course" in setup[0], \
        f"{name}: the setup cell should clone pyproject.toml's Repository; run `python notebooks/build.py --links`"
    assert _run_setup_cell(setup[0], installed=True, monkeypatch=monkeypatch) == [], \
        f"{name}: the setup cell does something although dynvfx is installed"
    calls = _run_setup_cell(setup[0], installed=False, monkeypatch=monkeypatch)
    assert calls and "pip install" in calls[-1] and "git clone" in " ".join(calls), \
        f"{name}: without dynvfx the setup cell should clone and install the course"
    everything = "\n".join(code)
    assert "download.pytorch.org" not in everything and not re.search(r"pip\S*\s+install[^\n]*\btorch\b",
                                                                        everything), f"{name} installs torch"


@pytest.mark.parametrize("name", CHAPTERS)
def test_model_switch_defaults_to_the_toy_model(name):
    assert any(re.search(r'^MODEL = "toy"', src, re.M) for src in _code(name)), f"{name}: no MODEL = \"toy\" switch"


# ---------------------------------------------------------------- the helpers the notebooks rely on (fast)
@pytest.fixture(scope="module")
def small_pipe():
    """A random-weight CogVideoX pipeline of 9 frames at 32x32 (quick to sample and decode)."""
    from conftest import tiny_pipeline

    return tiny_pipeline(frames=9, height=32, width=32)


def test_word_token_ids_and_token_grid(small_pipe):
    from dynvfx import probes
    from dynvfx.pipeline import video_spec

    caption = "a red ball moves right and a red square moves down"
    tokens = probes.tokens_of(small_pipe, caption)
    ids = probes.word_token_ids(small_pipe, caption, "red")
    assert len(ids) == 2 and all(tokens[i] == "\u2581red" for i in ids)
    assert probes.word_token_ids(small_pipe, caption, "yellow") == []
    spec = video_spec(small_pipe)
    coords = probes.token_coords(spec)
    assert coords.shape == (spec.token_grid[0] * spec.token_grid[1] * spec.token_grid[2], 3)
    assert coords[probes.token_index(spec, 2, 1, 0)].tolist() == [2, 1, 0]


def test_locality_profile_sees_a_purely_local_attention(small_pipe):
    import torch

    from dynvfx import probes
    from dynvfx.pipeline import video_spec

    spec = video_spec(small_pipe)
    n, text_len = probes.token_coords(spec).shape[0], 3
    k = torch.zeros(2, text_len + n, n)
    k[:, text_len:] = torch.eye(n) * 30  # each video key matches only the query at its own position
    profile = probes.locality_profile(k, k, text_len, spec)
    assert profile[0] > 0.9 * n and (profile[1:] < 0.1).all()


def test_recorded_generation_and_captured_keys(small_pipe):
    import torch
    from diffusers.models.attention_processor import CogVideoXAttnProcessor2_0

    from dynvfx import probes
    from dynvfx.pipeline import encode_text, video_spec
    from dynvfx.sampling import initial_noise

    spec = video_spec(small_pipe)
    n = spec.token_grid[0] * spec.token_grid[1] * spec.token_grid[2]
    frames, rec = probes.generate_with_recorder(small_pipe, "a red ball", [1, 2], steps=2, record_layers=[1])
    assert frames.shape == (spec.num_frames, 3, spec.height, spec.width)
    assert set(rec.text_to_video) == {(0, 1), (1, 1)} and rec.text_to_video[0, 1].shape[1:] == (2, n)
    assert probes.word_attention(rec, spec).shape == spec.token_grid
    x = initial_noise(small_pipe).expand(2, -1, -1, -1, -1)
    qk = probes.capture_qk(small_pipe, x, encode_text(small_pipe, [""]), 500, layers=[0])
    assert list(qk) == [0] and qk[0][1].shape[0] == 2 and qk[0][1].shape[2] == spec.max_text_tokens + n
    assert all(type(p) is CogVideoXAttnProcessor2_0 for p in small_pipe.transformer.attn_processors.values())
    change = probes.key_change(qk, qk, spec.max_text_tokens, spec)
    assert torch.equal(change[0], torch.zeros(spec.token_grid))


def test_scripted_chat_and_transcript():
    from PIL import Image

    from dynvfx.planning.demo import ScriptedChat, transcript

    chat = ScriptedChat(["first", "second"])
    msgs = [{"role": "user", "content": [{"type": "image", "image": Image.new("RGB", (4, 4))},
                                         {"type": "text", "text": "hello"}]}]
    assert chat(msgs, None) == "first" and chat(msgs + msgs, None) == "second"
    assert [len(s) for s in chat.sent] == [1, 2]
    assert transcript(msgs) == "[user]\n[image]\nhello"


def test_overlays_and_viewers_build_and_draw(monkeypatch):
    import ipywidgets
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import torch

    from dynvfx import figures, widgets
    from dynvfx.attention import AttentionRecorder
    from dynvfx.pipeline import VideoSpec

    spec = VideoSpec(num_frames=9, height=16, width=16, temporal_compression=4, spatial_compression=4,
                     patch_size=2, max_text_tokens=4)
    frames, tokens = torch.rand(9, 3, 16, 16), torch.zeros(3, 2, 2, dtype=torch.bool)
    tokens[:, 0, 0] = True
    assert figures.anchor_overlay(frames, tokens, tokens, spec).shape == frames.shape
    assert figures.heat_rgb(torch.rand(9, 1, 16, 16)).shape == frames.shape
    assert figures.video_grid({"a": frames, "b": frames}).axes
    rec = AttentionRecorder([1])
    rec.text_to_video = {(s, layer): torch.rand(2, 1, 12) for s in range(2) for layer in range(2)}
    view = {"a": frames, "b": frames}
    viewers = lambda: (widgets.frame_viewer(view), widgets.timestep_viewer({"a": {999: frames, 499: frames}}),  # noqa
                       widgets.attention_viewer(frames, rec, spec), widgets.anchor_viewer(frames, tokens, spec),
                       widgets.iteration_viewer([view, view], (0.9, 0.5)))
    assert all(isinstance(v, ipywidgets.VBox) for v in viewers())
    drawn = []  # now draw each viewer once with its controls' initial values, outside any widget
    monkeypatch.setattr(widgets, "viewer", lambda draw, **c: drawn.append(draw(**{k: w.value for k, w in c.items()})))
    viewers()
    assert len(drawn) == 5 and len(plt.get_fignums()) >= 5
    plt.close("all")
