"""Write the docs' measured tables from the benchmarks' saved output: ``python scripts/docs_tables.py [--check]``.

A generated table sits in a Markdown page between two comments,

    <!-- BEGIN generated: NAME -->
    ...
    <!-- END generated: NAME -->

and is rewritten from its source: the tables of :data:`TABLES` from the JSON files in ``benchmarks/results/``
(each written by a benchmark's ``--save``), the chapter tables from ``notebooks/run_times.json`` (by
``notebooks/build.py``). ``--check`` changes nothing and exits 1 when a page differs from what its sources give.
"""

from __future__ import annotations

import json
import re
import sys
from pathlib import Path

from dynvfx.paths import DOCS_DIR, REPO_ROOT

RESULTS = REPO_ROOT / "benchmarks" / "results"
BLOCK = "<!-- BEGIN generated: {name} -->\n{body}\n<!-- END generated: {name} -->"
#: The model-quality columns: (saved run, column heading).
QUALITY_COLUMNS = [
    ("toy_model_quality", "held-out captions, guidance 2.5 (the toy preset)"),
    ("toy_model_quality_guidance6", "held-out, guidance 6 (the paper's)"),
    ("toy_model_quality_seen", "seen captions, guidance 2.5"),
    ("toy_model_quality_noise", "control: colour noise"),
    ("toy_model_quality_untrained", "control: untrained transformer"),
]


def _pattern(name: str) -> re.Pattern:
    return re.compile(re.escape(f"<!-- BEGIN generated: {name} -->") + r"\n(.*?)\n?"
                      + re.escape(f"<!-- END generated: {name} -->"), re.S)


def read_block(text: str, name: str) -> str | None:
    """The body of block ``name`` in ``text``, or None when the page has no such block."""
    match = _pattern(name).search(text)
    return None if match is None else match[1]


def block_names(text: str) -> list[str]:
    """The names of the generated blocks in ``text``."""
    return re.findall(r"<!-- BEGIN generated: (\S+) -->", text)


def write_block(path: Path, name: str, body: str) -> bool:
    """Put ``body`` into block ``name`` of the page ``path`` (which must hold the block); True if it changed."""
    text = path.read_text()
    if read_block(text, name) is None:
        raise ValueError(f"{path} has no block {name!r}: add the BEGIN / END comments where the table goes")
    new = _pattern(name).sub(lambda m: BLOCK.format(name=name, body=body), text)
    if new != text:
        path.write_text(new)
    return new != text


def _settings(path: Path) -> dict:
    return json.loads(path.read_text()).get("settings", {})


def edit_table(results: Path = RESULTS) -> str:
    """The edit benchmark's report (``toy_edit.py``) of ``toy_edit.json``."""
    from dynvfx.lab.edit_bench import EditRun  # the benchmarks import torch; the block tools do not
    from dynvfx.lab.reports import edit_report

    run = EditRun.load(results / "toy_edit.json")
    return (f"`python benchmarks/toy_edit.py --pairs {len(run.ceiling)} --variants {','.join(run.results)} "
            f"--threads {run.threads} --save benchmarks/results/toy_edit.json`\n\n" + edit_report(run))


def quality_table(results: Path = RESULTS) -> str:
    """The model-quality checks (``toy_model_quality.py``) of every saved run of :data:`QUALITY_COLUMNS`, one
    column each, with the renderer's own videos (the judge's ceiling) and the bars."""
    from dynvfx.lab.quality_bench import QUALITY_ROWS, QualityRun
    from dynvfx.lab.stats import cell

    runs = [(QualityRun.load(results / f"{name}.json"), heading) for name, heading in QUALITY_COLUMNS]
    lines = ["| check | " + " | ".join(h for _, h in runs) + " | renderer (ceiling) | bar |",
             "|---|" + "---|" * (len(runs) + 2)]
    for label, kinds, key, bar in QUALITY_ROWS:
        shares = [cell([r for k in kinds for r in run.generated[k]], key)[1] for run, _ in runs]
        ceiling = cell([r for k in kinds for r in runs[0][0].rendered[k]], key)[1]
        lines.append(f"| {label} | " + " | ".join(shares) + f" | {ceiling} | "
                     + ("" if bar is None else f"≥ {bar:.0%}") + " |")
    first = runs[0][0].settings
    n_single, n_pair = (len(runs[0][0].generated[k]) for k in ("single", "pair"))
    return "\n".join(lines) + (
        f"\n\n{n_single} single-ball and {n_pair} two-ball captions per column, {first['steps']} steps, "
        f"{first['threads']} thread; `python benchmarks/toy_model_quality.py [--guidance 6] [--captions seen] "
        f"[--control noise|untrained] --save benchmarks/results/NAME.json`")


def sensitivity(results: Path = RESULTS) -> str:
    """The word-sensitivity table (``toy_word_sensitivity.py``) of ``toy_word_sensitivity.json``."""
    from dynvfx.lab.reports import sensitivity_table

    saved = json.loads((results / "toy_word_sensitivity.json").read_text())
    return (sensitivity_table(saved["mean"]) + f"\n\n{saved['settings']['scenes']} scenes per column; "
            "`python benchmarks/toy_word_sensitivity.py --save benchmarks/results/toy_word_sensitivity.json`")


def training_chain(record: Path | None = None) -> str:
    """The shipped toy model's training, stage by stage, from the record beside its weights (``training.json``:
    each fine-tune holds the record of the pipeline it started from under ``init_from``)."""
    from dynvfx.paths import TOY_MODEL_DIR

    stages, entry = [], json.loads((record or TOY_MODEL_DIR / "training.json").read_text())
    while entry:
        stages.append(entry)
        entry = entry.get("init_from")
    flags = (("two_object_share", "two-ball share"), ("high_noise_share", "high-noise share"),
             ("rebind_text_steps", "text rebinding steps"), ("binding_weight", "binding weight"),
             ("text_binding_weight", "text-binding weight"))
    lines = ["| stage | device | training videos | steps run (of scheduled) × batch | peak lr | seed | other settings "
             "in the record | minutes |", "|---|---|---|---|---|---|---|---|"]
    for k, stage in enumerate(reversed(stages), start=1):
        s, sec = stage["settings"], stage.get("seconds", {})
        other = ", ".join(f"{label} {s[key]:g}" for key, label in flags if s.get(key))
        minutes = " + ".join(f"{sec[key] / 60:.0f} {label}" for key, label in
                             (("vae", "autoencoder"), ("latents", "encoding"), ("dit", "training")) if key in sec)
        device = stage.get("device") or "cpu"
        device = f"CPU, {s['threads']} thread{'s' * (s['threads'] > 1)}" if device == "cpu" else device
        lines.append(f"| {k} | {device} | {s['videos']} | "
                     f"{stage['steps']} ({s['steps']}) × {s['batch']} | {s['lr']:g} | {s['seed']} | {other} | "
                     f"{minutes} |")
    return "\n".join(lines)


#: The box gate's saved runs (``toy_box_quality.py --save``), in training order, and what each one was.
BOX_GATE = [
    ("shipped", "the shipped model (never saw the box)"),
    ("plain_3000", "fine-tuned on box scenes, 3000 steps"),
    ("contrast_4250", "+ the relation contrast from step 3250, 4250 steps"),
    ("contrast_5500", "+ the relation contrast, 5500 steps"),
    ("final", "+ from step 6750 the learning rate decays to a 10000-step schedule's end, stopped at 9000"),
]


def box_gate_table(results: Path = RESULTS / "toy_box_gate") -> str:
    """The box gate: each checkpoint's judge checks on the held-out box captions, and how much of the box a
    crossing ball's colour covers (behind: ~0 on the renderer's videos; in front: about half)."""
    def pct(rows, key):
        return f"{sum(r[key] for r in rows) / len(rows):.0%}"

    def mean(rows, key, relation):
        part = [r[key] for r in rows if relation in r["caption"]]
        return f"{sum(part) / len(part):.0%}"

    lines = ["| model | success | box intact | relation right | moves as asked | seen on both sides | "
             "ball on the box: behind / in front | colour noise: success |", "|---|---|---|---|---|---|---|---|"]
    for name, label in BOX_GATE:
        path = results / f"{name}.json"
        if not path.exists():
            continue
        saved = json.loads(path.read_text())
        rows, noise = saved["held_out"]["generated"], saved["held_out"]["noise"]
        lines.append(f"| {label} | {pct(rows, 'success')} | {pct(rows, 'box_intact')} | {pct(rows, 'relation')} | "
                     f"{pct(rows, 'moves')} | {pct(rows, 'sides')} | {mean(rows, 'ball_in_box', 'behind')} / "
                     f"{mean(rows, 'ball_in_box', 'front of')} | {pct(noise, 'success')} |")
    n = len(rows)
    parts = []
    for relation, words in (("behind", "behind"), ("in front", "front of")):
        part = [r for r in rows if words in r["caption"]]
        only_box = sum(not r["box_intact"] and not r["extra"] and all(r[k] for k in ("moves", "sides", "relation"))
                       for r in part)
        crossing = sum(not (r["moves"] and r["sides"]) for r in part)
        parts.append(f"{relation}: {sum(r['success'] for r in part)} of {len(part)} right, {crossing} not seen moving "
                     f"across, {only_box} wrong only in the box's pixels")
    return "\n".join(lines) + (f"\n\n{n} videos per row: the 5 held-out crossing combinations x behind / in front x "
                               "5 seeds, 50 steps; `python benchmarks/toy_box_quality.py --model DIR --per-caption 5 "
                               "--save benchmarks/results/toy_box_gate/NAME.json`. The last row by relation: "
                               + "; ".join(parts) + ".")


def box_edit_table(results: Path = RESULTS) -> str:
    """The box edit benchmark's report (``toy_box_edit.py``) of ``toy_box_edit.json``."""
    from dynvfx.lab.edit_bench import EditRun
    from dynvfx.lab.reports import box_edit_report

    run = EditRun.load(results / "toy_box_edit.json")
    return (f"`python benchmarks/toy_box_edit.py --model DIR --pairs {len(run.ceiling)} --variants "
            f"{','.join(run.results)} --threads {run.threads} --save benchmarks/results/toy_box_edit.json` (DIR: the "
            f"box fine-tune, [toy-model.md](toy-model.md#teaching-it-the-box-not-finished))\n\n" + box_edit_report(run))


def box_attention_table(results: Path = RESULTS) -> str:
    """Where the new ball looks among the anchors (``toy_box_edit.py --attention``), ``toy_box_attention.json``."""
    from dynvfx.lab.reports import box_attention_report

    saved = json.loads((results / "toy_box_attention.json").read_text())
    pairs = len({r["pair"] for r in saved["rows"]})
    return (f"`python benchmarks/toy_box_edit.py --model DIR --attention {pairs} --save "
            f"benchmarks/results/toy_box_attention.json`\n\n" + box_attention_report(saved["rows"], saved["new"]))


def box_bars_table(results: Path = RESULTS / "toy_box_gate") -> str:
    """The box fine-tune against the shipped model on the ball-only bars: the quality checks
    (``toy_model_quality.py``) and the edit benchmark's success with the authors' defaults (``toy_edit.py``)."""
    from dynvfx.lab.edit_bench import EditRun
    from dynvfx.lab.quality_bench import QUALITY_ROWS, QualityRun
    from dynvfx.lab.stats import cell

    runs = {"the shipped model": (QualityRun.load(RESULTS / "toy_model_quality.json"),
                                  EditRun.load(RESULTS / "toy_edit.json")),
            "the box fine-tune": (QualityRun.load(results / "final_quality.json"),
                                  EditRun.load(results / "final_edit.json"))}
    lines = ["| check | " + " | ".join(runs) + " | bar |", "|---|---|---|---|"]
    for label, kinds, key, bar in QUALITY_ROWS:
        if bar is not None:
            lines.append(f"| {label} | " + " | ".join(cell([r for k in kinds for r in q.generated[k]], key)[1]
                                                      for q, _ in runs.values()) + f" | ≥ {bar:.0%} |")
    n = min(len(e.results["authors"]) for _, e in runs.values())
    lines.append(f"| edit success, the authors' defaults, the edit benchmark's first {n} pairs | " + " | ".join(
        cell(e.results["authors"][:n], "success")[1] for _, e in runs.values())
        + " | the shipped model's, within its interval |")
    return "\n".join(lines) + ("\n\n`python benchmarks/toy_model_quality.py --model DIR --save "
                               "benchmarks/results/toy_box_gate/final_quality.json`; `python benchmarks/toy_edit.py "
                               "--model DIR --variants authors --save benchmarks/results/toy_box_gate/final_edit.json`")


def threads_table(results: Path = RESULTS) -> str:
    """The demo edit's seconds under each thread setting, quiet and beside a busy core (``threads.py``)."""
    saved = json.loads((results / "threads.json").read_text())
    sec, machine = saved["seconds"], saved["machine"]
    labels = {"all cores": f"torch's default: {machine['cores']} threads", "passive":
              f"{machine['cores']} threads, `OMP_WAIT_POLICY=PASSIVE`", "one thread": "`--threads 1`",
              "dynvfx's choice": "dynvfx's default: the cores other processes leave free"}
    lines = ["| torch threads | quiet | one core busy |", "|---|---|---|"]
    lines += [f"| {label} | {sec[f'quiet, {k}']:.0f} s | {sec[f'one core busy, {k}']:.0f} s |"
              for k, label in labels.items()]
    return "\n".join(lines) + (f"\n\n`make demo`'s edit, one run each, on {machine['cores']} cores "
                               f"({machine['processor']}); `python benchmarks/threads.py --save "
                               "benchmarks/results/threads.json`")


def threads_readme(results: Path = RESULTS) -> str:
    """The README's speed line: the demo edit on the benchmark's machine, quiet and beside a busy core."""
    saved = json.loads((results / "threads.json").read_text())
    sec, machine = saved["seconds"], saved["machine"]
    quiet, busy = sec["quiet, dynvfx's choice"], sec["one core busy, dynvfx's choice"]
    return (f"On {machine['cores']} CPU cores ({machine['processor']}) the demo's edit takes "
            f"{quiet:.0f} s with torch's {machine['cores']} threads; with another process "
            f"keeping one core busy, {busy:.0f} s, because dynvfx then runs "
            f"torch on the free core only (all {machine['cores']} threads: "
            f"{sec['one core busy, all cores']:.0f} s; [docs/benchmarks.md](docs/benchmarks.md)).")


#: The GPUs of the tables: (``dynvfx.cost.GPUS`` key, how the row names it).
GPU_ROWS = (("t4", "T4 16 GB (free Colab)"), ("l4", "L4 / A10 24 GB"), ("a100", "A100 40 GB"), ("h100", "H100 80 GB"))
MODELS = (("5b", "THUDM/CogVideoX-5b", "CogVideoX-5B (bf16)"), ("2b", "THUDM/CogVideoX-2b", "CogVideoX-2B (fp16)"))


def gpu_table() -> str:
    """Which GPU runs which model and preset: ``dynvfx.cost``'s estimate of one edit (memory mode ``auto``, the
    fastest that fits) for the paper and classroom presets, CogVideoX-5B / 2B's known structures."""
    from dynvfx import cost

    lines = ["| GPU | " + " | ".join(label for *_, label in MODELS) + " |", "|---|---|---|"]
    for gpu, row in GPU_ROWS:
        cells = []
        for kind, model, _ in MODELS:
            paper, classroom = (cost.estimate(model, preset, gpu, shape=cost._known_shape(kind))
                                for preset in ("paper", "classroom"))
            cells.append(f"{paper.memory}: paper ≈ {paper.seconds / 60:.0f} min, classroom ≈ "
                         f"{classroom.seconds / 60:.0f} min")
        lines.append(f"| {row} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def memory_table() -> str:
    """``dynvfx.cost``'s estimated peak GPU memory of an edit in each memory mode, CogVideoX-5B / 2B."""
    from dynvfx import cost

    lines = ["| memory mode | " + " | ".join(label for *_, label in MODELS) + " |", "|---|---|---|"]
    for mode in ("full", "lean", "offload", "sequential"):
        lines.append(f"| {mode} | " + " | ".join(f"{cost.peak_gib(cost._known_shape(kind), mode):.1f} GiB"
                                                 for kind, *_ in MODELS) + " |")
    return "\n".join(lines)


#: ``name: (page, renderer)`` of every benchmark table in the docs.
TABLES = {
    "toy_edit": (DOCS_DIR / "benchmarks.md", edit_table),
    "toy_model_quality": (DOCS_DIR / "toy-model.md", quality_table),
    "toy_word_sensitivity": (DOCS_DIR / "toy-model.md", sensitivity),
    "training_chain": (DOCS_DIR / "toy-model.md", training_chain),
    "gpu_fit": (DOCS_DIR / "gpu.md", gpu_table),
    "gpu_fit_readme": (REPO_ROOT / "README.md", gpu_table),
    "gpu_memory": (DOCS_DIR / "gpu.md", memory_table),
    "threads": (DOCS_DIR / "benchmarks.md", threads_table),
    "toy_box_gate": (DOCS_DIR / "toy-model.md", box_gate_table),
    "toy_box_bars": (DOCS_DIR / "toy-model.md", box_bars_table),
    "toy_box_edit": (DOCS_DIR / "benchmarks.md", box_edit_table),
    "toy_box_attention": (DOCS_DIR / "benchmarks.md", box_attention_table),
    "threads_readme": (REPO_ROOT / "README.md", threads_readme),
}


def main(argv: list[str]) -> int:
    check, stale = argv == ["--check"], []
    for name, (page, render) in TABLES.items():
        body = render()
        if check:
            if read_block(page.read_text(), name) != body:
                stale.append(f"{page.relative_to(REPO_ROOT)}: {name}")
        elif write_block(page, name, body):
            print(f"rewrote {name} in {page.relative_to(REPO_ROOT)}")
    if stale:
        print("out of date (run python scripts/docs_tables.py):\n  " + "\n  ".join(stale), file=sys.stderr)
    return 1 if stale else 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
