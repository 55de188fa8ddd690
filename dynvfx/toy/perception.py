"""Colour and motion analysis of toy-world videos, from the pixels alone: what the toy tools see.

Nothing here looks at a :class:`~dynvfx.toy.world.Scene`: objects are found by colour, split into connected
components and tracked across frames; the motion comes from each object's centroid track. So the same code
works on the renderer's clean videos and on the toy model's blurrier, noisier generations. Shape is read only
as far as "is this blob ball-sized and disc-like" (:func:`looks_like_ball`): the toy vocabulary has one object
noun, "ball".

Videos are torch ``[F, 3, H, W]`` (the library's convention) or numpy ``[F, H, W, 3]``, float in ``[0, 1]``.
Masks are numpy bool ``[F, H, W]``; tracks are numpy ``[F, 2]`` centroids ``(x, y)`` in pixels.

How a pixel gets a colour: with ``b`` the background colour and ``c`` a toy colour, a pixel ``p`` on the
edge of a blurred ``c`` object is roughly the mix ``b + a (c - b)``. Each pixel is projected onto every
segment ``b -> c``; it belongs to the colour whose segment it lies closest to (small *residual*), provided
it is more object than background (``a > 0.5``, which is where the renderer's own mask threshold sits).
"""

from __future__ import annotations

import dataclasses

import numpy as np
import torch
from scipy import ndimage, optimize

from dynvfx.toy import world
from dynvfx.toy.vocabulary import NOUN

COLOUR_NAMES: tuple[str, ...] = tuple(world.COLOURS)
#: The colours a pixel is fitted to: the balls' (``COLOUR_NAMES``' order), then the box's (``BOX_LABEL``).
_PALETTE = np.asarray([world.COLOURS[c] for c in COLOUR_NAMES] + [world.BOX_COLOUR], np.float32)  # [K + 1, 3]
BOX_LABEL = len(COLOUR_NAMES)  # colour_labels(..., box=True)'s label for the box's colour
_EIGHT = np.ones((3, 3), bool)  # 8-connectivity

#: Defaults, in RGB units (0-1) unless stated.
MAX_RESIDUAL = 0.25  # farthest a pixel may sit from a background->colour segment
MIN_CONTRAST = 0.2  # a colour this close to the background cannot be told apart from it
MIN_AREA_FRAC = 0.008  # smallest component, fraction of the frame area (18 px at 48 x 48; objects are >= 70)
MIN_PRESENCE = 0.3  # a track must be seen in at least this fraction of frames
MAX_JUMP_FRAC = 0.3  # largest centroid jump between linked detections, fraction of min(H, W)
DENOISE_SIGMA = 0.7  # pixels; light Gaussian smoothing before labelling (0 = off)
FAINT_ALPHA = 0.2  # detect_objects finds blobs down to this coverage, then keeps each one's half-maximum
BLOB_AREA = (0.4, 1.6)  # a blob's area bounds, relative to the renderer's smallest / largest ball (pi r^2)
MIN_COMPACTNESS = 0.75  # see compactness(): 1 for a disc, 0.92 for a 3:2 ellipse, 0.8 for 2:1 (renderer >= 0.85)


@dataclasses.dataclass
class DetectedObject:
    """One tracked object.

    Attributes:
        colour, motion: names from :mod:`dynvfx.toy.world` (``motion`` may also be ``"still"``).
        masks: ``[F, H, W]`` bool, the object's pixels per frame (empty where absent).
        track: ``[F, 2]`` float centroid ``(x, y)`` in pixels, NaN where absent.
        presence: fraction of frames in which the object was seen, in ``[0, 1]``.
        scores: ``[F]`` float in ``[0, 1]``, per frame the mean over the mask of colour-fit confidence times
            coverage (~0.9 for a crisp object, lower for a faint or off-colour one; 0 where absent).
    """

    colour: str
    motion: str
    masks: np.ndarray
    track: np.ndarray
    presence: float
    scores: np.ndarray

    @property
    def phrase(self) -> str:
        """E.g. ``"red ball"`` (every toy object is named with the one noun, ``NOUN``)."""
        return f"{self.colour} {NOUN}"

    @property
    def triple(self) -> tuple[str, str, str]:
        """``(colour, "ball", motion)``, as :func:`world.caption_for` takes it."""
        return (self.colour, NOUN, self.motion)

    @property
    def mean_area(self) -> float:
        """Mean mask area over the frames where the object is present, pixels."""
        areas = self.masks.reshape(len(self.masks), -1).sum(1)
        return float(areas[areas > 0].mean()) if areas.any() else 0.0


# ----------------------------------------------------------------------------- input and background


def as_video(frames: torch.Tensor | np.ndarray) -> np.ndarray:
    """Any supported video layout -> numpy ``[F, H, W, 3]`` float32.

    Torch tensors are read as ``[F, 3, H, W]`` and numpy arrays as ``[F, H, W, 3]``; either also works in
    the other layout, and a single frame (no ``F`` axis) is taken as a one-frame video.
    """
    channels_first = isinstance(frames, torch.Tensor)
    x = frames.detach().cpu().float().numpy() if channels_first else np.asarray(frames, np.float32)
    if x.ndim == 3:
        x = x[None]
    if x.ndim != 4 or 3 not in (x.shape[1], x.shape[-1]):
        raise ValueError(f"expected a video [F, 3, H, W] or [F, H, W, 3], got shape {tuple(x.shape)}")
    if (channels_first and x.shape[1] == 3) or x.shape[-1] != 3:
        x = x.transpose(0, 2, 3, 1)
    return np.ascontiguousarray(x, dtype=np.float32)


def border_pixels(video: np.ndarray, width: int | None = None) -> np.ndarray:
    """Pixels of a frame-edge band ``width`` px wide (default ~H/24): ``[F, P, 3]`` from ``[F, H, W, 3]``."""
    f, h, w, _ = video.shape
    b = width or max(1, min(h, w) // 24)
    band = np.zeros((h, w), bool)
    band[:b], band[-b:], band[:, :b], band[:, -b:] = True, True, True, True
    return video[:, band]


def background_rgb(video: np.ndarray) -> np.ndarray:
    """Per-frame background colour, the median of the border pixels: ``[F, 3]`` from ``[F, H, W, 3]``."""
    return np.median(border_pixels(video), axis=1).astype(np.float32)


def background_colour(frames: torch.Tensor | np.ndarray) -> str:
    """Name of the toy background (a key of ``world.BACKGROUNDS``) nearest to the border's median colour."""
    rgb = np.median(border_pixels(as_video(frames)).reshape(-1, 3), axis=0)
    names = list(world.BACKGROUNDS)
    refs = np.asarray([world.BACKGROUNDS[n] for n in names])
    return names[int(np.argmin(np.linalg.norm(refs - rgb, axis=1)))]


def flat_colours() -> tuple[list[str], np.ndarray]:
    """The toy world's flat colours: names and ``[K, 3]`` RGB, the backgrounds first, then the ball colours, then
    the box's."""
    names = [*world.BACKGROUNDS, *COLOUR_NAMES, world.BOX_WORD]
    rgb = world.BACKGROUNDS | world.COLOURS | {world.BOX_WORD: world.BOX_COLOUR}
    return names, np.asarray([rgb[n] for n in names], np.float32)


# ----------------------------------------------------------------------------- per-pixel colour labels


def _denoise(video: np.ndarray, sigma: float) -> np.ndarray:
    """Light spatial Gaussian blur of ``[F, H, W, 3]`` (sigma in pixels); identity if ``sigma <= 0``."""
    return ndimage.gaussian_filter(video, (0, sigma, sigma, 0)) if sigma > 0 else video


def _prepare(frames: torch.Tensor | np.ndarray, sigma: float) -> tuple[np.ndarray, np.ndarray]:
    """The video minus its background, ``[F, H, W, 3]`` (lightly denoised first), and the background ``[F, 3]``."""
    video = _denoise(as_video(frames), sigma)
    bg = background_rgb(video)
    return video - bg[:, None, None, :], bg  # a new array: never write into the caller's frames


def _fit_colour(rel: np.ndarray, bg: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """Fit every pixel as ``bg + a (colour_k - bg)``.

    Args:
        rel: ``[F, H, W, 3]``, the video minus its background ``bg`` (``[F, 3]``).
    Returns:
        alpha: ``[F, H, W]``, the mix weight ``a`` clipped to ``[0, 1]`` (an estimate of coverage).
        residual: ``[F, H, W]``, the distance (RGB units) from the pixel to the segment ``bg -> colour``;
        infinite in frames whose background is within ``MIN_CONTRAST`` of the colour.
    """
    d = _PALETTE[k][None] - bg  # [F, 3]
    norm2 = (d**2).sum(-1)[:, None, None]  # [F, 1, 1]
    proj = np.einsum("fhwc,fc->fhw", rel, d)
    alpha = np.clip(proj / np.maximum(norm2, 1e-8), 0.0, 1.0)
    sq = np.einsum("fhwc,fhwc->fhw", rel, rel) - 2 * alpha * proj + alpha**2 * norm2
    residual = np.sqrt(np.maximum(sq, 0.0))
    residual[np.broadcast_to(norm2 < MIN_CONTRAST**2, residual.shape)] = np.inf
    return alpha, residual


def _labels(
    rel: np.ndarray, bg: np.ndarray, max_residual: float, min_alpha: float, box: bool
) -> tuple[np.ndarray, np.ndarray]:
    """Per-pixel colour index ``[F, H, W]`` (-1: none) and confidence ``[F, H, W]``; see :func:`colour_labels`."""
    best_res = np.full(rel.shape[:3], np.inf, np.float32)
    labels = np.full(rel.shape[:3], -1, np.int8)
    for k in range(len(_PALETTE)):
        alpha, residual = _fit_colour(rel, bg, k)
        better = (alpha > min_alpha) & (residual < best_res) & (residual < max_residual)
        best_res[better], labels[better] = residual[better], k
    if not box:
        labels[labels == BOX_LABEL] = -1
    confidence = np.where(labels >= 0, 1.0 - best_res / max_residual, 0.0).astype(np.float32)
    return labels, confidence


def _chunks(n: int, size: int = 8) -> list[slice]:
    """Consecutive frame slices of at most ``size`` frames covering ``range(n)``."""
    return [slice(i, i + size) for i in range(0, n, size)]


def colour_labels(
    frames: torch.Tensor | np.ndarray,
    max_residual: float = MAX_RESIDUAL,
    sigma: float = DENOISE_SIGMA,
    min_alpha: float = 0.5,
    box: bool = False,
) -> tuple[np.ndarray, np.ndarray]:
    """Label each pixel of a video ``[F, 3, H, W]`` with its toy colour.

    A pixel gets the colour (a ball's or the box's) whose background->colour segment it is nearest to, if it
    lies past ``min_alpha`` of the way along it (0.5: more object than background) and within ``max_residual``
    (RGB units) of it; ``sigma`` (pixels) is the light denoising blur applied first. Works through the video a
    few frames at a time to bound memory.

    Returns:
        labels: ``[F, H, W]`` int8, an index into ``COLOUR_NAMES``, or -1 for background / no toy colour; the
            box's pixels are -1 too, or ``BOX_LABEL`` with ``box=True``.
        confidence: ``[F, H, W]`` float in ``[0, 1]``, ``1 - residual / max_residual`` (0 for -1 pixels).
    """
    video = as_video(frames)
    parts = [_labels(*_prepare(video[c], sigma), max_residual, min_alpha, box) for c in _chunks(len(video))]
    return np.concatenate([p[0] for p in parts]), np.concatenate([p[1] for p in parts])


def colour_alpha(frames: torch.Tensor | np.ndarray, colour: str, sigma: float = DENOISE_SIGMA) -> np.ndarray:
    """``[F, H, W]`` coverage estimate in ``[0, 1]`` of toy colour ``colour`` in a video ``[F, 3, H, W]``."""
    video, k = as_video(frames), COLOUR_NAMES.index(colour)
    return np.concatenate([_fit_colour(*_prepare(video[c], sigma), k)[0] for c in _chunks(len(video))])


def colour_mask(frames: torch.Tensor | np.ndarray, colour: str, **kwargs) -> np.ndarray:
    """``[F, H, W]`` bool: pixels of toy colour ``colour`` (see :func:`colour_labels` for ``kwargs``)."""
    if colour not in world.COLOURS:
        raise ValueError(f"unknown toy colour {colour!r}; choose one of {', '.join(COLOUR_NAMES)}")
    labels, _ = colour_labels(frames, **kwargs)
    return labels == COLOUR_NAMES.index(colour)


def box_pixels(frames: torch.Tensor | np.ndarray, **kwargs) -> np.ndarray:
    """``[F, H, W]`` bool: the pixels of a video ``[F, 3, H, W]`` that show the box's colour, as
    :func:`colour_labels` reads them (``kwargs``)."""
    return colour_labels(frames, box=True, **kwargs)[0] == BOX_LABEL


def sees_box(frames: torch.Tensor | np.ndarray, pixels: np.ndarray | None = None) -> bool:
    """Whether a video shows the box: its colour as one patch at least a small ball's size (the box is larger
    than any ball) in most frames (``pixels``: the video's :func:`box_pixels`, if already found)."""
    found = box_pixels(frames) if pixels is None else pixels
    f, h, w = found.shape
    least = ball_area_range(h, w)[0]
    return bool(np.mean([max((c.sum() for c in components(m, 1)), default=0) >= least for m in found]) >= 0.5)


# ----------------------------------------------------------------------------- components and tracking


def components(mask: np.ndarray, min_area: int) -> list[np.ndarray]:
    """Connected components (8-connected) of one ``[H, W]`` bool mask with at least ``min_area`` pixels."""
    lab, n = ndimage.label(mask, structure=_EIGHT)
    if n == 0:
        return []
    areas = np.bincount(lab.ravel(), minlength=n + 1)
    return [lab == i for i in range(1, n + 1) if areas[i] >= min_area]


def centroid(mask: np.ndarray) -> np.ndarray:
    """Centre of mass ``(x, y)`` in pixels of a non-empty ``[H, W]`` bool mask: ``[2]``."""
    ys, xs = np.nonzero(mask)
    return np.array([xs.mean() + 0.5, ys.mean() + 0.5])  # pixel centres, as world.centres counts


def _link(tracks: list[dict], blobs: list[np.ndarray], f: int, max_jump: float) -> None:
    """Append frame ``f``'s ``blobs`` (``[H, W]`` masks) to the nearest ``tracks``, or start new tracks."""
    cents = [centroid(b) for b in blobs]
    if tracks and blobs:
        last = np.array([t["last"] for t in tracks])
        cost = np.linalg.norm(last[:, None] - np.array(cents)[None], axis=-1)
        rows, cols = optimize.linear_sum_assignment(cost)
        pairs = [(r, c) for r, c in zip(rows, cols) if cost[r, c] <= max_jump]
    else:
        pairs = []
    for r, c in pairs:
        tracks[r]["blobs"][f], tracks[r]["last"] = blobs[c], cents[c]
    taken = {c for _, c in pairs}
    tracks += [{"blobs": {f: b}, "last": cents[i]} for i, b in enumerate(blobs) if i not in taken]


def half_maximum(layer: np.ndarray, alpha: np.ndarray, min_area: int) -> np.ndarray:
    """Trim every blob of a colour layer to where its coverage exceeds half the blob's peak (99th percentile).

    Args:
        layer: ``[F, H, W]`` bool, pixels of one colour (found down to a low coverage);
        alpha: ``[F, H, W]`` that colour's coverage; min_area: smallest blob kept, px.
    Returns:
        ``[F, H, W]`` bool. A solid object is cut at coverage 0.5 (as the renderer's masks are), a faint one
        lower; neighbours that the faint fringe joined come apart again.
    """
    out = np.zeros_like(layer)
    for f, frame in enumerate(layer):
        for blob in components(frame, min_area):
            out[f] |= blob & (alpha[f] > 0.5 * np.percentile(alpha[f][blob], 99))
    return out


def track_colour(layer: np.ndarray, min_area: int, max_jump: float) -> list[np.ndarray]:
    """Split one colour's ``[F, H, W]`` bool mask into tracked objects, each an ``[F, H, W]`` bool mask."""
    tracks: list[dict] = []
    for f, frame in enumerate(layer):
        _link(tracks, components(frame, min_area), f, max_jump)
    out = []
    for t in tracks:
        masks = np.zeros_like(layer)
        for f, blob in t["blobs"].items():
            masks[f] = blob
        out.append(masks)
    return out


# ----------------------------------------------------------------------------- motion


def centroid_track(masks: np.ndarray) -> np.ndarray:
    """``[F, 2]`` centroids ``(x, y)`` in pixels of ``[F, H, W]`` masks, NaN in empty frames."""
    return np.array([centroid(m) if m.any() else (np.nan, np.nan) for m in masks])


def _ends(track: np.ndarray, k: int = 3) -> tuple[np.ndarray, np.ndarray]:
    """Start and end positions ``[2]`` each: medians of the first and last ``k`` valid points."""
    valid = track[~np.isnan(track).any(1)]
    k = max(1, min(k, len(valid) // 3))
    return np.median(valid[:k], axis=0), np.median(valid[-k:], axis=0)


def classify_motion(track: np.ndarray, min_move: float = 3.0) -> str:
    """``"left"``, ``"right"``, ``"up"``, ``"down"``, ``"bounce"`` or ``"still"`` from ``[F, 2]`` centroids.

    A bounce falls and comes back: the lowest point sits well below both ends (by ``min_move`` pixels and
    by more than half the net displacement). Otherwise the larger of the net x / y displacements (pixels)
    names the direction, or ``"still"`` if neither reaches ``min_move``. NaN rows (absent) are skipped.
    """
    valid = track[~np.isnan(track).any(1)]
    if len(valid) < 2:
        return "still"
    start, end = _ends(track)
    dx, dy = end - start
    sag = np.max(ndimage.median_filter(valid[:, 1], size=3, mode="nearest")) - max(start[1], end[1])
    if sag > min_move and sag > 0.5 * max(abs(dx), abs(dy)):
        return "bounce"
    if max(abs(dx), abs(dy)) < min_move:
        return "still"
    if abs(dx) >= abs(dy):
        return "right" if dx > 0 else "left"
    return "down" if dy > 0 else "up"


# ----------------------------------------------------------------------------- objects


def _describe(colour: str, masks: np.ndarray, alpha: np.ndarray, confidence: np.ndarray) -> DetectedObject:
    """A :class:`DetectedObject` from one track's ``[F, H, W]`` masks (``alpha``: ``[F, H, W]`` coverage of
    its colour; ``confidence``: ``[F, H, W]`` from :func:`colour_labels`)."""
    track = centroid_track(masks)
    present = masks.reshape(len(masks), -1).any(1)
    area = np.maximum(masks.reshape(len(masks), -1).sum(1), 1)
    scores = np.where(present, (confidence * alpha * masks).reshape(len(masks), -1).sum(1) / area, 0.0)
    return DetectedObject(
        colour=colour, motion=classify_motion(track), masks=masks, track=track,
        presence=float(present.mean()), scores=scores.astype(np.float32),
    )


def detect_objects(
    frames: torch.Tensor | np.ndarray,
    min_area_frac: float = MIN_AREA_FRAC,
    min_presence: float = MIN_PRESENCE,
    max_jump_frac: float = MAX_JUMP_FRAC,
    max_residual: float = MAX_RESIDUAL,
    sigma: float = DENOISE_SIGMA,
) -> list[DetectedObject]:
    """Find and track the toy objects of a video ``[F, 3, H, W]`` (or ``[F, H, W, 3]``).

    Pixels are labelled by :func:`colour_labels` (``max_residual``, ``sigma``, down to ``FAINT_ALPHA`` so
    washed-out objects count too); components of each colour smaller than ``min_area_frac`` of the frame are
    ignored; detections are linked frame to frame when their centroids are within ``max_jump_frac * min(H, W)``
    pixels; tracks seen in fewer than ``min_presence`` of the frames are dropped; each mask is trimmed to its
    :func:`half_maximum`. Returns objects sorted by mean area, largest first.
    """
    video = as_video(frames)
    labels, confidence = colour_labels(video, max_residual, sigma, FAINT_ALPHA)
    f, h, w = labels.shape
    min_area, max_jump = max(2, round(min_area_frac * h * w)), max_jump_frac * min(h, w)
    found = []
    for k, colour in enumerate(COLOUR_NAMES):
        if (labels == k).sum() < min_area:
            continue
        alpha = colour_alpha(video, colour, sigma)
        tracks = track_colour(half_maximum(labels == k, alpha, min_area), min_area, max_jump)
        tracks = [m for m in tracks if m.reshape(f, -1).any(1).mean() >= min_presence]
        found += [_describe(colour, m, alpha, confidence) for m in tracks]
    return sorted(found, key=lambda o: -o.mean_area)


# ----------------------------------------------------------------------------- what a ball looks like


def compactness(mask: np.ndarray) -> float:
    """How disc-like a non-empty ``[H, W]`` bool blob is: area / (2 pi * mean squared distance to the centroid).

    1 for a disc (whose mean squared radius is area / 2 pi), lower for elongated or scattered blobs.
    """
    ys, xs = np.nonzero(mask)
    spread = ((xs - xs.mean()) ** 2 + (ys - ys.mean()) ** 2).mean() + 1 / 6  # + a pixel's own spread
    return float(len(xs) / (2 * np.pi * spread))


def ball_area_range(h: int, w: int) -> tuple[float, float]:
    """Smallest and largest area (pixels) a blob may have to pass as a toy ball in ``h x w`` frames."""
    scale = h * w / world.SIZE**2  # ball sizes are given for the toy world's frame size
    return (BLOB_AREA[0] * np.pi * world.RADIUS_RANGE[0] ** 2 * scale,
            BLOB_AREA[1] * np.pi * world.RADIUS_RANGE[1] ** 2 * scale)


def looks_like_ball(obj: DetectedObject, min_share: float = 0.5) -> bool:
    """Is a tracked object a toy ball: ball-sized and disc-like (:func:`compactness`) in at least ``min_share``
    of the frames where it is seen? Patches of colour in a real video mostly are not."""
    lo, hi = ball_area_range(*obj.masks.shape[1:])
    seen = [m for m in obj.masks if m.any()]
    balls = sum(lo <= m.sum() <= hi and compactness(m) >= MIN_COMPACTNESS for m in seen)
    return bool(seen) and balls >= min_share * len(seen)
