"""The toy benchmarks' logic; ``benchmarks/*.py`` are thin command-line wrappers around it.

- **Edit** (``benchmarks/toy_edit.py``): DynVFX on held-out pairs, the authors' defaults, each fidelity choice
  reverted and the paper's ablations. A pair's new object is a held-out (colour, motion, background) combination
  of ``world.HELD_OUT``; the source is a one-ball scene on that background (a trained combination, another
  colour); the instruction asks for the new ball. Scores per edit: :func:`evaluate`.
- **Model quality** (``benchmarks/toy_model_quality.py``): does the toy text-to-video model draw what held-out
  captions ask for, judged strictly (:func:`dynvfx.toy.analysis.judge`)?
- **Word sensitivity** (``benchmarks/toy_word_sensitivity.py``): how much does the toy transformer listen to each
  caption word? Swap one word (colour or motion), render the matching counterfactual scene, noise the original
  latent x_0 to several t and compare ``|| x0_pred(caption') - x0_pred(caption) || / || x_0(scene') - x_0(scene) ||``
  (1: the model draws the difference; 0: it ignores the word).

Shares come with a 95 % Wilson interval (:func:`wilson`), means with a 95 % bootstrap interval (:func:`bootstrap`).
"""

from __future__ import annotations

import concurrent.futures
import dataclasses
import json
import multiprocessing
import os
import tempfile
import threading
import time
import warnings
from pathlib import Path
from typing import Callable

import numpy as np
import torch

from dynvfx.config import PAPER_STRENGTHS, DynVFXConfig
from dynvfx.edit import edit_variant
from dynvfx.metrics import iou, psnr_outside, ssim_outside
from dynvfx.pipeline import decode_latents, encode_video, generate, load_pipeline
from dynvfx.planning import plan_edit
from dynvfx.sampling import add_noise, predicted_x0
from dynvfx.segmentation import get_segmenter
from dynvfx.toy import analysis, world
from dynvfx.toy.examples import scene_frames


# ------------------------------------------------------------------------------------------------ statistics
def wilson(hits: int, n: int, z: float = 1.96) -> tuple[float, float]:
    """95 % Wilson score interval of a proportion ``hits / n``."""
    if n == 0:
        return 0.0, 1.0
    p = hits / n
    centre = (p + z**2 / (2 * n)) / (1 + z**2 / n)
    half = z * np.sqrt(p * (1 - p) / n + z**2 / (4 * n**2)) / (1 + z**2 / n)
    return max(0.0, centre - half), min(1.0, centre + half)


def bootstrap(values: list[float], reps: int = 2000, seed: int = 0) -> tuple[float, float, float]:
    """Mean of the finite ``values`` and its 95 % bootstrap interval."""
    v = np.asarray([x for x in values if np.isfinite(x)], float)
    if len(v) == 0:
        return float("inf"), float("inf"), float("inf")
    means = np.random.default_rng(seed).choice(v, (reps, len(v))).mean(1)
    return float(v.mean()), float(np.quantile(means, 0.025)), float(np.quantile(means, 0.975))


def paired_difference(a: list[dict], b: list[dict], key: str = "success") -> tuple[float, float, float, int, int]:
    """``a`` minus ``b`` on the same pairs: the difference of the shares whose ``key`` holds, its 95 % bootstrap
    interval over pairs, and how many pairs only ``a`` / only ``b`` gets right (the discordant pairs)."""
    if len(a) != len(b):
        raise ValueError(f"paired_difference: {len(a)} against {len(b)} rows; both must score the same pairs")
    d = [float(x[key]) - float(y[key]) for x, y in zip(a, b)]
    mean, lo, hi = bootstrap(d)
    return mean, lo, hi, sum(x > 0 for x in d), sum(x < 0 for x in d)


def share(rows: list[dict], key: str) -> str:
    """Share of ``rows`` whose ``key`` is true, with its 95 % interval, as text ("40% [17%, 69%]")."""
    return cell(rows, key)[1]


def cell(results: list[dict], key: str) -> tuple[float, str]:
    """Share of ``results`` whose check ``key`` holds, and that share with its 95 % interval as text."""
    hits = sum(bool(r[key]) for r in results)
    lo, hi = wilson(hits, len(results))
    share = hits / max(len(results), 1)
    return share, f"{share:.0%} [{lo:.0%}, {hi:.0%}]"


# ------------------------------------------------------------------------------------------------ the edit
#: The five choices of the authors' released code (config fields), each with this project's earlier value.
REVERTS = {
    "revert_window": dict(injection_max_timestep=1.0, injection_min_timestep=0.0),
    "revert_branches": dict(anchor_branches="both"),
    "revert_draw": dict(anchor_draw="once"),
    "revert_source_text": dict(source_text="inversion_prompt"),
    "revert_mask": dict(residual_mask="maxpool"),
}
#: ``name: (description, config changes or an SDEdit strength)`` (see :func:`dynvfx.edit.edit_variant`).
VARIANTS = {
    "authors": ("the authors' defaults", {}),
    "revert_window": ("  source branch at every step", REVERTS["revert_window"]),
    "revert_branches": ("  both CFG branches extended", REVERTS["revert_branches"]),
    "revert_draw": ("  anchors drawn once per edit", REVERTS["revert_draw"]),
    "revert_source_text": ("  source branch reads the inversion prompt", REVERTS["revert_source_text"]),
    "revert_mask": ("  max-pooled residual mask", REVERTS["revert_mask"]),
    "previous": ("previous behaviour (all five reverted)", {k: v for d in REVERTS.values() for k, v in d.items()}),
    "no_anchor_attn": ("no AnchorExtAttn (attention off)", dict(attention_mode="off")),
    "one_iteration": ("no iterative refinement (one iteration)", dict(strengths=PAPER_STRENGTHS[:1])),
    "six_passes": ("the authors' 0.9 base_config: 6 passes (no 0.92)", dict(strengths=PAPER_STRENGTHS[1:])),
    "config_092": ("the authors' 0.92 base_config: 7 passes, window from 919",
                   dict(injection_max_timestep=0.92)),
    "paper_inversion": ("the paper's 250-step inversion (toy: 50)", dict(inversion_steps=250)),
    "wide_margin": ("a 4-pixel margin around O_edit (toy: 1)", dict(mask_dilate_radius=4)),
    "full_attention": ("full attention", dict(attention_mode="full")),
    "masked_attention": ("masked attention", dict(attention_mode="masked")),
    "sdedit_0.6": ("SDEdit 0.6", 0.6),
    "sdedit_0.9": ("SDEdit 0.9", 0.9),
}


def make_pairs(n: int, seed: int = 7, new: str = "held_out"):
    """``n`` (source scene, new ``(colour, "ball", motion)``, instruction) pairs. The source ball's (colour,
    motion, background) is a training combination; the new ball has another colour and, with ``new="held_out"``
    (the benchmark), a held-out combination on the source's background, with ``new="seen"`` a training one (a
    diagnostic: what the edit does when the toy model has seen the new ball's combination)."""
    if new not in ("held_out", "seen"):
        raise ValueError(f"make_pairs: new must be 'held_out' or 'seen', not {new!r}")
    rng = np.random.default_rng(seed)
    pool = sorted(world.HELD_OUT if new == "held_out" else world.TRAINING_COMBINATIONS)
    pairs = []
    while len(pairs) < n:
        colour, motion, background = pool[rng.integers(len(pool))]
        scene = world.sample_scene(rng, n_objects=1, held_out="exclude", background=background)
        if scene.objects[0].colour == colour:
            continue
        verb = "that bounces" if motion == "bounce" else f"moving {motion}"
        pairs.append((scene, (colour, "ball", motion), f"add a {colour} ball {verb}"))
    return pairs


def pass_story(coverage: list[float]) -> str:
    """What the refinement passes did with the new object, from :attr:`RefinementResult.coverage`: "kept" (the
    first pass finds it in every frame, and so does the last pass that finds it), "rescued" (the first does not,
    the last does), "lost" (a pass finds it in every frame, the last pass that finds it does not) or "never"."""
    found = [c for c in coverage if c > 0]
    if 1.0 not in coverage:
        return "never"
    if found[-1] < 1.0:
        return "lost"
    return "kept" if coverage[0] == 1.0 else "rescued"


PASS_STORIES = ("kept", "rescued", "lost", "never")


def evaluate(out, source, scene, new, edit_mask, segmenter, raw=None, coverage=None) -> dict:
    """Scores of output frames ``out`` ``[F, 3, H, W]`` (and of the raw latent output ``raw``, if given;
    ``coverage``: the refinement's per-pass coverage of O_edit, kept as ``passes``).

    ``success``: the strict judge of ``out`` against the source ball(s) plus the new ball ``new``;
    ``copies_source``: the new ball is there but moves like the source ball instead (their motions differ).
    """
    expected = [(o.colour, o.motion) for o in scene.objects] + [(new[0], new[2])]
    labels = analysis.colour_labels(out)[0]
    verdict = analysis.judge(out, scene.background, expected, labels)
    gt = torch.from_numpy(world.render(scene)[1][0])[:, None]  # [F, 1, H, W]
    src = segmenter.segment(out, [scene.objects[0].phrase]).union
    source_motion = scene.objects[0].motion
    copies = source_motion != new[2] and analysis.judge(
        out, scene.background, [(scene.objects[0].colour, source_motion), (new[0], source_motion)], labels).moves[-1]
    return {"success": verdict.ok, "new_moves": verdict.moves[-1], "source_moves": all(verdict.moves[:-1]),
            "copies_source": bool(copies),
            "background": verdict.background_ok, "no_extra": verdict.extra == 0, "iou": iou(src, gt),
            "psnr": psnr_outside(out, source, edit_mask), "ssim": ssim_outside(out, source, edit_mask)} | (
                {} if raw is None else {"psnr_raw": psnr_outside(raw, source, edit_mask)}) | (
                {} if coverage is None else {"passes": list(coverage)})


@dataclasses.dataclass
class EditRun:
    """What :func:`edit_benchmark` measured: per variant, the scores of each pair (:func:`evaluate`) and the
    seconds of each edit; the autoencoder's reconstruction PSNR of each source (the ceiling outside the mask)."""

    config: DynVFXConfig
    results: dict[str, list[dict]]
    seconds: dict[str, list[float]]
    ceiling: list[float]
    total_seconds: float
    new: str = "held_out"  # the pairs' new balls (make_pairs)
    first: int = 0  # index of the first pair of make_pairs this run edited
    threads: int = 0  # torch CPU threads it ran on
    joined: int = 1  # how many runs over consecutive ranges :func:`merge_runs` joined into this one

    def save(self, path: str | Path) -> None:
        """Write the run (config, per-pair scores and seconds) as JSON, for :func:`merge_runs`."""
        Path(path).write_text(json.dumps(dataclasses.asdict(self) | {"config": self.config.to_dict()}))

    @classmethod
    def load(cls, path: str | Path) -> "EditRun":
        d = json.loads(Path(path).read_text())
        return cls(**(d | {"config": DynVFXConfig.from_dict(d["config"])}))


def merge_runs(runs: list[EditRun]) -> EditRun:
    """One run from runs over consecutive ranges of the same pairs (``--first``) and config, over the variants that
    every run has (a range run with the authors' defaults alone joins a run of all variants on ``authors``)."""
    runs = sorted(runs, key=lambda r: r.first)
    head = runs[0]
    shared = [n for n in head.results if all(n in run.results for run in runs)]
    if not shared:
        raise ValueError("merge_runs: the runs share no variant")
    for prev, run in zip(runs, runs[1:]):
        if (run.config, run.new) != (head.config, head.new):
            raise ValueError("merge_runs: the runs differ in config or pairs (new ball)")
        if run.first != prev.first + len(prev.ceiling):
            raise ValueError(f"merge_runs: ranges not consecutive: {len(prev.ceiling)} pairs from pair {prev.first}, "
                             f"then pair {run.first}")
    return EditRun(head.config, {n: [r for run in runs for r in run.results[n]] for n in shared},
                   {n: [s for run in runs for s in run.seconds[n]] for n in shared},
                   [c for run in runs for c in run.ceiling], sum(run.total_seconds for run in runs), head.new,
                   head.first, head.threads, sum(run.joined for run in runs))


@dataclasses.dataclass
class EditedPair:
    """One variant's edit of a benchmark pair: its output (:class:`dynvfx.edit.VariantOutput`), its scores
    (:func:`evaluate`) and the seconds it took."""

    output: tuple
    scores: dict
    seconds: float


def edit_pair(pipe, pair: tuple, names: list[str], config: DynVFXConfig,
              cache_dir: str | Path | None = None) -> dict[str, EditedPair]:
    """A pair of :func:`make_pairs` (source scene, new ball, instruction) edited with each of the ``names`` of
    :data:`VARIANTS` and scored, as :func:`edit_benchmark` edits every pair (toy planner and segmenter)."""
    scene, new, instruction = pair
    seg, source = get_segmenter("toy"), scene_frames(scene)
    plan = plan_edit(source, instruction, backend="toy")
    edited = {}
    for name in names:
        start = time.perf_counter()
        out = edit_variant(pipe, source, plan, seg, config, VARIANTS[name][1], cache_dir)
        scores = evaluate(out[0], source, scene, new, out[1], seg, raw=out[2], coverage=out[3])
        edited[name] = EditedPair(out, scores, time.perf_counter() - start)
    return edited


def edit_benchmark(pipe, n_pairs: int, names: list[str], config: DynVFXConfig,
                   log: Callable[[str], None] = print, new: str = "held_out", first: int = 0) -> EditRun:
    """Run the ``names`` of :data:`VARIANTS` on pairs ``first`` to ``n_pairs - 1`` of :func:`make_pairs` (``new``:
    the new ball's combination, held out or seen) with the toy segmenter and planner; one inversion per source
    is shared by all variants. A pair's result does not depend on the range it runs in, so ranges can run in
    parallel and be joined by :func:`merge_runs`. ``log`` gets a line per pair."""
    run = EditRun(config, {n: [] for n in names}, {n: [] for n in names}, [], 0.0, new, first,
                  torch.get_num_threads())
    start = time.perf_counter()
    with tempfile.TemporaryDirectory() as cache:
        for k, (scene, new_ball, instruction) in enumerate(make_pairs(n_pairs, new=new)[first:], start=first):
            source = scene_frames(scene)
            run.ceiling.append(psnr_outside(decode_latents(pipe, encode_video(pipe, source)), source))
            for name, edited in edit_pair(pipe, (scene, new_ball, instruction), names, config, cache).items():
                run.seconds[name].append(edited.seconds)
                run.results[name].append(edited.scores)
            log(f"pair {k + 1}/{n_pairs} ({time.perf_counter() - start:.0f} s): {instruction!r} on "
                f"{scene.caption!r}")
    run.total_seconds = time.perf_counter() - start
    return run


def _range_run(model: str, n_pairs: int, first: int, names: list[str], config: DynVFXConfig, new: str,
               threads: int) -> EditRun:
    """One worker of :func:`edit_benchmark_parallel`: load the model, edit pairs ``first`` to ``n_pairs - 1``."""
    torch.set_num_threads(threads)
    warnings.simplefilter("ignore")
    return edit_benchmark(load_pipeline(model), n_pairs, names, config, new=new, first=first,
                          log=lambda line: print(line, flush=True))


def follow_parent(parent: int, poll_s: float = 1.0) -> None:
    """Pool worker initializer: end this worker once process ``parent`` (the pool's owner) is gone.

    A parent killed by a signal (``kill``, ``pkill``) never shuts its pool down, and a worker in the middle of a
    range of pairs would edit on for hours; a watcher thread sees the worker re-parented and exits it.
    """
    def watch() -> None:
        while os.getppid() == parent:
            time.sleep(poll_s)
        os._exit(1)

    threading.Thread(target=watch, name="follow-parent", daemon=True).start()


def worker_pool(workers: int) -> concurrent.futures.ProcessPoolExecutor:
    """``workers`` fresh (spawned: no torch thread pools or model state copied in) processes that end with this
    one (:func:`follow_parent`)."""
    return concurrent.futures.ProcessPoolExecutor(workers, mp_context=multiprocessing.get_context("spawn"),
                                                  initializer=follow_parent, initargs=(os.getpid(),))


def edit_benchmark_parallel(model: str, n_pairs: int, names: list[str], config: DynVFXConfig, processes: int,
                            threads: int = 1, new: str = "held_out", first: int = 0) -> EditRun:
    """:func:`edit_benchmark` on pairs ``first`` to ``n_pairs - 1`` split into ``processes`` consecutive ranges,
    each in its own process with ``threads`` torch threads and its own copy of ``model`` (a
    :func:`~dynvfx.pipeline.load_pipeline` name), joined by :func:`merge_runs`: the same scores as one run."""
    bounds = np.linspace(first, n_pairs, min(processes, n_pairs - first) + 1).round().astype(int).tolist()
    with worker_pool(len(bounds) - 1) as pool:
        futures = [pool.submit(_range_run, model, b, a, names, config, new, threads)
                   for a, b in zip(bounds, bounds[1:])]
        return merge_runs([f.result() for f in futures])


def edit_report(run: EditRun) -> str:
    """The benchmark's markdown table (one row per variant) with its heading and footer."""
    base, n_pairs = run.config, len(run.ceiling)
    span = f"pairs {run.first + 1} to {run.first + n_pairs}, " if run.first else ""
    lines = [f"DynVFX on the toy model: {n_pairs} pairs ({span}new ball {run.new.replace('_', ' ')}), "
             f"{base.num_inference_steps} steps, guidance {base.guidance_scale}, strengths {list(base.strengths)}; "
             f"success = strict judge (background, source ball and new ball moving as asked, nothing else); "
             f"[95 % intervals]\n",
             "| variant | success | new ball right | new ball copies the source's motion | source ball right | "
             "nothing extra | source IoU | PSNR outside (dB) | SSIM outside | PSNR outside, raw decode(x_comp) | "
             "s / edit |",
             "|---|---|---|---|---|---|---|---|---|---|---|"]
    for name, rows in run.results.items():
        m, lo, hi = bootstrap([r["iou"] for r in rows])
        psnr, ssim, raw = (bootstrap([r[key] for r in rows])[0] for key in ("psnr", "ssim", "psnr_raw"))
        lines.append(f"| {VARIANTS[name][0]} | {share(rows, 'success')} | {share(rows, 'new_moves')} | "
                     f"{share(rows, 'copies_source')} | {share(rows, 'source_moves')} | {share(rows, 'no_extra')} | "
                     f"{m:.2f} [{lo:.2f}, {hi:.2f}] | "
                     f"{psnr:.1f} | {ssim:.3f} | {raw:.1f} | {np.mean(run.seconds[name]):.0f} |")
    others = [name for name in run.results if name != "authors"]
    if "authors" in run.results and others:
        lines += ["\nthe authors' defaults against each other variant on the same pairs: success difference in points "
                  "with its paired 95 % bootstrap interval (resampling pairs), and the pairs only one of the two gets "
                  "right\n",
                  "| the authors' defaults against | difference | authors' defaults only | the other only |",
                  "|---|---|---|---|"]
        for name in others:
            d, lo, hi, a_only, b_only = paired_difference(run.results["authors"], run.results[name])
            lines.append(f"| {VARIANTS[name][0]} | {100 * d:+.0f} [{100 * lo:+.0f}, {100 * hi:+.0f}] | {a_only} | "
                         f"{b_only} |")
    stories = {name: rows for name, rows in run.results.items() if rows and len(rows[0].get("passes", [])) > 1}
    if stories:
        lines += ["\nthe refinement passes, pair by pair (pass_story): *kept* the first pass finds the new ball in every "
                  "frame of x_hat and so does the last pass that finds it; *rescued* the first does not, the last does; "
                  "*lost* a pass finds it in every frame, the last pass that finds it does not; *never*; pairs "
                  "(of which succeed)\n",
                  "| variant | " + " | ".join(PASS_STORIES) + " |", "|---|" + "---|" * len(PASS_STORIES)]
        for name, rows in stories.items():
            told = [(pass_story(r["passes"]), r["success"]) for r in rows]
            lines.append(f"| {VARIANTS[name][0]} | " + " | ".join(
                f"{sum(s == story for s, _ in told)} ({sum(ok for s, ok in told if s == story)})"
                for story in PASS_STORIES) + " |")
    lines += [f"\nautoencoder reconstruction PSNR of the sources (the ceiling outside the mask): "
              f"{np.mean(run.ceiling):.1f} dB",
              f"total {run.total_seconds:.0f} s on {run.threads or torch.get_num_threads()} CPU threads"
              + (f" in all, over the {run.joined} joined runs" if run.joined > 1 else "")]
    return "\n".join(lines)


# ------------------------------------------------------------------------------------------ model quality
PER_COMBINATION = 4  # captions per held-out combination: 12 x 4 = 48 single-object and 48 two-object captions

#: (label, kinds of caption, check, the project's bar)
QUALITY_ROWS = [
    ("single object: colour and motion right", ("single",), "objects", 0.95),
    ("two objects: both right", ("pair",), "objects", 0.85),
    ("background right", ("single", "pair"), "background", 0.98),
    ("single object: present (one compact blob of its colour)", ("single",), "present", None),
    ("two objects: both present", ("pair",), "present", None),
    ("two objects: motions swapped (each ball moves as the other should)", ("pair",), "swapped", None),
    ("everything right (judge ok), all captions", ("single", "pair"), "all", None),
]


def held_out_cases(per_combination: int = PER_COMBINATION) -> tuple[list[world.Scene], list[world.Scene]]:
    """Single-object and two-object held-out scenes, ``per_combination`` of each per held-out (colour, motion,
    background); a second object is a training combination of another colour on the same background."""
    rng = np.random.default_rng(2024)
    singles, pairs = [], []
    for colour, motion, background in sorted(world.HELD_OUT):
        first = (colour, analysis.NOUN, motion)
        for _ in range(per_combination):
            singles.append(world.sample_scene(rng, triples=[first], background=background))
            second = world.sample_triple(rng, background, "exclude")
            while second[0] == colour:
                second = world.sample_triple(rng, background, "exclude")
            pairs.append(world.sample_scene(rng, triples=[first, second], background=background))
    return singles, pairs


def seen_cases(n: int) -> tuple[list[world.Scene], list[world.Scene]]:
    """``n`` single-object and ``n`` two-object scenes whose every (colour, motion, background) combination is a
    training one (fresh positions, seeds outside the training videos'): the same checks without the held-out
    gap, to tell what the model has not learned from what it does not generalise."""
    rng = np.random.default_rng(4048)
    singles = [world.sample_scene(rng, n_objects=1, held_out="exclude") for _ in range(n)]
    pairs = [world.sample_scene(rng, n_objects=2, held_out="exclude") for _ in range(n)]
    return singles, pairs


def checks(judgement: analysis.Judgement, swapped: analysis.Judgement | None = None) -> dict[str, bool]:
    """The benchmark's checks of one judged video; ``swapped``: the judgement of a two-ball video against the
    caption with the two motions exchanged (None when they are the same motion, or for one ball)."""
    return {
        "objects": all(judgement.moves) and judgement.extra == 0,  # every object right, nothing else
        "present": all(judgement.present),
        "background": judgement.background_ok,
        "all": judgement.ok,
        "swapped": swapped is not None and all(swapped.moves),
    }


def swapped_judgement(frames, scene: world.Scene, labels=None) -> analysis.Judgement | None:
    """:func:`analysis.judge` of ``frames`` against ``scene``'s two balls with their motions exchanged, or None
    (one ball, or both with the same motion). ``labels``: the frames' colour labels, if already computed."""
    if len(scene.objects) != 2 or scene.objects[0].motion == scene.objects[1].motion:
        return None
    a, b = scene.objects
    return analysis.judge(frames, scene.background, [(a.colour, b.motion), (b.colour, a.motion)], labels)


def judged_checks(frames, scene: world.Scene) -> dict[str, bool]:
    """:func:`checks` of a video ``[F, 3, H, W]`` against ``scene``'s caption, its pixels labelled once."""
    labels = analysis.colour_labels(frames)[0]
    return checks(analysis.judge_scene(frames, scene, labels), swapped_judgement(frames, scene, labels))


def untrained(pipe):
    """``pipe`` with its transformer replaced by a freshly initialised one of the same configuration (seed 0)."""
    torch.manual_seed(0)
    pipe.transformer = type(pipe.transformer).from_config(pipe.transformer.config).to(pipe.device)
    return pipe


def model_quality(pipe, singles: list[world.Scene], pairs: list[world.Scene], steps: int = 50,
                  guidance: float | None = None) -> tuple[dict, dict, list[float]]:
    """Generate a video per caption (seed = its index; ``guidance=None``: the model's preset, see
    :func:`dynvfx.pipeline.generate`) and judge it, and the renderer's own video of the scene.
    ``pipe=None``: uniform colour noise instead of generated videos (the negative control).

    Returns ``(generated, rendered, seconds)``: ``{"single" | "pair": [checks, ...]}`` twice, and the seconds per
    generated video."""
    gen, ref, seconds = {"single": [], "pair": []}, {"single": [], "pair": []}, []
    for kind, scenes in (("single", singles), ("pair", pairs)):
        for i, scene in enumerate(scenes):
            t = time.perf_counter()
            if pipe is None:
                frames = torch.rand(scene.frames, 3, scene.size, scene.size, generator=torch.Generator().manual_seed(i))
            else:
                frames = generate(pipe, scene.caption, seed=i, steps=steps, guidance=guidance)
            seconds.append(time.perf_counter() - t)
            gen[kind].append(judged_checks(frames, scene))
            ref[kind].append(judged_checks(scene_frames(scene), scene))
    return gen, ref, seconds


@dataclasses.dataclass
class QualityRun:
    """What :func:`model_quality` measured and how (``settings``: model, captions, control, steps, guidance,
    threads), as ``toy_model_quality.py --save`` writes it for the docs' tables."""

    settings: dict
    generated: dict
    rendered: dict
    seconds: list[float]

    def save(self, path: str | Path) -> None:
        Path(path).write_text(json.dumps(dataclasses.asdict(self)))

    @classmethod
    def load(cls, path: str | Path) -> "QualityRun":
        return cls(**json.loads(Path(path).read_text()))


def quality_table(generated: dict, rendered: dict) -> str:
    """The markdown table of :data:`QUALITY_ROWS`: generated and rendered shares with intervals, and the bar."""
    lines = ["| check | generated [95 % interval] | renderer (ceiling) | bar |", "|---|---|---|---|"]
    for label, kinds, key, bar in QUALITY_ROWS:
        g, g_text = cell([r for k in kinds for r in generated[k]], key)
        _, r_text = cell([r for k in kinds for r in rendered[k]], key)
        verdict = "" if bar is None else (f"≥ {bar:.0%} " + ("✓" if g >= bar else "✗"))
        lines.append(f"| {label} | {g_text} | {r_text} | {verdict} |")
    return "\n".join(lines)


# ------------------------------------------------------------------------------------------ word sensitivity
SENSITIVITY_TIMESTEPS = (900, 700, 500, 300, 100)
WORDS = ("colour", "motion", "binding")  # binding: the two balls' motions exchanged (the same bag of words)


def _restart(obj: world.ToyObject, motion: str, rng: np.random.Generator, size: int) -> world.ToyObject:
    """``obj`` moving as ``motion``, from a new start drawn from the world's start range for it (same radius)."""
    (x_lo, x_hi), (y_lo, y_hi) = world._start_range(motion, obj.radius, size)
    x0, y0 = float(rng.uniform(x_lo, x_hi)), float(rng.uniform(y_lo, y_hi))
    return dataclasses.replace(obj, motion=motion, x0=x0, y0=y0)


def counterfactual(scene: world.Scene, rng: np.random.Generator, word: str) -> world.Scene:
    """The scene with its first object's ``word`` ("colour" or "motion") changed to another value, or with
    ``word="binding"`` its two objects' motions exchanged (its caption then holds the same words, bound the other
    way). A changed motion gets a new start, drawn from the world's start range for it; radii are kept."""
    if word == "binding":
        a, b = scene.objects
        if a.motion == b.motion:
            raise ValueError("counterfactual: exchanging the motions needs two balls that move differently")
        return dataclasses.replace(scene, objects=(_restart(a, b.motion, rng, scene.size),
                                                   _restart(b, a.motion, rng, scene.size)))
    obj = scene.objects[0]
    values = [v for v in (world.COLOURS if word == "colour" else world.MOTIONS) if v != getattr(obj, word)]
    value = values[int(rng.integers(len(values)))]
    new = dataclasses.replace(obj, colour=value) if word == "colour" else _restart(obj, value, rng, scene.size)
    return dataclasses.replace(scene, objects=(new,))


def latent(pipe, scene: world.Scene) -> torch.Tensor:
    """Rendered scene -> x_0 ``[1, F', C, h, w]``."""
    return encode_video(pipe, scene_frames(scene))


def ratios(pipe, scene: world.Scene, x0: torch.Tensor, other: world.Scene, seed: int) -> list[float]:
    """Per timestep in :data:`SENSITIVITY_TIMESTEPS`: prediction difference / true latent difference (see the
    module docstring).

    ``x0`` is ``latent(pipe, scene)``; the noise is drawn from ``seed`` (the same at every timestep)."""
    true_difference = (latent(pipe, other) - x0).norm()
    out = []
    for t in SENSITIVITY_TIMESTEPS:
        x_t = add_noise(pipe, x0, t, torch.Generator().manual_seed(seed))
        pred, pred_other = (predicted_x0(pipe, x_t, t, s.caption) for s in (scene, other))
        out.append(((pred_other - pred).norm() / true_difference).item())
    return out


def binding_scene(rng: np.random.Generator) -> world.Scene:
    """A two-ball training-distribution scene whose balls move differently and whose exchanged-motion
    counterfactual is a training combination too (so a swap is not merely an unseen caption)."""
    while True:
        scene = world.sample_scene(rng, n_objects=2, held_out="exclude")
        if world.exchanged_motions(scene.caption) is not None:
            return scene


def word_sensitivity(pipe, n_scenes: int = 12) -> dict[str, np.ndarray]:
    """Per word of :data:`WORDS`, the mean :func:`ratios` (one per timestep of :data:`SENSITIVITY_TIMESTEPS`)
    over ``n_scenes`` training-distribution scenes: one ball for "colour" and "motion", two
    (:func:`binding_scene`) for "binding"."""
    rng = np.random.default_rng(0)
    table = {w: [] for w in WORDS}
    for i in range(n_scenes):
        scene = world.sample_scene(rng, n_objects=1, held_out="exclude")
        x0 = latent(pipe, scene)
        for word in ("colour", "motion"):
            table[word].append(ratios(pipe, scene, x0, counterfactual(scene, rng, word), seed=i))
        pair = binding_scene(rng)
        table["binding"].append(ratios(pipe, pair, latent(pipe, pair), counterfactual(pair, rng, "binding"), seed=i))
    return {w: np.mean(r, axis=0) for w, r in table.items()}


def sensitivity_table(mean: dict[str, np.ndarray]) -> str:
    """The markdown table of :func:`word_sensitivity`: one row per timestep."""
    lines = ["| timestep t | colour swap | motion swap | motions exchanged between two balls | motion / colour |",
             "|---|---|---|---|---|"]
    for k, t in enumerate(SENSITIVITY_TIMESTEPS):
        colour, motion, binding = mean["colour"][k], mean["motion"][k], mean["binding"][k]
        lines.append(f"| {t} | {colour:.2f} | {motion:.2f} | {binding:.2f} | {motion / colour:.2f} |")
    return "\n".join(lines)
