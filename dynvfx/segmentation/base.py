"""The segmenter interface shared by every backend (toy, grounded SAM 2, SAM 3, user masks)."""

from __future__ import annotations

import dataclasses
import warnings
from typing import Protocol, runtime_checkable

import torch

from dynvfx.errors import DynVFXError


@dataclasses.dataclass
class Segmentation:
    """Masks of some phrases in a video.

    Attributes:
        phrases: the N phrases asked for, e.g. ``["red ball", "box"]``.
        masks: ``[N, F, 1, H, W]`` bool, one mask video per phrase.
        scores: ``[N, F]`` float in ``[0, 1]``, the backend's confidence per phrase and frame (0 = not found).
    """

    phrases: list[str]
    masks: torch.Tensor
    scores: torch.Tensor

    @property
    def union(self) -> torch.Tensor:
        """``[F, 1, H, W]`` bool: any phrase."""
        return self.masks.any(dim=0)

    def found(self, threshold: float = 0.0) -> torch.Tensor:
        """``[N, F]`` bool: the phrase has a non-empty mask with a score above ``threshold``."""
        return (self.masks.flatten(2).any(-1)) & (self.scores > threshold)

    def warn_missing(self) -> list[str]:
        """Warn (one line per phrase) about phrases found in no frame or only in some; returns the warnings."""
        msgs = []
        found = self.found()
        for phrase, per_frame in zip(self.phrases, found):
            missing = (~per_frame).nonzero().flatten().tolist()
            if len(missing) == len(per_frame):
                msgs.append(f"segmentation: no detection of {phrase!r} in any frame; its mask is empty")
            elif missing:
                msgs.append(f"segmentation: {phrase!r} not found in frames {_ranges(missing)}")
        for m in msgs:
            warnings.warn(m, stacklevel=2)
        return msgs


def _ranges(idx: list[int]) -> str:
    """``[0, 1, 2, 5]`` -> ``"0-2, 5"``."""
    out, start = [], None
    for i, v in enumerate(idx):
        if start is None:
            start = v
        if i + 1 == len(idx) or idx[i + 1] != v + 1:
            out.append(f"{start}-{v}" if v != start else f"{v}")
            start = None
    return ", ".join(out)


@runtime_checkable
class Segmenter(Protocol):
    """Anything with a ``name`` and ``segment(frames, phrases)``.

    ``frames`` is ``[F, 3, H, W]`` float in ``[0, 1]``; returns a :class:`Segmentation` whose masks have the
    frames' size. A phrase that is not found gives an empty mask and zero scores, never an exception.
    """

    name: str

    def segment(self, frames: torch.Tensor, phrases: list[str]) -> Segmentation: ...


# -- shared by the model-backed segmenters (grounded SAM 2, SAM 3) ----------------------------------------


def default_device() -> torch.device:
    """CUDA if available, else CPU."""
    return torch.device("cuda" if torch.cuda.is_available() else "cpu")


class hub_errors:
    """Context manager turning a failed download into a one-line :class:`DynVFXError`."""

    def __init__(self, model_id: str):
        self.model_id = model_id

    def __enter__(self):
        return self

    def __exit__(self, kind, err, tb):
        if kind is not None and issubclass(kind, OSError):
            reason = (str(err).strip().splitlines() or [kind.__name__])[0][:300]
            raise DynVFXError(f"could not load {self.model_id!r}: {reason} (it needs the Hugging Face hub, a "
                              "login for gated models, or a local copy: pass its folder instead of the id)") from err
        return False


def check_frames(frames: torch.Tensor) -> None:
    """ValueError unless ``frames`` is ``[F, 3, H, W]`` floating point with F >= 1."""
    if frames.ndim != 4 or frames.shape[1] != 3 or frames.shape[0] < 1 or not frames.is_floating_point():
        raise ValueError(f"frames must be [F, 3, H, W] float in [0, 1], got {tuple(frames.shape)} {frames.dtype}")


def empty_segmentation(phrases: list[str], shape: tuple[int, int, int]) -> Segmentation:
    """All-empty :class:`Segmentation` of ``phrases`` for a video of ``shape`` ``(F, H, W)``."""
    f, h, w = shape
    return Segmentation(phrases, torch.zeros(len(phrases), f, 1, h, w, dtype=torch.bool),
                        torch.zeros(len(phrases), f))
