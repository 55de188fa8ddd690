"""The box edit benchmark (``benchmarks/toy_box_edit.py``): the edit that needs the anchors.

A pair's source is a box scene with one ball that stays clear of the box; the instruction asks for a new ball that
crosses the box, e.g. "add a yellow ball that moves right behind the box". The new ball's (colour, motion,
background) is a held-out crossing combination (``world.HELD_OUT``; ``new="seen"``: a training one), the source
ball's a training one that does not move sideways. The expected result is the scene the pair was drawn from: the
same source, the box and the new ball passing behind it (:func:`make_box_pairs`), judged by the strict box judge
(:func:`dynvfx.toy.occlusion.judge_box`).
"""

from __future__ import annotations

import dataclasses
from typing import Callable

import numpy as np
import torch

from dynvfx import probes
from dynvfx.attention import project_qkv
from dynvfx.config import DynVFXConfig
from dynvfx.edit import source_anchors
from dynvfx.inversion import ddim_invert
from dynvfx.lab.edit_bench import EditRun, edit_variants, run_pairs
from dynvfx.masks import pixel_to_tokens
from dynvfx.metrics import psnr_outside
from dynvfx.pipeline import encode_video, video_spec
from dynvfx.planning import plan_edit
from dynvfx.segmentation import get_segmenter
from dynvfx.toy import world
from dynvfx.toy.examples import scene_frames
from dynvfx.toy.occlusion import judge_box

#: The variants the box benchmark compares (names of :data:`dynvfx.lab.edit_bench.VARIANTS`).
BOX_VARIANTS = ("authors", "no_anchor_attn", "revert_window", "one_iteration", "sdedit_0.9")
STILL_MOTIONS = tuple(m for m in world.MOTIONS if m not in world.CROSSING_MOTIONS)  # a source ball's: never across


def make_box_pairs(n: int, seed: int = 11, new: str = "held_out", relation: str = "behind"):
    """``n`` (source scene, expected scene, instruction) pairs: the expected scene is a box scene whose first ball
    crosses the box (``relation``) and whose second stays clear of it; the source is that scene without the
    first ball; the instruction asks for the first ball."""
    if new not in ("held_out", "seen"):
        raise ValueError(f"make_box_pairs: new must be 'held_out' or 'seen', not {new!r}")
    rng = np.random.default_rng(seed)
    pool = sorted(t for t in (world.HELD_OUT if new == "held_out" else world.TRAINING_COMBINATIONS)
                  if t[1] in world.CROSSING_MOTIONS)
    pairs = []
    while len(pairs) < n:
        colour, motion, background = pool[rng.integers(len(pool))]
        kept = world.sample_triple(rng, background, "exclude", STILL_MOTIONS)
        if kept[0] == colour:
            continue
        try:
            expected = world.sample_box_scene(rng, triples=[(colour, "ball", motion), kept], relation=relation,
                                              background=background)
        except RuntimeError:  # this draw leaves no room for both balls around the box
            continue
        source = dataclasses.replace(expected, objects=expected.objects[1:])
        pairs.append((source, expected, f"add a {colour} ball that moves {motion} {world.RELATIONS[relation]}"))
    return pairs


def evaluate_box(out: torch.Tensor, source: torch.Tensor, expected: world.Scene, edit_mask: torch.Tensor,
                 coverage=None) -> dict:
    """Scores of an edit's output frames ``out`` ``[F, 3, H, W]`` against the expected scene.

    ``success``: the strict box judge (box intact; the new ball seen on both sides of the box, moving as asked and
    on the asked side of it; the source ball moving as before; the background; nothing else); its parts:
    ``box_intact``, ``relation`` (hidden behind / whole in front), ``new_moves`` (seen, moving as asked, on both
    sides), ``source_ball`` (and background, nothing extra); ``ball_on_box``: the most of the box the new ball's
    colour covers in a frame; ``psnr`` outside the final edit mask vs. the source.
    """
    j = judge_box(out, expected.caption)
    new = j.crossings[0]
    return {"success": j.ok, "box_intact": j.box_intact, "relation": new.relation_ok,
            "new_moves": new.seen and new.moves and new.sides, "source_ball": j.others.ok,
            "ball_on_box": round(new.covered, 3), "box_shown": round(j.box_shown, 3),
            "psnr": psnr_outside(out, source, edit_mask)} | ({} if coverage is None else {"passes": list(coverage)})


def edit_box_pair(pipe, pair: tuple, names: list[str], config: DynVFXConfig, cache_dir=None) -> dict:
    """A pair of :func:`make_box_pairs` edited with each of the ``names`` of
    :data:`dynvfx.lab.edit_bench.VARIANTS` (toy planner and segmenter) and scored by :func:`evaluate_box`."""
    scene, expected, instruction = pair
    source = scene_frames(scene)
    return edit_variants(pipe, source, instruction, names, config, lambda out, seg: evaluate_box(
        out[0], source, expected, out[1], out[3]), cache_dir)


def box_edit_benchmark(pipe, n_pairs: int, names: list[str], config: DynVFXConfig, new: str = "held_out",
                       first: int = 0, log: Callable[[str], None] = print) -> EditRun:
    """Run the ``names`` of :data:`dynvfx.lab.edit_bench.VARIANTS` on pairs ``first`` to ``n_pairs - 1`` of
    :func:`make_box_pairs` (:func:`dynvfx.lab.edit_bench.run_pairs`)."""
    return run_pairs(pipe, make_box_pairs(n_pairs, new=new), names, config, edit_box_pair, new, first, log)


@torch.no_grad()
def box_anchor_attention(pipe, pair: tuple, config: DynVFXConfig, layers: list[int] | None = None) -> list[dict]:
    """Where the new ball's queries look among the anchors, in real extending calls
    (:func:`dynvfx.probes.capture_anchor_call`: x_orig noised beside the inverted source) at timesteps across the
    injection window (the only steps at which the anchors are used) and in each of ``layers`` (default: all).

    A pair of :func:`make_box_pairs`; the new ball's queries are the edit's video tokens under the whole new ball
    of the expected scene (hidden part included). Per (timestep, layer): ``anchors`` the mean share of those
    queries' attention on all anchor keys, ``box`` and ``ball`` the part of it on the box's anchors and on the
    source ball's; ``box_anchor_share``: the box's share of the anchors themselves (what ``box / anchors`` would be
    if the queries spread their anchor attention evenly).
    """
    scene, expected, instruction = pair
    frames, spec = scene_frames(scene), video_spec(pipe)
    plan = plan_edit(frames, instruction, backend="toy")
    anchors = source_anchors(pipe, frames, plan.objects_orig, get_segmenter("toy"), config)
    inv = ddim_invert(pipe, encode_video(pipe, frames), config.inversion_prompt, config.num_inference_steps,
                      config.inversion_steps, progress=False)
    whole = world.render(dataclasses.replace(expected, box=False))[1]  # every ball whole: [new, source ball]
    box_px = np.broadcast_to(world.box_mask(expected.size), whole.shape[1:])

    def tokens(mask: np.ndarray) -> torch.Tensor:
        return pixel_to_tokens(torch.from_numpy(np.ascontiguousarray(mask))[:, None], spec,
                               config.anchor_token_threshold)

    queries, ball, box = tokens(whole[0]), tokens(whole[1]), tokens(box_px)
    on_box = box.flatten()[anchors.index].float().mean().item()
    rows = []
    window = np.linspace(config.injection_max_timestep, config.injection_min_timestep, 4)
    for strength in window:
        for layer in layers if layers is not None else range(len(pipe.transformer.transformer_blocks)):
            call = probes.capture_anchor_call(pipe, inv, plan.composited_caption, plan.source_caption,
                                              anchors.index, config, layer, float(strength))
            grid = probes.edit_attention(call, spec, queries)[0] / queries.sum()
            rows.append({"timestep": call.timestep, "layer": layer,
                         "anchors": grid.sum().item(), "box": grid[box].sum().item(),
                         "ball": grid[ball].sum().item(), "box_anchor_share": on_box,
                         "change_new": anchor_change(call, queries), "change_box": anchor_change(call, box)})
    return rows


def anchor_change(call: probes.AttentionCall, queries: torch.Tensor) -> float:
    """``||o_anchor - o_own|| / ||o_own||`` over the edit's video queries at ``queries`` (``[F', h', w']`` bool):
    the layer's attention output (heads side by side, before the output projection) with the source's anchor keys
    and values beside the edit's own, against the edit's own alone, on the same input (:class:`AttentionCall`)."""
    q, k, v = (x.float() for x in project_qkv(call.attn, call.hidden, call.text_len, call.rope))
    L, a = call.text_len, call.anchor_index.to(k.device)
    rows = L + queries.flatten().nonzero().flatten().to(q.device)
    own = torch.softmax(q[0][:, rows] @ k[0].transpose(1, 2) * q.shape[-1] ** -0.5, -1) @ v[0]
    keys, values = torch.cat([k[0], k[1][:, L + a]], 1), torch.cat([v[0], v[1][:, L + a]], 1)
    both = torch.softmax(q[0][:, rows] @ keys.transpose(1, 2) * q.shape[-1] ** -0.5, -1) @ values
    return ((both - own).norm() / own.norm()).item()
