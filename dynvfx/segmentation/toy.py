"""Toy-world segmentation: find objects by colour and shape (:mod:`dynvfx.toy.analysis`), match phrases.

A phrase names a toy colour and optionally a shape, e.g. ``"red ball"``, ``"the blue square"`` or
``"yellow"``; ``"red ball and blue square"`` asks for both. A phrase without a toy colour (``"a car"``,
``"purple ball"``, even a bare ``"ball"``: the colour might be one the toy world lacks) matches nothing
(empty mask, zero scores). On real footage this backend simply finds little.
"""

from __future__ import annotations

import re

import numpy as np
import torch

from dynvfx.segmentation.base import Segmentation
from dynvfx.toy import analysis

Query = tuple[str, str | None]  # (colour, shape); shape None = any


def parse_phrase(phrase: str) -> list[Query]:
    """The ``(colour, shape)`` queries of a phrase split on "and" / "," / "or"; parts with no toy colour are dropped.

    ``"the red ball"`` -> ``[("red", "ball")]``; ``"yellow"`` -> ``[("yellow", None)]``; ``"a ball"`` -> ``[]``.
    """
    queries = []
    for part in re.split(r",|\band\b|\bor\b", phrase.lower()):
        colour = analysis.first_name(part, analysis.COLOUR_WORDS)
        if colour is not None:
            queries.append((colour, analysis.first_name(part, analysis.SHAPE_WORDS)))
    return queries


def matches(obj: analysis.DetectedObject, query: Query) -> bool:
    """Whether a detected object fits a ``(colour, shape)`` query (shape None matches any shape)."""
    colour, shape = query
    return colour == obj.colour and shape in (None, obj.shape)


class ToySegmenter:
    """Colour-and-shape segmenter for toy-world videos; ``kwargs`` go to :func:`analysis.detect_objects`."""

    name = "toy"

    def __init__(self, **detect_kwargs):
        self.detect_kwargs = detect_kwargs

    def segment(self, frames: torch.Tensor, phrases: list[str]) -> Segmentation:
        """Masks ``[N, F, 1, H, W]`` and scores ``[N, F]`` of N ``phrases`` in ``frames`` ``[F, 3, H, W]`` (0-1)."""
        video = analysis.as_video(frames)
        f, h, w, _ = video.shape
        queries = [parse_phrase(p) for p in phrases]
        objects = analysis.detect_objects(video, **self.detect_kwargs) if any(queries) else []
        masks = np.zeros((len(phrases), f, 1, h, w), bool)
        scores = np.zeros((len(phrases), f), np.float32)
        for i, qs in enumerate(queries):
            for obj in (o for o in objects if any(matches(o, q) for q in qs)):
                masks[i, :, 0] |= obj.masks
                scores[i] = np.maximum(scores[i], obj.scores)
        return Segmentation(list(phrases), torch.from_numpy(masks), torch.from_numpy(scores))
