"""The edit benchmark (``benchmarks/toy_edit.py``): DynVFX on held-out pairs, with the authors' defaults, their
configs' and the toy preset's alternatives, and the paper's ablations (:data:`VARIANTS`).

A pair's new object is a held-out (colour, motion, background) combination of ``world.HELD_OUT``; the source is a
one-ball scene on that background (a trained combination, another colour); the instruction asks for the new ball.
Scores per edit: :func:`evaluate`. Long runs split into ranges of pairs, in worker processes
(:func:`edit_benchmark_parallel`) or by hand, joined by :func:`merge_runs`.
"""

from __future__ import annotations

import dataclasses
import json
import tempfile
import time
import warnings
from pathlib import Path
from typing import Callable

import numpy as np
import torch

from dynvfx.config import PAPER_STRENGTHS, DynVFXConfig
from dynvfx.edit import edit_variant
from dynvfx.lab.pool import worker_pool
from dynvfx.metrics import iou, psnr_outside, ssim_outside
from dynvfx.pipeline import decode_latents, encode_video, load_pipeline
from dynvfx.planning import plan_edit
from dynvfx.segmentation import get_segmenter
from dynvfx.toy import judge, perception, world
from dynvfx.toy.examples import scene_frames


#: ``name: (description, config changes or an SDEdit strength)`` (see :func:`dynvfx.edit.edit_variant`).
VARIANTS = {
    "authors": ("the authors' defaults", {}),
    "revert_window": ("source branch at every step (no injection window)",
                      dict(injection_max_timestep=1.0, injection_min_timestep=0.0)),
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
    labels = perception.colour_labels(out)[0]
    verdict = judge.judge(out, scene.background, expected, labels)
    gt = torch.from_numpy(world.render(scene)[1][0])[:, None]  # [F, 1, H, W]
    src = segmenter.segment(out, [scene.objects[0].phrase]).union
    source_motion = scene.objects[0].motion
    copies = source_motion != new[2] and judge.judge(
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


def edit_variants(pipe, source: torch.Tensor, instruction: str, names: list[str], config: DynVFXConfig,
                  score: Callable, cache_dir: str | Path | None = None) -> dict[str, EditedPair]:
    """``source`` ``[F, 3, H, W]`` edited by ``instruction`` (toy planner and segmenter) with each of the ``names``
    of :data:`VARIANTS`; ``score(output, segmenter)`` scores each :class:`dynvfx.edit.VariantOutput`."""
    seg = get_segmenter("toy")
    plan = plan_edit(source, instruction, backend="toy")
    edited = {}
    for name in names:
        start = time.perf_counter()
        out = edit_variant(pipe, source, plan, seg, config, VARIANTS[name][1], cache_dir)
        edited[name] = EditedPair(out, score(out, seg), time.perf_counter() - start)
    return edited


def edit_pair(pipe, pair: tuple, names: list[str], config: DynVFXConfig,
              cache_dir: str | Path | None = None) -> dict[str, EditedPair]:
    """A pair of :func:`make_pairs` (source scene, new ball, instruction) edited with each of the ``names`` of
    :data:`VARIANTS` and scored, as :func:`edit_benchmark` edits every pair (toy planner and segmenter)."""
    scene, new, instruction = pair
    source = scene_frames(scene)
    return edit_variants(pipe, source, instruction, names, config, lambda out, seg: evaluate(
        out[0], source, scene, new, out[1], seg, raw=out[2], coverage=out[3]), cache_dir)


def run_pairs(pipe, pairs: list[tuple], names: list[str], config: DynVFXConfig, edit: Callable,
              new: str = "held_out", first: int = 0, log: Callable[[str], None] = print) -> EditRun:
    """Edit ``pairs[first:]`` (each ``(source scene, ..., instruction)``) with the ``names`` of :data:`VARIANTS`:
    ``edit(pipe, pair, names, config, cache_dir)`` edits and scores one pair (:func:`edit_pair`); one inversion per
    source is shared by all variants. ``log`` gets a line per pair."""
    run = EditRun(config, {n: [] for n in names}, {n: [] for n in names}, [], 0.0, new, first,
                  torch.get_num_threads())
    start = time.perf_counter()
    with tempfile.TemporaryDirectory() as cache:
        for k, pair in enumerate(pairs[first:], start=first):
            source = scene_frames(pair[0])
            run.ceiling.append(psnr_outside(decode_latents(pipe, encode_video(pipe, source)), source))
            edited = edit(pipe, pair, names, config, cache)
            for name, e in edited.items():
                run.seconds[name].append(e.seconds)
                run.results[name].append(e.scores)
            log(f"pair {k + 1}/{len(pairs)} ({time.perf_counter() - start:.0f} s): {pair[-1]!r} on "
                f"{pair[0].caption!r}: " + ", ".join(f"{n} {'ok' if e.scores['success'] else '-'}"
                                                    for n, e in edited.items()))
    run.total_seconds = time.perf_counter() - start
    return run


def edit_benchmark(pipe, n_pairs: int, names: list[str], config: DynVFXConfig,
                   log: Callable[[str], None] = print, new: str = "held_out", first: int = 0) -> EditRun:
    """Run the ``names`` of :data:`VARIANTS` on pairs ``first`` to ``n_pairs - 1`` of :func:`make_pairs` (``new``:
    the new ball's combination, held out or seen) with the toy segmenter and planner (:func:`run_pairs`). A pair's
    result does not depend on the range it runs in, so ranges can run in parallel and be joined by
    :func:`merge_runs`."""
    return run_pairs(pipe, make_pairs(n_pairs, new=new), names, config, edit_pair, new, first, log)


def variant_names(text: str) -> list[str]:
    """The variants of a comma list (``"authors,no_anchor_attn"``); ``ValueError`` names any that
    :data:`VARIANTS` lacks."""
    names = [n.strip() for n in text.split(",") if n.strip()]
    unknown = [n for n in names if n not in VARIANTS]
    if unknown:
        raise ValueError(f"unknown variants {unknown}; choose from {', '.join(VARIANTS)}")
    return names


def _range_run(model: str, n_pairs: int, first: int, names: list[str], config: DynVFXConfig, new: str,
               threads: int) -> EditRun:
    """One worker of :func:`edit_benchmark_parallel`: load the model, edit pairs ``first`` to ``n_pairs - 1``."""
    torch.set_num_threads(threads)
    warnings.simplefilter("ignore")
    return edit_benchmark(load_pipeline(model), n_pairs, names, config, new=new, first=first,
                          log=lambda line: print(line, flush=True))


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
