"""Text-prompted video segmentation: one interface, several backends.

``get_segmenter(spec)`` picks a backend by name:
- ``"toy"``: colour and shape analysis for the toy world (:mod:`dynvfx.segmentation.toy`).
- ``"grounded-sam2"``: text grounding on key frames, then SAM 2 video propagation (real videos, GPU).
- ``"sam3"``: transformers' text-prompted SAM 3 video model, where available.
- ``"masks:PATH"``: user-supplied masks, a folder of PNGs or an mp4 (:mod:`dynvfx.segmentation.user_masks`).
"""

from __future__ import annotations

from dynvfx.segmentation.base import Segmentation, Segmenter

__all__ = ["Segmentation", "Segmenter", "get_segmenter", "SEGMENTERS"]

SEGMENTERS = ("toy", "grounded-sam2", "sam3", "masks:PATH")


def get_segmenter(spec: str, **kwargs) -> Segmenter:
    """Build the segmenter named by ``spec`` (see the module doc); ``kwargs`` go to its constructor."""
    if spec == "toy":
        from dynvfx.segmentation.toy import ToySegmenter

        return ToySegmenter(**kwargs)
    if spec == "grounded-sam2":
        from dynvfx.segmentation.grounded_sam2 import GroundedSam2Segmenter

        return GroundedSam2Segmenter(**kwargs)
    if spec == "sam3":
        from dynvfx.segmentation.sam3 import Sam3Segmenter

        return Sam3Segmenter(**kwargs)
    if spec.startswith("masks:"):
        from dynvfx.segmentation.user_masks import UserMasks

        return UserMasks(spec.split(":", 1)[1], **kwargs)
    raise ValueError(f"unknown segmenter {spec!r}; choose one of {', '.join(SEGMENTERS)}")
