"""The strict caption judge: does a toy video show what its caption says?

:func:`judge` decides it from the pixels (:mod:`dynvfx.toy.perception`): the caption's background in most
pixels, each named object as one compact, ball-sized blob of its colour in most frames, moving as asked, and
nothing else. The benchmarks score the toy model and the edits with it.
"""

from __future__ import annotations

import dataclasses

import numpy as np
import torch

from dynvfx.toy import world
from dynvfx.toy.perception import (COLOUR_NAMES, MAX_JUMP_FRAC, MIN_AREA_FRAC, MIN_COMPACTNESS, MIN_PRESENCE,
                                   as_video, ball_area_range, centroid, classify_motion, colour_labels, compactness,
                                   components, flat_colours, track_colour)

JUDGE_PRESENCE = 0.8  # an object must be one compact blob of its colour in at least this share of frames
MIN_BACKGROUND = 0.5  # share of all pixels that must show the caption's background
BACKGROUND_TOLERANCE = 0.3  # RGB distance within which a pixel can count as a background colour


@dataclasses.dataclass
class Judgement:
    """What :func:`judge` found, per expected object in the caption's order."""

    background_ok: bool  # the caption's background in most pixels
    present: list[bool]  # per expected object: one compact blob of its colour in >= 80 % of frames
    moves: list[bool]  # per expected object: present and moving as asked
    extra: int  # objects found beyond the expected ones (duplicates included)

    @property
    def ok(self) -> bool:
        """The video shows the caption: its background, every object moving as asked, nothing else."""
        return self.background_ok and all(self.moves) and self.extra == 0


def background_share(frames: torch.Tensor | np.ndarray, background: str) -> float:
    """Share of the pixels of a video ``[F, 3, H, W]`` that show toy background ``background``.

    A pixel counts if, of all toy backgrounds and colours, ``background`` is nearest to it, and within
    ``BACKGROUND_TOLERANCE``. Raw pixels (not denoised: smoothing would turn colour noise into gray).
    """
    video = as_video(frames)
    names, refs = flat_colours()
    dist = np.linalg.norm(video[..., None, :] - refs, axis=-1)  # [F, H, W, K]
    k = names.index(background)
    return float(((dist.argmin(-1) == k) & (dist[..., k] < BACKGROUND_TOLERANCE)).mean())


def _blob_track(layer: np.ndarray, min_area: int, area_range: tuple[float, float]) -> np.ndarray:
    """``[F, 2]`` centroids of one colour's blob in frames where ``layer`` (``[F, H, W]`` bool) holds exactly
    one component of at least ``min_area`` px, sized within ``area_range`` and compact; NaN elsewhere."""
    track = np.full((len(layer), 2), np.nan)
    for f, frame in enumerate(layer):
        blobs = components(frame, min_area)
        if len(blobs) == 1:
            area = blobs[0].sum()
            if area_range[0] <= area <= area_range[1] and compactness(blobs[0]) >= MIN_COMPACTNESS:
                track[f] = centroid(blobs[0])
    return track


def judge(frames: torch.Tensor | np.ndarray, background: str, objects: list[tuple[str, str]],
          labels: np.ndarray | None = None) -> Judgement:
    """Does a video ``[F, 3, H, W]`` (or ``[F, H, W, 3]``, in ``[0, 1]``) show a caption?

    Args:
        background: the caption's background (a key of ``world.BACKGROUNDS``).
        objects: the caption's objects as ``(colour, motion)`` pairs, of different colours (as in the world).
        labels: ``colour_labels(frames)[0]`` ``[F, H, W]``, if already computed (judging one video against
            several captions labels its pixels once).

    An object is *present* if its colour (pixels more that colour than background, :func:`colour_labels`)
    forms exactly one blob, of a ball's size (``BLOB_AREA``) and compact (``MIN_COMPACTNESS``), in at least
    ``JUDGE_PRESENCE`` of the frames; it *moves* as asked if, in addition, that blob's centroid never jumps
    more than ``MAX_JUMP_FRAC * min(H, W)`` between the frames where it is seen and :func:`classify_motion`
    reads its track as the motion. *Extra* counts the tracked objects (any colour, seen in at least
    ``MIN_PRESENCE`` of the frames) beyond one per expected object, so a duplicate counts too.
    """
    if background not in world.BACKGROUNDS:
        raise ValueError(f"judge: unknown background {background!r}; choose one of {', '.join(world.BACKGROUNDS)}")
    for colour, motion in objects:
        if colour not in world.COLOURS or motion not in world.MOTIONS:
            raise ValueError(f"judge: unknown object ({colour!r}, {motion!r}); colours: "
                             f"{', '.join(world.COLOURS)}; motions: {', '.join(world.MOTIONS)}")
    colours = [c for c, _ in objects]
    if len(set(colours)) < len(colours):
        raise ValueError(f"judge: expected objects must differ in colour (objects are told apart by it): {objects}")
    video = as_video(frames)
    if labels is None:
        labels = colour_labels(video)[0]
    elif labels.shape != video.shape[:3]:
        raise ValueError(f"judge: labels {labels.shape} do not match the video's frames {video.shape[:3]}")
    f, h, w = labels.shape
    min_area, max_jump = max(2, round(MIN_AREA_FRAC * h * w)), MAX_JUMP_FRAC * min(h, w)
    area_range = ball_area_range(h, w)
    present, moves = [], []
    for colour, motion in objects:
        track = _blob_track(labels == COLOUR_NAMES.index(colour), min_area, area_range)
        seen = track[~np.isnan(track).any(1)]
        present.append(bool(len(seen) >= JUDGE_PRESENCE * f))
        smooth = bool((np.linalg.norm(np.diff(seen, axis=0), axis=1) <= max_jump).all())
        moves.append(present[-1] and smooth and classify_motion(track) == motion)
    extra = 0
    for k, colour in enumerate(COLOUR_NAMES):
        tracks = track_colour(labels == k, min_area, max_jump)
        found = sum(m.reshape(f, -1).any(1).mean() >= MIN_PRESENCE for m in tracks)
        extra += max(0, found - colours.count(colour))
    return Judgement(background_share(video, background) > MIN_BACKGROUND, present, moves, int(extra))


def judge_scene(frames: torch.Tensor | np.ndarray, scene: world.Scene, labels: np.ndarray | None = None
                ) -> Judgement:
    """:func:`judge` of a video ``[F, 3, H, W]`` against a scene's caption (background, (colour, motion) pairs)."""
    return judge(frames, scene.background, [(o.colour, o.motion) for o in scene.objects], labels)
