"""The strict judge for box scenes: is the box intact, and does each ball that crosses it pass behind or in front
of it as its caption says?

A ball behind the box is hidden where they overlap, so it is never one whole blob while it crosses; the judge
therefore reads a crossing ball from its pixels *outside* the box (where it must be seen on both sides: before
the box at the start, past it at the end, moving as asked) and from its pixels *inside* the box's rectangle:

- ``"behind"``: (almost) none of the ball's colour inside the box in any frame;
- ``"front"``: the whole ball, one compact ball-sized blob, in most frames, and covering part of the box in some.

The box is *intact* when, in every frame, its inner pixels show the box's colour, or the colour of a ball in
front of it. Any ball that does not cross the box is judged as :func:`dynvfx.toy.judge.judge` judges it, with the
box and the crossing ball taken out of the picture.
"""

from __future__ import annotations

import dataclasses

import numpy as np
import torch
from scipy import ndimage

from dynvfx.toy import world
from dynvfx.toy.judge import JUDGE_PRESENCE, Judgement, _blob_track, judge
from dynvfx.toy.perception import COLOUR_NAMES, MIN_AREA_FRAC, as_video, ball_area_range, classify_motion, colour_labels

BOX_TOLERANCE = 0.2  # RGB distance within which a pixel shows the box's colour
BOX_INTACT = 0.85  # share of the box's inner pixels that must show it (or a ball in front of it), in every frame
HIDDEN_MAX = 0.05  # behind: most of the box's inner area the ball's colour may cover in any frame
SHOWN_MIN = 0.25  # in front: the ball's colour must cover at least this share of a ball's area inside the box
SIDE_FRAMES = 3  # the first and last frames in which a crossing ball must be seen on each side of the box
SEEN_MIN = 0.5  # share of frames in which a crossing ball must show outside the box (a small one hides wholly)


@dataclasses.dataclass
class Crossing:
    """What :func:`judge_box` found for one ball that crosses the box."""

    colour: str
    relation: str  # asked: "behind" or "front"
    seen: bool  # its colour outside the box in >= SEEN_MIN of the frames
    moves: bool  # seen, and its track outside the box reads as the asked motion
    sides: bool  # before the box in the first frames and past it in the last ones
    relation_ok: bool  # hidden inside the box (behind) / whole and over the box (front), as asked
    covered: float  # the most of the box's inner area its colour covers in any frame

    @property
    def ok(self) -> bool:
        return self.seen and self.moves and self.sides and self.relation_ok


@dataclasses.dataclass
class BoxJudgement:
    """:func:`judge_box`'s verdict on a box scene."""

    box_intact: bool
    crossings: list[Crossing]
    others: Judgement  # the balls that do not cross the box, the background, and anything extra
    box_shown: float  # the least share of the box's inner pixels showing it (or a ball in front) in any frame

    @property
    def ok(self) -> bool:
        return self.box_intact and all(c.ok for c in self.crossings) and self.others.ok


def near_box_colour(video: np.ndarray) -> np.ndarray:
    """``[F, H, W]`` bool: pixels of a video ``[F, H, W, 3]`` within ``BOX_TOLERANCE`` of the box's colour itself
    (stricter than :func:`dynvfx.toy.perception.box_pixels`, which also takes the box's mixes with the
    background: the judge asks for the box's own colour)."""
    return np.linalg.norm(video - np.asarray(world.BOX_COLOUR, np.float32), axis=-1) < BOX_TOLERANCE


def inner_box(size: int) -> np.ndarray:
    """The box's rectangle less a 1-pixel rim (where edges blur), ``[H, W]`` bool."""
    return ndimage.binary_erosion(world.box_mask(size))


def _crossing(labels: np.ndarray, colour: str, motion: str, relation: str, inner: np.ndarray,
              outer: np.ndarray) -> Crossing:
    f, h, w = labels.shape
    layer = labels == COLOUR_NAMES.index(colour)
    outside = layer & ~outer
    counts = outside.reshape(f, -1).sum(1)
    min_area = max(2, round(MIN_AREA_FRAC * h * w))
    present = counts >= min_area
    seen = bool(present.mean() >= SEEN_MIN)
    track = np.full((f, 2), np.nan)
    for i in np.flatnonzero(present):
        ys, xs = np.nonzero(outside[i])
        track[i] = xs.mean(), ys.mean()
    moves = seen and classify_motion(track) == motion
    x0, _, x1, _ = world.BOX
    before, past = (slice(None, x0), slice(x1, None)) if motion == "right" else (slice(x1, None), slice(None, x0))
    sides = bool(outside[:SIDE_FRAMES, :, before].any() and outside[-SIDE_FRAMES:, :, past].any())
    covered = (layer & inner).reshape(f, -1).sum(1)
    if relation == "behind":
        relation_ok = bool(covered.max() <= HIDDEN_MAX * inner.sum())
    else:
        whole = _blob_track(layer, min_area, ball_area_range(h, w))
        relation_ok = bool((~np.isnan(whole).any(1)).mean() >= JUDGE_PRESENCE
                           and covered.max() >= SHOWN_MIN * ball_area_range(h, w)[0])
    return Crossing(colour, relation, seen, bool(moves), sides, relation_ok, float(covered.max() / inner.sum()))


def judge_box(frames: torch.Tensor | np.ndarray, caption: str) -> BoxJudgement:
    """Does a video ``[F, 3, H, W]`` (or ``[F, H, W, 3]``, in ``[0, 1]``) show a box scene's caption
    (:attr:`world.Scene.caption` with the box)?"""
    if not world.names_box(caption):
        raise ValueError(f"judge_box: the caption names no {world.BOX_WORD}: {caption!r}; use judge()")
    clauses, background = world.parse_caption(caption)
    video = as_video(frames)
    f, h, w = video.shape[:3]
    brown = near_box_colour(video)
    labels = colour_labels(video)[0]
    labels[brown] = -1  # the box's colour is no ball's
    inner = inner_box(w)
    outer = ndimage.binary_dilation(world.box_mask(w))
    crossings = [_crossing(labels, c.colour, c.motion, c.relation, inner, outer) for c in clauses if c.relation]
    in_front = np.zeros_like(brown)
    for c in crossings:
        if c.relation == "front":
            in_front |= labels == COLOUR_NAMES.index(c.colour)
    shown = ((brown | in_front) & inner).reshape(f, -1).sum(1) / inner.sum()
    box_intact = bool(shown.min() >= BOX_INTACT)
    rest = labels.copy()
    for c in crossings:
        rest[rest == COLOUR_NAMES.index(c.colour)] = -1
    painted = video.copy()
    painted[brown] = world.BACKGROUNDS[background]  # the box as background, for the background check
    others = judge(painted, background, [(c.colour, c.motion) for c in clauses if not c.relation], labels=rest)
    return BoxJudgement(box_intact, crossings, others, float(shown.min()))
