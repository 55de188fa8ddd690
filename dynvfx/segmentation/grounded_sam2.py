"""Grounded SAM 2: text grounding on key frames, then SAM 2 video propagation (real videos).

1. A zero-shot detector (Grounding DINO or OWLv2, from ``transformers``) looks for every phrase on a few key frames.
2. The best box per phrase (or one per key frame, ``seed="all"``) prompts SAM 2 at its frame.
3. SAM 2 propagates the boxes forward and backward over the whole video (``Sam2VideoModel``'s inference session;
   Meta's ``sam2`` package is an optional alternative, ``sam_backend="sam2"``).

A phrase that no key frame grounds gets an empty mask and zero scores. Models load lazily, once, on the first
``segment`` call; pre-built models and processors can be passed instead of hub ids (the tests use tiny random ones).
"""

from __future__ import annotations

import dataclasses
import re
import tempfile
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch

from dynvfx.errors import DynVFXError
from dynvfx.segmentation.base import Segmentation, check_frames, default_device, empty_segmentation, hub_errors
from dynvfx.video import to_uint8

DEFAULT_DETECTOR = "IDEA-Research/grounding-dino-tiny"
DEFAULT_SAM = "facebook/sam2.1-hiera-tiny"
DEFAULT_BOX_THRESHOLD = {"grounding-dino": 0.35, "owl": 0.1}
SAM_BACKENDS = ("transformers", "sam2")


@dataclasses.dataclass(frozen=True)
class Detection:
    """One grounded box: ``frame`` index, ``box`` ``(x0, y0, x1, y1)`` in pixels of the frames, ``score`` in [0, 1]."""

    frame: int
    box: tuple[float, float, float, float]
    score: float


class GroundedSam2Segmenter:
    """Text -> boxes on key frames (Grounding DINO / OWLv2) -> SAM 2 masks on every frame.

    Args:
        detector: hub id (or local path) of a Grounding DINO or OWLv2 checkpoint.
        sam: hub id (or local path) of a SAM 2 checkpoint.
        device: torch device; default CUDA if available, else CPU.
        dtype: SAM 2's dtype (default float32; bfloat16 on Ampere+). The detector always runs in float32.
        box_threshold: minimum detector score; default 0.35 for Grounding DINO, 0.1 for OWLv2.
        text_threshold: Grounding DINO's token threshold; a box whose matched tokens hold no word is dropped.
        keyframes: ``k`` evenly spaced frames (first and last included) or explicit frame indices.
        seed: ``"best"`` prompts SAM 2 with each phrase's single best box; ``"all"`` with its best box on
            every key frame where it was found.
        detector_model, detector_processor, sam_model, sam_processor: pre-built objects used instead of the ids.
            With ``sam_backend="sam2"``, ``sam_model`` is a ``SAM2VideoPredictor``.
        sam_backend: ``"transformers"`` (``Sam2VideoModel``) or ``"sam2"`` (Meta's package, if installed).
        offload_video: keep SAM 2's preprocessed frames on the CPU (saves ~12 MB of GPU memory per frame).
        keep_on_device: if False, the models go back to the CPU after each ``segment`` (frees the GPU).
    """

    name = "grounded-sam2"

    def __init__(
        self,
        detector: str = DEFAULT_DETECTOR,
        sam: str = DEFAULT_SAM,
        device: str | torch.device | None = None,
        dtype: torch.dtype | None = None,
        box_threshold: float | None = None,
        text_threshold: float = 0.25,
        keyframes: int | Sequence[int] = 3,
        seed: str = "best",
        detector_model=None,
        detector_processor=None,
        sam_model=None,
        sam_processor=None,
        sam_backend: str = "transformers",
        offload_video: bool = True,
        keep_on_device: bool = True,
    ):
        if seed not in ("best", "all"):
            raise ValueError(f"seed must be 'best' or 'all', got {seed!r}")
        if sam_backend not in SAM_BACKENDS:
            raise ValueError(f"sam_backend must be one of {SAM_BACKENDS}, got {sam_backend!r}")
        self.detector_id, self.sam_id = detector, sam
        self.device = torch.device(device) if device is not None else default_device()
        self.dtype = dtype or torch.float32
        self.box_threshold, self.text_threshold = box_threshold, text_threshold
        self.keyframes, self.seed = keyframes, seed
        self.detector_model, self.detector_processor = detector_model, detector_processor
        self.sam_model, self.sam_processor = sam_model, sam_processor
        self.sam_backend = sam_backend
        self.offload_video, self.keep_on_device = offload_video, keep_on_device
        self._loaded = False

    @property
    def hub_models(self) -> list[str]:
        """The ``from_pretrained`` names this segmenter will load (checked before any model loads)."""
        loaded = (self.detector_model is not None, self.sam_model is not None or self.sam_backend != "transformers")
        return [m for m, done in zip((self.detector_id, self.sam_id), loaded) if not done]

    # -- public API --------------------------------------------------------------------------------------------

    def segment(self, frames: torch.Tensor, phrases: list[str]) -> Segmentation:
        """``frames`` ``[F, 3, H, W]`` float in [0, 1] -> masks ``[N, F, 1, H, W]`` bool and scores ``[N, F]``."""
        check_frames(frames)
        phrases = list(phrases)
        video = np.ascontiguousarray(to_uint8(frames))
        if not phrases:
            return empty_segmentation(phrases, video.shape[:3])
        self.load()
        if not self.keep_on_device:
            self.to(self.device)  # back from the CPU
        try:
            detections = self.detect(video, phrases)
            seeds = choose_seeds(detections, self.seed)
            masks, scores = self.propagate(video, seeds, len(phrases))
        finally:
            if not self.keep_on_device:
                self.to("cpu")
        return Segmentation(phrases, masks, scores)

    def detect(self, video: np.ndarray, phrases: list[str]) -> list[list[Detection]]:
        """Ground ``phrases`` on the key frames of a ``[F, H, W, 3]`` uint8 video.

        Returns, per phrase, its best box on each key frame where it was found, best first.
        """
        self.load()
        found: list[list[Detection]] = [[] for _ in phrases]
        for f in keyframe_indices(len(video), self.keyframes):
            for i, hit in enumerate(self._ground(video[f], phrases)):
                if hit is not None:
                    found[i].append(Detection(f, *hit))
        return [sorted(d, key=lambda d: -d.score) for d in found]

    def propagate(self, video: np.ndarray, seeds: dict[int, list[Detection]], num_phrases: int):
        """Track box prompts ``{phrase index: detections}`` through a ``[F, H, W, 3]`` uint8 video.

        Returns masks ``[N, F, 1, H, W]`` bool and scores ``[N, F]`` (SAM 2's object presence probability,
        0 where the mask is empty); phrases without seeds stay empty.
        """
        masks = torch.zeros(num_phrases, *video.shape[:1], 1, *video.shape[1:3], dtype=torch.bool)
        scores = torch.zeros(num_phrases, len(video))
        if not seeds:
            return masks, scores
        self.load()
        run = self._propagate_sam2_package if self.sam_backend == "sam2" else self._propagate_transformers
        for frame, obj_ids, frame_masks, presence in run(video, seeds):
            for row, obj in enumerate(obj_ids):
                masks[obj, frame, 0] = frame_masks[row]
                scores[obj, frame] = float(presence[row]) if frame_masks[row].any() else 0.0
        return masks, scores

    def load(self) -> None:
        """Build whatever model or processor was not given (once) and move the models to ``device``."""
        if self._loaded:
            return
        if self.detector_model is None or self.detector_processor is None:
            self.detector_model, self.detector_processor = _load_detector(
                self.detector_id, self.detector_model, self.detector_processor)
        if self.sam_backend == "sam2":
            if self.sam_model is None:
                self.sam_model = _load_sam2_predictor(self.sam_id, self.device)
        elif self.sam_model is None or self.sam_processor is None:
            self.sam_model, self.sam_processor = _load_sam(self.sam_id, self.sam_model, self.sam_processor)
        detector_family(self.detector_model)  # fail early on an unsupported detector
        self.detector_model.eval()
        if self.sam_backend == "transformers":
            self.sam_model.eval()
        self._loaded = True
        self.to(self.device)

    def to(self, device: str | torch.device) -> GroundedSam2Segmenter:
        """Move the loaded models (the SAM 2 one in ``dtype``) to ``device``; returns self."""
        if self.detector_model is not None:
            self.detector_model.to(device)
        if self.sam_backend == "transformers" and self.sam_model is not None:
            self.sam_model.to(device=device, dtype=self.dtype)
        if torch.device(device).type == "cpu" and torch.cuda.is_available():
            torch.cuda.empty_cache()
        return self

    # -- detection ---------------------------------------------------------------------------------------------

    def _ground(self, image: np.ndarray, phrases: list[str]) -> list[tuple | None]:
        """Best ``(box, score)`` per phrase in one ``[H, W, 3]`` uint8 image, or None where nothing passes."""
        family = detector_family(self.detector_model)
        threshold = self.box_threshold if self.box_threshold is not None else DEFAULT_BOX_THRESHOLD[family]
        if family == "owl":
            return self._ground_owl(image, phrases, threshold)
        return [self._ground_gdino(image, p, threshold) for p in phrases]

    def _ground_gdino(self, image: np.ndarray, phrase: str, threshold: float) -> tuple | None:
        """Grounding DINO on one phrase (one query per phrase keeps the labels unambiguous)."""
        proc, size = self.detector_processor, image.shape[:2]
        inputs = proc(images=image, text=gdino_query(phrase), return_tensors="pt").to(self._detector_device())
        with torch.inference_mode():
            outputs = self.detector_model(**inputs)
        res = proc.post_process_grounded_object_detection(
            outputs, inputs["input_ids"], threshold=threshold, text_threshold=self.text_threshold,
            target_sizes=[size])[0]
        labels = list(res["text_labels"])  # may hold a stray "" when no box passes
        keep = [i for i in range(len(res["scores"])) if i < len(labels) and has_words(labels[i])]
        return best_box(res["scores"], res["boxes"], keep, size)

    def _ground_owl(self, image: np.ndarray, phrases: list[str], threshold: float) -> list[tuple | None]:
        """OWLv2 on all phrases at once; labels index the phrases."""
        proc, size = self.detector_processor, image.shape[:2]
        inputs = proc(text=[list(phrases)], images=image, return_tensors="pt").to(self._detector_device())
        with torch.inference_mode():
            outputs = self.detector_model(**inputs)
        res = proc.post_process_grounded_object_detection(outputs, threshold=threshold, target_sizes=[size])[0]
        labels = res["labels"].tolist()
        return [best_box(res["scores"], res["boxes"], [j for j, l in enumerate(labels) if l == i], size)
                for i in range(len(phrases))]

    def _detector_device(self) -> torch.device:
        return next(self.detector_model.parameters()).device

    # -- propagation -------------------------------------------------------------------------------------------

    def _propagate_transformers(self, video: np.ndarray, seeds: dict[int, list[Detection]]):
        """Yield ``(frame, obj_ids, masks [n, H, W] bool, presence [n])`` from transformers' SAM 2 video session."""
        model, proc = self.sam_model, self.sam_processor
        device = next(model.parameters()).device
        session = proc.init_video_session(
            video=video, inference_device=device, dtype=self.dtype,
            video_storage_device="cpu" if self.offload_video else device)
        size = [list(video.shape[1:3])]
        with torch.inference_mode():
            for frame, items in seeds_by_frame(seeds):
                proc.add_inputs_to_inference_session(
                    session, frame_idx=frame, obj_ids=[i for i, _ in items],
                    input_boxes=[[list(d.box) for _, d in items]])
                model(inference_session=session, frame_idx=frame)  # conditioning output for the new prompts
            start = min(seeds_frames(seeds))
            for reverse in (False, True):
                for out in model.propagate_in_video_iterator(session, start_frame_idx=start, reverse=reverse):
                    masks = proc.post_process_masks([out.pred_masks], size, binarize=True)[0][:, 0]
                    logits = out.object_score_logits.reshape(len(out.object_ids), -1)[:, 0]
                    yield out.frame_idx, list(out.object_ids), masks.cpu(), logits.float().sigmoid().cpu()

    def _propagate_sam2_package(self, video: np.ndarray, seeds: dict[int, list[Detection]]):
        """Same as :meth:`_propagate_transformers` with Meta's ``SAM2VideoPredictor`` (frames go through JPEGs)."""
        predictor = self.sam_model
        with tempfile.TemporaryDirectory() as folder, torch.inference_mode():
            write_jpegs(video, Path(folder))
            state = predictor.init_state(video_path=folder, offload_video_to_cpu=self.offload_video)
            for frame, items in seeds_by_frame(seeds):
                for obj, det in items:
                    predictor.add_new_points_or_box(state, frame_idx=frame, obj_id=obj,
                                                    box=np.asarray(det.box, dtype=np.float32))
            start = min(seeds_frames(seeds))
            for reverse in (False, True):
                for frame, obj_ids, logits in predictor.propagate_in_video(state, start_frame_idx=start,
                                                                           reverse=reverse):
                    logits = logits[:, 0].float().cpu()
                    yield frame, list(obj_ids), logits > 0, logits.flatten(1).amax(1).sigmoid()


# -- loading ---------------------------------------------------------------------------------------------------


def _load_detector(model_id: str, model=None, processor=None):
    """Zero-shot detector and its processor from the hub (only the missing ones)."""
    from transformers import AutoModelForZeroShotObjectDetection, AutoProcessor

    with hub_errors(model_id):
        model = model if model is not None else AutoModelForZeroShotObjectDetection.from_pretrained(model_id)
        processor = processor if processor is not None else AutoProcessor.from_pretrained(model_id)
    return model.eval(), processor


def _load_sam(model_id: str, model=None, processor=None):
    """transformers' ``Sam2VideoModel`` and ``Sam2VideoProcessor`` from the hub (only the missing ones)."""
    from transformers import Sam2VideoModel, Sam2VideoProcessor

    with hub_errors(model_id):
        model = model if model is not None else Sam2VideoModel.from_pretrained(model_id)
        processor = processor if processor is not None else Sam2VideoProcessor.from_pretrained(model_id)
    return model.eval(), processor


def _load_sam2_predictor(model_id: str, device: torch.device):
    """Meta's ``SAM2VideoPredictor`` (the ``sam2`` package, not installed by dynvfx)."""
    try:
        from sam2.sam2_video_predictor import SAM2VideoPredictor
    except ImportError as e:
        raise DynVFXError("sam_backend='sam2' needs Meta's sam2 package "
                          "(pip install 'git+https://github.com/facebookresearch/sam2.git'); "
                          "or use sam_backend='transformers'") from e
    with hub_errors(model_id):
        return SAM2VideoPredictor.from_pretrained(model_id, device=str(device))


# -- small helpers ---------------------------------------------------------------------------------------------


def detector_family(model) -> str:
    """``"grounding-dino"`` or ``"owl"`` from the model's config; ValueError for anything else."""
    kind = getattr(getattr(model, "config", None), "model_type", "") or ""
    if "grounding" in kind:
        return "grounding-dino"
    if kind.startswith("owl"):
        return "owl"
    raise ValueError(f"unsupported detector {type(model).__name__} (model_type {kind!r}); "
                     "use Grounding DINO or OWLv2")


def keyframe_indices(num_frames: int, keyframes: int | Sequence[int]) -> list[int]:
    """Frames to ground on: ``k`` evenly spaced ones (first and last included) or explicit (negative ok) indices."""
    if isinstance(keyframes, int):
        if keyframes < 1:
            raise ValueError(f"keyframes must be >= 1, got {keyframes}")
        k = min(keyframes, num_frames)
        return sorted({round(i * (num_frames - 1) / max(k - 1, 1)) for i in range(k)})
    bad = [i for i in keyframes if not -num_frames <= i < num_frames]
    if bad or not keyframes:
        raise ValueError(f"keyframes {list(keyframes)} out of range for {num_frames} frames")
    return sorted({i % num_frames for i in keyframes})


def gdino_query(phrase: str) -> str:
    """Grounding DINO wants lower case text ending with a dot: ``"Red ball"`` -> ``"red ball."``."""
    text = phrase.strip().lower()
    return text if text.endswith(".") else text + "."


def has_words(label: str) -> bool:
    """True if a decoded Grounding DINO label holds a word besides special tokens and punctuation."""
    return bool(re.search(r"\w", re.sub(r"\[[A-Z]+\]|<[^>]*>", " ", label)))


def best_box(scores: torch.Tensor, boxes: torch.Tensor, keep: list[int], size: tuple[int, int]) -> tuple | None:
    """The highest-scoring ``(box, score)`` among indices ``keep`` (box clipped to ``size`` (H, W)), or None."""
    if not keep:
        return None
    j = max(keep, key=lambda i: float(scores[i]))
    return clip_box(boxes[j].tolist(), size), float(scores[j])


def clip_box(box: list[float], size: tuple[int, int]) -> tuple[float, float, float, float]:
    """Clip ``(x0, y0, x1, y1)`` to an image of ``size`` (H, W), keeping at least one pixel of width and height."""
    h, w = size
    x0, x1 = sorted((min(max(box[0], 0.0), w - 1.0), min(max(box[2], 0.0), float(w))))
    y0, y1 = sorted((min(max(box[1], 0.0), h - 1.0), min(max(box[3], 0.0), float(h))))
    return x0, y0, max(x1, x0 + 1.0), max(y1, y0 + 1.0)


def choose_seeds(detections: list[list[Detection]], seed: str = "best") -> dict[int, list[Detection]]:
    """Box prompts per phrase index: its best detection (``"best"``) or all of them (``"all"``)."""
    return {i: (d[:1] if seed == "best" else list(d)) for i, d in enumerate(detections) if d}


def seeds_by_frame(seeds: dict[int, list[Detection]]) -> list[tuple[int, list[tuple[int, Detection]]]]:
    """``[(frame, [(phrase index, detection), ...]), ...]`` in frame order."""
    frames: dict[int, list[tuple[int, Detection]]] = {}
    for obj, dets in seeds.items():
        for d in dets:
            frames.setdefault(d.frame, []).append((obj, d))
    return sorted(frames.items())


def seeds_frames(seeds: dict[int, list[Detection]]) -> list[int]:
    """Every frame that holds a prompt."""
    return [d.frame for dets in seeds.values() for d in dets]


def write_jpegs(video: np.ndarray, folder: Path) -> None:
    """``[F, H, W, 3]`` uint8 -> ``folder/00000.jpg ...`` (the layout Meta's predictor reads)."""
    from PIL import Image

    for i, frame in enumerate(video):
        Image.fromarray(frame).save(folder / f"{i:05d}.jpg", quality=95)
