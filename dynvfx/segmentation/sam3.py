"""SAM 3: text-prompted detection, segmentation and tracking in one model (transformers' ``Sam3VideoModel``).

Every phrase is a concept prompt; SAM 3 finds all its instances on every frame and tracks them. A phrase's mask
is the union of its instances, its score the best instance's detection score (0 where none is found).
"""

from __future__ import annotations

import contextlib

import numpy as np
import torch

from dynvfx.errors import DynVFXError
from dynvfx.segmentation.base import Segmentation, check_frames, default_device, empty_segmentation, hub_errors
from dynvfx.video import to_uint8

DEFAULT_SAM3 = "facebook/sam3"


class Sam3Unavailable(DynVFXError, ImportError):
    """The installed transformers has no SAM 3 video classes."""


def sam3_classes():
    """``(Sam3VideoModel, Sam3VideoProcessor)`` from transformers, or :class:`Sam3Unavailable` explaining why not."""
    import transformers

    try:
        return transformers.Sam3VideoModel, transformers.Sam3VideoProcessor
    except (AttributeError, ImportError) as e:
        version = getattr(transformers, "__version__", "?")
        raise Sam3Unavailable(
            f"--segmenter sam3 needs transformers' Sam3VideoModel and Sam3VideoProcessor, which transformers "
            f"{version} lacks ({e}); upgrade it (pip install -U transformers torchvision) or use "
            "--segmenter grounded-sam2") from e


class Sam3Segmenter:
    """Text -> masks on every frame with SAM 3's video model.

    Args:
        model: hub id (or local path) of a SAM 3 checkpoint (``facebook/sam3`` is gated: accept its licence
            on the hub and log in first).
        device: torch device; default CUDA if available, else CPU.
        dtype: the model's dtype (default float32).
        score_threshold: minimum detection score, used both to detect and to start a new track; default the
            checkpoint's (0.5 to detect, 0.7 to start a track).
        sam_model, sam_processor: a pre-built ``Sam3VideoModel`` / ``Sam3VideoProcessor`` instead of the id.
        offload_video: keep the preprocessed frames on the CPU.
        keep_on_device: if False, the model goes back to the CPU after each ``segment``.

    Raises:
        Sam3Unavailable: (an ImportError) if transformers has no SAM 3 video classes.
    """

    name = "sam3"

    def __init__(
        self,
        model: str = DEFAULT_SAM3,
        device: str | torch.device | None = None,
        dtype: torch.dtype | None = None,
        score_threshold: float | None = None,
        sam_model=None,
        sam_processor=None,
        offload_video: bool = True,
        keep_on_device: bool = True,
    ):
        self.model_class, self.processor_class = sam3_classes()
        self.model_id = model
        self.device = torch.device(device) if device is not None else default_device()
        self.dtype = dtype or torch.float32
        self.score_threshold = score_threshold
        self.sam_model, self.sam_processor = sam_model, sam_processor
        self.offload_video, self.keep_on_device = offload_video, keep_on_device
        self._loaded = False

    @property
    def hub_models(self) -> list[str]:
        """The ``from_pretrained`` names this segmenter will load (checked before any model loads)."""
        return [self.model_id] if self.sam_model is None else []

    def segment(self, frames: torch.Tensor, phrases: list[str]) -> Segmentation:
        """``frames`` ``[F, 3, H, W]`` float in [0, 1] -> masks ``[N, F, 1, H, W]`` bool and scores ``[N, F]``."""
        check_frames(frames)
        phrases = list(phrases)
        video = np.ascontiguousarray(to_uint8(frames))
        seg = empty_segmentation(phrases, video.shape[:3])
        if not phrases:
            return seg
        self.load()
        if not self.keep_on_device:
            self.to(self.device)  # back from the CPU
        try:
            with self._thresholds():
                for frame, found in self._track(video, list(dict.fromkeys(phrases))):
                    for i, phrase in enumerate(phrases):
                        if phrase in found:
                            seg.masks[i, frame, 0], seg.scores[i, frame] = found[phrase]
        finally:
            if not self.keep_on_device:
                self.to("cpu")
        return seg

    def load(self) -> None:
        """Build the model and processor if they were not given (once) and move the model to ``device``."""
        if self._loaded:
            return
        with hub_errors(self.model_id):
            if self.sam_model is None:
                self.sam_model = self.model_class.from_pretrained(self.model_id)
            if self.sam_processor is None:
                self.sam_processor = self.processor_class.from_pretrained(self.model_id)
        self.sam_model.eval()
        self._loaded = True
        self.to(self.device)

    def to(self, device: str | torch.device) -> Sam3Segmenter:
        """Move the loaded model (in ``dtype``) to ``device``; returns self."""
        if self.sam_model is not None:
            self.sam_model.to(device=device, dtype=self.dtype)
        if torch.device(device).type == "cpu" and torch.cuda.is_available():
            torch.cuda.empty_cache()
        return self

    def _track(self, video, prompts: list[str]):
        """Yield ``(frame, {prompt: (mask [H, W] bool, score)})`` over a ``[F, H, W, 3]`` uint8 video."""
        model, proc = self.sam_model, self.sam_processor
        device = next(model.parameters()).device
        session = proc.init_video_session(video=video, inference_device=device, dtype=self.dtype,
                                          video_storage_device="cpu" if self.offload_video else device)
        proc.add_text_prompt(session, prompts)
        for out in model.propagate_in_video_iterator(session):
            yield out.frame_idx, per_prompt(proc.postprocess_outputs(session, out))

    @contextlib.contextmanager
    def _thresholds(self):
        """Temporarily set the model's detection and new-track thresholds to ``score_threshold``."""
        model, names = self.sam_model, ("score_threshold_detection", "new_det_thresh")
        saved = {n: getattr(model, n) for n in names}
        if self.score_threshold is not None:
            for n in names:
                setattr(model, n, self.score_threshold)
        try:
            yield
        finally:
            for n, v in saved.items():
                setattr(model, n, v)


def per_prompt(outputs: dict) -> dict[str, tuple[torch.Tensor, float]]:
    """``Sam3VideoProcessor.postprocess_outputs`` -> ``{prompt: (union mask [H, W] bool, best score)}``."""
    ids = outputs["object_ids"].tolist()
    found = {}
    for prompt, obj_ids in outputs["prompt_to_obj_ids"].items():
        rows = [ids.index(o) for o in obj_ids if o in ids]
        if rows:
            mask = outputs["masks"][rows].any(0).cpu()
            if mask.any():
                found[prompt] = mask, float(outputs["scores"][rows].max().clamp(0, 1))
    return found
