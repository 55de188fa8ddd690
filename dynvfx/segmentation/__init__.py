"""Text-prompted video segmentation: one interface, several backends.

``get_segmenter(spec)`` picks a backend by name:
- ``"toy"``: colour analysis for the toy world (:mod:`dynvfx.segmentation.toy`).
- ``"grounded-sam2"``: text grounding on key frames, then SAM 2 video propagation (real videos, GPU).
- ``"sam3"``: transformers' text-prompted SAM 3 video model, where available.
- ``"masks:PATH"``: user-supplied masks, a folder of PNGs or an mp4 (:mod:`dynvfx.segmentation.user_masks`).
"""

from __future__ import annotations

from dynvfx.segmentation.base import Segmentation, Segmenter

__all__ = ["Segmentation", "Segmenter", "get_segmenter", "SEGMENTERS"]

SEGMENTERS = ("toy", "grounded-sam2", "sam3", "masks:PATH")


def _value(text: str):
    for cast in (int, float):
        try:
            return cast(text)
        except ValueError:
            pass
    return text


def parse_spec(spec: str) -> tuple[str, dict]:
    """``"grounded-sam2:detector=DIR,box_threshold=0.3"`` -> ``("grounded-sam2", {"detector": "DIR", ...})``."""
    name, _, opts = spec.partition(":")
    if name == "masks" or not opts:
        return name, {}
    kwargs = {}
    for item in opts.split(","):
        key, eq, val = item.partition("=")
        if not eq:
            raise ValueError(f"segmenter option {item!r} is not key=value (in {spec!r})")
        kwargs[key.strip()] = _value(val.strip())
    return name, kwargs


def get_segmenter(spec: str, **kwargs) -> Segmenter:
    """Build the segmenter named by ``spec`` (see the module doc); ``kwargs`` go to its constructor.

    Constructor options can also ride in the spec: ``"grounded-sam2:detector=IDEA-Research/grounding-dino-base"``.
    """
    if not spec.startswith("masks:"):
        spec, opts = parse_spec(spec)
        kwargs = opts | kwargs
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
