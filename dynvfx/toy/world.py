"""The toy world: short procedural videos of coloured balls moving on flat backgrounds, sometimes with a box.

The toy vocabulary holds only what the toy model can draw: colour, motion and background, with one object
noun (``"ball"``). The renderer still knows squares and triangles (``SHAPES``) as an option, but scenes are
drawn with balls only (``CAPTION_SHAPES``) and captions name no other shape.

A scene may hold one static occluder, the box (:data:`BOX`, always the same rectangle and colour). A ball that
crosses it moves either *behind* it (hidden where they overlap) or *in front of* it, and its clause says which:
``"a red ball moves right behind the box on a black background"``. A box scene with no ball crossing it ends
``"... background with a box"``.

Every video comes with a caption and per-object ground-truth masks, and is fully determined by its
:class:`Scene` (which a seeded :func:`sample_scene` draws). Videos are float arrays ``[F, H, W, 3]``
in ``[0, 1]``; masks are bool arrays ``[F, H, W]``.
"""

from __future__ import annotations

import dataclasses
import itertools
import json

import numpy as np

COLOURS: dict[str, tuple[float, float, float]] = {
    "red": (0.9, 0.1, 0.1),
    "green": (0.1, 0.8, 0.2),
    "blue": (0.15, 0.3, 0.95),
    "yellow": (0.95, 0.85, 0.1),
}
SHAPES: tuple[str, ...] = ("ball", "square", "triangle")  # what the renderer can draw
CAPTION_SHAPES: tuple[str, ...] = ("ball",)  # what scenes, captions and the toy model use
BACKGROUNDS: dict[str, tuple[float, float, float]] = {
    "gray": (0.5, 0.5, 0.5),
    "black": (0.05, 0.05, 0.05),
    "white": (0.95, 0.95, 0.95),
}
MOTIONS: tuple[str, ...] = ("left", "right", "up", "down", "bounce")

#: The occluder: its one word, its colour and its fixed rectangle ``(x0, y0, x1, y1)`` in pixels (x1, y1 excluded).
BOX_WORD = "box"
BOX_COLOUR: tuple[float, float, float] = (0.55, 0.33, 0.15)  # brown: no ball colour, no background
BOX: tuple[int, int, int, int] = (19, 12, 29, 36)
#: How a ball that crosses the box relates to it, and the words its clause uses for that.
RELATIONS: dict[str, str] = {"behind": "behind the box", "front": "in front of the box"}
CROSSING_MOTIONS: tuple[str, ...] = ("left", "right")  # the motions that carry a ball across the box
BOX_SUFFIX = f" with a {BOX_WORD}"  # closes the caption of a box scene in which no ball crosses the box

#: Unit direction (dx, dy) of each straight motion, in image coordinates (y grows downwards).
DIRECTIONS: dict[str, tuple[int, int]] = {"left": (-1, 0), "right": (1, 0), "up": (0, -1), "down": (0, 1)}

SIZE = 48  # pixels, square frames
FRAMES = 17  # 1 + 4k, as the CogVideoX autoencoder wants
TRAVEL = 20.0  # pixels a straight-moving object travels over the clip
BOUNCE_HEIGHT = 16.0  # pixels between the top of a bounce and the floor
RADIUS_RANGE = (6.0, 8.0)  # half-extent of an object, pixels
START_JITTER = 4.0  # pixels: how far from its start side an object may begin (along its motion)


def _held_out() -> frozenset[tuple[str, str, str]]:
    """12 of the 60 (colour, motion, background) combinations never shown in training.

    Chosen so that every (colour, motion), (colour, background) and (motion, background) pair is still seen:
    for each (colour, background) exactly one motion is held out.
    """
    out = set()
    for (ci, c), (mi, m), (bi, b) in itertools.product(
        enumerate(COLOURS), enumerate(MOTIONS), enumerate(BACKGROUNDS)
    ):
        if (ci + mi + 2 * bi) % len(MOTIONS) == 0:
            out.add((c, m, b))
    return frozenset(out)


HELD_OUT: frozenset[tuple[str, str, str]] = _held_out()
#: The 48 (colour, motion, background) combinations that training scenes show.
TRAINING_COMBINATIONS: frozenset[tuple[str, str, str]] = (
    frozenset(itertools.product(COLOURS, MOTIONS, BACKGROUNDS)) - HELD_OUT)


@dataclasses.dataclass(frozen=True)
class ToyObject:
    """One moving shape. ``x0, y0`` is its centre at frame 0 in pixels; ``radius`` its half-extent."""

    colour: str
    shape: str
    motion: str
    x0: float
    y0: float
    radius: float
    relation: str | None = None  # "behind" or "front" the box, for a ball that crosses it (RELATIONS)

    @property
    def phrase(self) -> str:
        """Noun phrase naming the object, e.g. ``"red ball"``."""
        return f"{self.colour} {self.shape}"

    @property
    def triple(self) -> tuple[str, str, str]:
        """``(colour, shape, motion)``, as :func:`caption_for` and ``sample_scene(triples=...)`` take it."""
        return (self.colour, self.shape, self.motion)

    def centres(self, frames: int = FRAMES) -> np.ndarray:
        """Centre ``(x, y)`` per frame, ``[F, 2]`` in pixels."""
        t = np.linspace(0.0, 1.0, frames)
        if self.motion == "bounce":
            # Falls from the top of the bounce to the floor at mid-clip and rises back.
            y = self.y0 + BOUNCE_HEIGHT * (1.0 - np.abs(np.cos(np.pi * t)))
            return np.stack([np.full_like(t, self.x0), y], axis=1)
        dx, dy = DIRECTIONS[self.motion]
        return np.stack([self.x0 + dx * TRAVEL * t, self.y0 + dy * TRAVEL * t], axis=1)

    def clause(self) -> str:
        words = f"a {self.phrase} {motion_phrase(self.motion)}"
        return f"{words} {RELATIONS[self.relation]}" if self.relation else words


def motion_phrase(motion: str) -> str:
    """A motion's words in a caption: ``"bounces"`` or ``"moves <direction>"``; its last word is the motion word."""
    return "bounces" if motion == "bounce" else f"moves {motion}"


@dataclasses.dataclass(frozen=True)
class Scene:
    """A toy video's full description: background, 1-2 objects (drawn in order, later on top) and maybe the box
    (drawn over the balls behind it, under the others)."""

    background: str
    objects: tuple[ToyObject, ...]
    size: int = SIZE
    frames: int = FRAMES
    box: bool = False

    @property
    def caption(self) -> str:
        """E.g. ``"a red ball moves right and a blue square moves down on a gray background"``; the box is named
        once: in a crossing ball's clause, else by a closing ``" with a box"``."""
        return compose_caption([o.clause() for o in self.objects], self.background, self.box)

    def to_json(self) -> str:
        return json.dumps(dataclasses.asdict(self) | {"caption": self.caption}, indent=2)

    @classmethod
    def from_dict(cls, d: dict) -> "Scene":
        d = {k: v for k, v in d.items() if k != "caption"}
        d["objects"] = tuple(ToyObject(**o) for o in d["objects"])
        return cls(**d)

    @property
    def held_out(self) -> bool:
        """Whether any object's (colour, motion) on this background is a held-out combination."""
        return any((o.colour, o.motion, self.background) in HELD_OUT for o in self.objects)


def compose_caption(clauses: list[str], background: str, box: bool = False) -> str:
    """A scene caption from its objects' clauses: joined by "and", then the background, then ``BOX_SUFFIX`` if the
    scene shows the box (``box``) and no clause names it."""
    text = " and ".join(clauses) + f" on a {background} background"
    return text + BOX_SUFFIX if box and not any(BOX_WORD in c.split() for c in clauses) else text


def _split_background(caption: str) -> tuple[str, str]:
    """A scene caption -> (its objects' clauses, its background)."""
    head, sep, tail = caption.removesuffix(BOX_SUFFIX).rpartition(" on a ")
    background = tail.removesuffix(" background")
    if not sep or background not in BACKGROUNDS:
        raise ValueError(f"toy caption {caption!r} does not end with a toy background")
    return head, background


@dataclasses.dataclass(frozen=True)
class Clause:
    """One object's clause of a scene caption, with the word positions (in the whole caption) of its colour and
    of its motion word (``"left"``, ..., or ``"bounces"``)."""

    colour: str
    shape: str
    motion: str
    colour_at: int
    motion_at: int
    relation: str | None = None


def _relation(words: list[str]) -> str | None:
    """The relation named by a clause's words after its motion (``RELATIONS``' phrases), or None."""
    tail = " ".join(words)
    for relation, phrase in RELATIONS.items():
        if tail == phrase:
            return relation
    if tail:
        raise ValueError(f"toy clause ends with {tail!r}, not one of {list(RELATIONS.values())}")
    return None


def parse_caption(caption: str) -> tuple[list[Clause], str]:
    """A scene caption (:attr:`Scene.caption`, clauses as :meth:`ToyObject.clause` writes them) -> its objects'
    clauses and its background."""
    head, background = _split_background(caption)
    clauses, at = [], 0
    for text in head.split(" and "):
        w = text.split()  # ["a", colour, shape, "bounces"] or ["a", colour, shape, "moves", motion], then a relation
        end = 4 if w[3] == "bounces" else 5
        clauses.append(Clause(w[1], w[2], "bounce" if w[3] == "bounces" else w[4], at + 1, at + end - 1,
                              _relation(w[end:])))
        at += len(w) + 1  # the clause and its "and"
    return clauses, background


def drop_background(caption: str) -> str:
    """A scene caption without its ``" on a <background> background"`` (the objects' clauses, and the box's
    ``" with a box"`` if it has one)."""
    return _split_background(caption)[0] + (BOX_SUFFIX if caption.endswith(BOX_SUFFIX) else "")


def names_box(caption: str) -> bool:
    """Whether a scene caption names the box (in a crossing ball's clause or by its closing phrase)."""
    return BOX_WORD in caption.split()


def exchanged_motions(caption: str) -> str | None:
    """A two-ball scene caption with the balls' motions exchanged (the same words, bound the other way), or None
    when there is nothing to exchange (one ball, one motion) or an exchanged combination is not a training one."""
    clauses, background = parse_caption(caption)
    if len(clauses) != 2 or names_box(caption):
        return None
    a, b = clauses
    if a.motion == b.motion or not {(a.colour, b.motion, background), (b.colour, a.motion, background)} \
            <= TRAINING_COMBINATIONS:
        return None
    return caption_for(background, [(a.colour, a.shape, b.motion), (b.colour, b.shape, a.motion)])


def relation_swapped(caption: str) -> str | None:
    """A box scene's caption with every crossing ball's relation turned round (behind <-> in front of), or None
    when no ball crosses the box."""
    clauses, background = parse_caption(caption)
    if not any(c.relation for c in clauses):
        return None
    other = {"behind": "front", "front": "behind"}
    return caption_for(background, [(c.colour, c.shape, c.motion, other.get(c.relation)) for c in clauses])


def caption_for(background: str, objects: list[tuple], box: bool = False) -> str:
    """Caption of a scene given as ``[(colour, shape, motion), ...]`` (positions play no part); an object may add
    a fourth item, its relation to the box (``"behind"``, ``"front"`` or None)."""
    objs = tuple(ToyObject(*o[:3], 0.0, 0.0, 1.0, *o[3:]) for o in objects)
    return Scene(background, objs, box=box or any(o.relation for o in objs)).caption


def _start_range(motion: str, radius: float, size: int) -> tuple[tuple[float, float], tuple[float, float]]:
    """Ranges of the frame-0 centre ``((xmin, xmax), (ymin, ymax))``.

    Along its motion an object starts within ``START_JITTER`` pixels of the side it moves away from (a bounce
    starts at the top), so where it begins says how it will move; across the motion it may be anywhere. This
    simplification (few start positions) is what lets a small model learn motion in a CPU budget.
    """
    lo, hi = radius + 1.0, size - radius - 1.0
    if motion == "bounce":
        return (lo, hi), (lo, lo + START_JITTER)
    dx, dy = DIRECTIONS[motion]

    def axis(d: int) -> tuple[float, float]:
        if d > 0:
            return lo, lo + START_JITTER
        if d < 0:
            return hi - START_JITTER, hi
        return lo, hi

    return axis(dx), axis(dy)


def place_object(rng: np.random.Generator, colour: str, shape: str, motion: str, size: int = SIZE) -> ToyObject:
    """A ``ToyObject`` with a random size and a random start that keeps it in frame for the whole clip."""
    radius = float(rng.uniform(*RADIUS_RANGE))
    (x_lo, x_hi), (y_lo, y_hi) = _start_range(motion, radius, size)
    return ToyObject(colour, shape, motion, float(rng.uniform(x_lo, x_hi)), float(rng.uniform(y_lo, y_hi)), radius)


def _apart(a: ToyObject, b: ToyObject, frames: int) -> bool:
    gap = np.linalg.norm(a.centres(frames) - b.centres(frames), axis=1).min()
    return bool(gap > a.radius + b.radius + 2.0)


def sample_triple(rng: np.random.Generator, background: str, held_out: str = "exclude",
                  motions: tuple[str, ...] = MOTIONS) -> tuple[str, str, str]:
    """A random ``(colour, "ball", motion)`` on ``background``, its motion one of ``motions``.

    ``held_out``: ``"exclude"`` the held-out (colour, motion, background) combinations (training), ``"only"``
    those, or ``"any"``.
    """
    pool = [(c, m) for c, m in itertools.product(COLOURS, motions)
            if held_out == "any" or (((c, m, background) in HELD_OUT) == (held_out == "only"))]
    c, m = pool[rng.integers(len(pool))]
    return (c, CAPTION_SHAPES[0], m)


def sample_scene(
    seed: int | np.random.Generator,
    n_objects: int | None = None,
    held_out: str = "exclude",
    triples: list[tuple[str, str, str]] | None = None,
    background: str | None = None,
) -> Scene:
    """Draw a scene deterministically from ``seed``.

    Args:
        n_objects: 1 or 2 (random if None).
        held_out: which (colour, motion, background) combinations may appear: ``"exclude"`` the held-out ones
            (training), ``"only"`` a held-out one (the first object; a second one is any) or ``"any"``.
        triples: fix the objects' ``(colour, shape, motion)`` instead of drawing them.
        background: fix the background.

    Two objects always differ in colour (captions name objects by colour).
    """
    rng = seed if isinstance(seed, np.random.Generator) else np.random.default_rng(seed)
    bg = background or list(BACKGROUNDS)[rng.integers(len(BACKGROUNDS))]
    if triples is None:
        n = n_objects or int(rng.integers(1, 3))
        second = "exclude" if held_out == "exclude" else "any"
        triples = [sample_triple(rng, bg, held_out)]
        while len(triples) < n:
            t = sample_triple(rng, bg, second)
            if t[0] != triples[0][0]:
                triples.append(t)
    for _ in range(200):
        objs = tuple(place_object(rng, *t) for t in triples)
        if len(objs) < 2 or _apart(objs[0], objs[1], FRAMES):
            return Scene(bg, objs)
    raise RuntimeError(f"could not place {triples} apart from each other")


def box_mask(size: int = SIZE) -> np.ndarray:
    """The box's pixels, ``[H, W]`` bool."""
    x0, y0, x1, y1 = BOX
    mask = np.zeros((size, size), bool)
    mask[y0:y1, x0:x1] = True
    return mask


def _clear_of_box(obj: ToyObject, frames: int, gap: float = 2.0) -> bool:
    """Whether ``obj`` stays more than ``gap`` pixels away from the box in every frame."""
    x0, y0, x1, y1 = BOX
    c = obj.centres(frames)
    dx = np.maximum(np.maximum(x0 - c[:, 0], c[:, 0] - x1), 0)
    dy = np.maximum(np.maximum(y0 - c[:, 1], c[:, 1] - y1), 0)
    return bool(np.hypot(dx, dy).min() > obj.radius + gap)


def place_crossing(rng: np.random.Generator, colour: str, motion: str, relation: str) -> ToyObject:
    """A ball that crosses the box horizontally (``motion`` in ``CROSSING_MOTIONS``): a start as
    :func:`place_object` draws it, its height within the box's so that it passes behind or in front of it."""
    if motion not in CROSSING_MOTIONS or relation not in RELATIONS:
        raise ValueError(f"a ball crosses the box moving {CROSSING_MOTIONS}, {list(RELATIONS)} it; got {motion!r}, "
                         f"{relation!r}")
    obj = place_object(rng, colour, CAPTION_SHAPES[0], motion)
    _, y0, _, y1 = BOX
    return dataclasses.replace(obj, y0=float(rng.uniform(y0 + 6, y1 - 6)), relation=relation)


def sample_box_scene(
    seed: int | np.random.Generator,
    n_objects: int | None = None,
    held_out: str = "exclude",
    crossing: bool = True,
    relation: str | None = None,
    triples: list[tuple[str, str, str]] | None = None,
    background: str | None = None,
) -> Scene:
    """Draw a scene with the box deterministically from ``seed``.

    With ``crossing`` the first ball crosses the box (moving left or right, ``relation`` "behind"/"front" or
    random); any other ball (and the first one without ``crossing``) stays clear of the box and of the first ball.
    ``n_objects``, ``held_out``, ``triples`` (the crossing ball's motion must be a crossing one) and
    ``background`` as in :func:`sample_scene`.
    """
    rng = seed if isinstance(seed, np.random.Generator) else np.random.default_rng(seed)
    bg = background or list(BACKGROUNDS)[rng.integers(len(BACKGROUNDS))]
    relation = relation or list(RELATIONS)[rng.integers(len(RELATIONS))]
    drawn = triples is None
    for _ in range(20):  # drawn objects that cannot be placed around the box are drawn again
        if drawn:
            n = n_objects or int(rng.integers(1, 3))
            triples = [sample_triple(rng, bg, held_out, CROSSING_MOTIONS if crossing else MOTIONS)]
            c = triples[0][0]
            while len(triples) < n:
                t = sample_triple(rng, bg, "exclude" if held_out == "exclude" else "any")
                if t[0] != c and t[2] not in CROSSING_MOTIONS:  # a second ball moving sideways would cross the box
                    triples.append(t)
        for _ in range(100):
            objs = tuple(place_crossing(rng, t[0], t[2], relation) if crossing and i == 0 else place_object(rng, *t)
                         for i, t in enumerate(triples))
            clear = all(_clear_of_box(o, FRAMES) for o in objs[1 if crossing else 0:])
            if clear and (len(objs) < 2 or _apart(objs[0], objs[1], FRAMES)):
                return Scene(bg, objs, box=True)
        if not drawn:
            break
    raise RuntimeError(f"could not place {triples} around the box")


_SUPER = 4  # supersampling factor per axis for anti-aliased edges


def _coverage(obj: ToyObject, centres: np.ndarray, size: int) -> np.ndarray:
    """Fraction of each pixel covered by ``obj``, ``[F, H, W]`` in ``[0, 1]``."""
    s = (np.arange(size * _SUPER) + 0.5) / _SUPER
    ys, xs = np.meshgrid(s, s, indexing="ij")
    dx = xs[None] - centres[:, 0, None, None]
    dy = ys[None] - centres[:, 1, None, None]
    r = obj.radius
    if obj.shape == "ball":
        inside = dx**2 + dy**2 <= r**2
    elif obj.shape == "square":
        half = 0.85 * r  # a square a little smaller than its circumscribing box, so areas are comparable
        inside = (np.abs(dx) <= half) & (np.abs(dy) <= half)
    elif obj.shape == "triangle":
        # Apex up at (0, -r), base at y = +r with half-width r.
        t = (dy + r) / (2 * r)
        inside = (t >= 0) & (t <= 1) & (np.abs(dx) <= t * r)
    else:
        raise ValueError(f"unknown shape {obj.shape!r}")
    f = centres.shape[0]
    return inside.reshape(f, size, _SUPER, size, _SUPER).mean(axis=(2, 4))


def render(scene: Scene) -> tuple[np.ndarray, np.ndarray]:
    """Render a scene.

    Returns:
        video: ``[F, H, W, 3]`` float32 in ``[0, 1]``.
        masks: ``[N, F, H, W]`` bool, the visible part of each object (coverage > 0.5), in ``scene.objects``'
            order; a box scene adds the box's visible part as a last mask.
    """
    f, size = scene.frames, scene.size
    video = np.empty((f, size, size, 3), np.float32)
    video[:] = np.asarray(BACKGROUNDS[scene.background], np.float32)
    layers = [(_coverage(o, o.centres(f), size).astype(np.float32), COLOURS[o.colour], o.relation == "front")
              for o in scene.objects]
    if scene.box:
        box = np.broadcast_to(box_mask(size).astype(np.float32), (f, size, size))
        layers.append((box, BOX_COLOUR, False))
    # painter's order: the balls behind (or clear of) the box, the box, then the balls in front of it
    order = [i for i, layer in enumerate(layers) if not layer[2]] + [i for i, layer in enumerate(layers) if layer[2]]
    for i in order:
        cov, colour, _ = layers[i]
        video = video * (1 - cov[..., None]) + cov[..., None] * np.asarray(colour, np.float32)
    masks = np.zeros((len(layers), f, size, size), bool)
    for k, i in enumerate(order):
        visible = layers[i][0].copy()
        for later in order[k + 1:]:
            visible *= 1 - layers[later][0]
        masks[i] = visible > 0.5
    return video, masks
