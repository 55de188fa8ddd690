"""Toy-world segmentation: find objects by colour (:mod:`dynvfx.toy.perception`), match phrases.

Toy objects are balls, told apart by colour, and maybe the box. A phrase names a toy colour, e.g. ``"red
ball"``, ``"the blue circle"`` or ``"yellow"``, or the box (``"the box"``: its visible pixels, those of the box's
colour); ``"red ball and box"`` asks for both. A phrase without a toy colour (``"a car"``, ``"purple ball"``, even
a bare ``"ball"``: the colour might be one the toy world lacks), naming a shape the toy world does not draw (``"red
square"``, ``vocabulary.OTHER_SHAPE_WORDS``) or a box of a ball's colour (``"a blue box"``: the toy box is brown)
matches nothing (empty mask, zero scores). On real footage this backend simply finds little.
"""

from __future__ import annotations

import re

import numpy as np
import torch

from dynvfx.segmentation.base import Segmentation
from dynvfx.toy import perception, vocabulary, world


def parse_phrase(phrase: str) -> list[str]:
    """The toy colours a phrase asks for, and ``world.BOX_WORD`` for the box, split on "and" / "," / "or"; parts
    with no toy colour, naming a shape other than a ball, or a box of a ball's colour, are dropped.

    ``"the red ball"`` -> ``["red"]``; ``"yellow"`` -> ``["yellow"]``; ``"the box"`` -> ``["box"]``;
    ``"a ball"``, ``"a red square"`` and ``"a red box"`` -> ``[]``.
    """
    names = []
    for part in re.split(r",|\band\b|\bor\b", phrase.lower()):
        colour = vocabulary.first_name(part, vocabulary.COLOUR_WORDS)
        if vocabulary.names_box(part):
            names += [] if colour else [world.BOX_WORD]
        elif colour is not None and not vocabulary.OTHER_SHAPE_WORDS & set(vocabulary.words(part)):
            names.append(colour)
    return names


class ToySegmenter:
    """Colour segmenter for toy-world videos; ``kwargs`` go to :func:`perception.detect_objects`."""

    name = "toy"

    def __init__(self, **detect_kwargs):
        self.detect_kwargs = detect_kwargs

    def segment(self, frames: torch.Tensor, phrases: list[str]) -> Segmentation:
        """Masks ``[N, F, 1, H, W]`` and scores ``[N, F]`` of N ``phrases`` in ``frames`` ``[F, 3, H, W]`` (0-1)."""
        video = perception.as_video(frames)
        f, h, w, _ = video.shape
        queries = [parse_phrase(p) for p in phrases]
        objects = perception.detect_objects(video, **self.detect_kwargs) if any(queries) else []
        box = perception.box_pixels(video) if any(world.BOX_WORD in qs for qs in queries) else None
        box = box if box is not None and perception.sees_box(video, box) else None  # its colour, as one patch
        masks = np.zeros((len(phrases), f, 1, h, w), bool)
        scores = np.zeros((len(phrases), f), np.float32)
        for i, qs in enumerate(queries):
            for obj in (o for o in objects if o.colour in qs):
                masks[i, :, 0] |= obj.masks
                scores[i] = np.maximum(scores[i], obj.scores)
            if world.BOX_WORD in qs and box is not None:
                masks[i, :, 0] |= box
                scores[i] = np.maximum(scores[i], box.any((1, 2)))  # the box's score: 1 where its colour shows
        return Segmentation(list(phrases), torch.from_numpy(masks), torch.from_numpy(scores))
