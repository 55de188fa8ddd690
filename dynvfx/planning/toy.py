"""Rule-based VFX planner for the toy world (backend ``"toy-rules"``; no language model involved).

It looks at the source frames with :mod:`dynvfx.toy.perception` (background, objects, their motions),
reads an instruction such as "add a red ball moving right" word by word, and writes a :class:`VFXPlan`
whose captions use the toy world's own grammar (:func:`dynvfx.toy.world.caption_for`).

The toy vocabulary has one object noun, "ball" (and synonyms such as "circle", ``vocabulary.OBJECT_WORDS``).
An instruction naming another shape ("add a yellow square") is refused with a message saying the toy world
only has balls, rather than quietly drawing a ball the artist did not ask for.
"""

from __future__ import annotations

import warnings

import numpy as np
import torch

from dynvfx.planning.schema import Turn, VFXPlan
from dynvfx.toy import perception, vocabulary, world

BACKEND = "toy-rules"
EXAMPLE = "add a red ball moving right"
#: Preference order for the motion of a new object when the instruction names none.
DEFAULT_MOTIONS: tuple[str, ...] = ("right", "left", "down", "up", "bounce")
#: Where an instruction outside the toy grammar can go instead.
VLM_PLANNERS = "for free-form instructions use a VLM planner: --planner openai or hf (plan_edit(backend=...))"
#: Words that ask for something other than adding an object, which this planner can't do.
UNSUPPORTED_VERBS = frozenset({"remove", "delete", "erase", "replace", "recolor", "recolour", "change"})

Triple = tuple[str, str, str]  # (colour, "ball", motion), as world.caption_for takes it


def _ball_colour(ws: list[str]) -> str | None:
    """The first colour word followed within two words by a ball word; else the first colour word if a ball
    word occurs anywhere; else None."""
    for i, w in enumerate(ws):
        if w in vocabulary.COLOUR_WORDS and any(v in vocabulary.OBJECT_WORDS for v in ws[i + 1:i + 3]):
            return vocabulary.COLOUR_WORDS[w]
    if not any(w in vocabulary.OBJECT_WORDS for w in ws):
        return None
    return vocabulary.first_name(" ".join(ws), vocabulary.COLOUR_WORDS)


def parse_instruction(instruction: str) -> tuple[str, str | None]:
    """``(colour, motion or None)`` of the ball an instruction adds.

    Raises ``ValueError`` (one line) for an empty instruction, one that asks to remove or change things,
    one naming a shape the toy world does not draw (``vocabulary.OTHER_SHAPE_WORDS``, e.g. "square"), or one
    without both a toy colour and a ball word.
    """
    ws = vocabulary.words(instruction or "")
    if not ws:
        raise ValueError(f"toy planner: the instruction is empty; try e.g. {EXAMPLE!r}")
    if UNSUPPORTED_VERBS & set(ws[:3]):  # e.g. "please remove the ..."
        raise ValueError(f"toy planner: it can only add objects, not {instruction!r}; try e.g. {EXAMPLE!r}; "
                         f"{VLM_PLANNERS}")
    other = next((w for w in ws if w in vocabulary.OTHER_SHAPE_WORDS), None)
    if other is not None:
        raise ValueError(
            f"toy planner: the toy world only has balls, not {other!r} (the toy model never learnt shapes); "
            f"try e.g. {EXAMPLE!r}; {VLM_PLANNERS}"
        )
    colour = _ball_colour(ws)
    if colour is None:
        raise ValueError(
            f"toy planner: can't find a colour and a ball in {instruction!r}; try e.g. {EXAMPLE!r} "
            f"(colours: {', '.join(world.COLOURS)}; object: {vocabulary.NOUN}; motions: {', '.join(world.MOTIONS)}); "
            f"{VLM_PLANNERS}"
        )
    return colour, vocabulary.first_name(instruction, vocabulary.MOTION_WORDS)


def default_motion(source: list[Triple]) -> str:
    """The first of ``DEFAULT_MOTIONS`` no source object has (so the new object stands out)."""
    used = {m for _, _, m in source}
    return next((m for m in DEFAULT_MOTIONS if m not in used), DEFAULT_MOTIONS[0])


def caption(background: str, objects: list[Triple]) -> str:
    """Toy-grammar caption; objects seen standing still read "stays still"; no objects -> "an empty ... background"."""
    if not objects:
        return f"an empty {background} background"
    if all(m in world.MOTIONS for _, _, m in objects):
        return world.caption_for(background, objects)
    clauses = [
        world.ToyObject(c, s, m, 0.0, 0.0, 1.0).clause() if m in world.MOTIONS else f"a {c} {s} stays still"
        for c, s, m in objects
    ]
    return " and ".join(clauses) + f" on a {background} background"


def default_keyframes(frames: int) -> list[int]:
    """First, middle and last frame indices (fewer for very short videos)."""
    return sorted({0, frames // 2, frames - 1})


def check_keyframes(keyframes: list[int], frames: int) -> list[int]:
    """``keyframes`` as ints, or ``ValueError`` if any is outside ``[0, frames)``."""
    out = [int(k) for k in keyframes]
    bad = [k for k in out if not 0 <= k < frames]
    if bad:
        raise ValueError(f"toy planner: keyframes {bad} are outside the video's {frames} frames")
    return out


def _caveats(source: list[Triple], new: Triple) -> list[str]:
    """What may go wrong with the plan (also raised as warnings, so the command line shows them)."""
    caveats = []
    if any((c, sh) == new[:2] for c, sh, _ in source):
        caveats.append(f"There is already a {new[0]} {new[1]}; masks of that phrase will cover both.")
    if len(source) + 1 > 2:
        caveats.append(f"That makes {len(source) + 1} objects; the toy model was trained on at most 2.")
    return caveats


def _conversation(instruction: str, new: Triple, notes: list[str], fields: dict) -> list[Turn]:
    """The rule-based 'discussion' recorded in the plan: what was seen, what will be added, and why.

    ``fields``: the plan's ``source_caption``, ``composited_caption``, ``objects_orig`` and ``objects_edit``.
    """
    verb = world.motion_phrase(new[2])
    anchors = ", ".join(fields["objects_orig"]) or "none"
    said = [
        f"(Rule-based toy planner, no language model.) I see: {fields['source_caption']}.",
        " ".join([f"I'll add a {new[0]} {new[1]} that {verb}.", *notes]),
        f"Target caption: {fields['composited_caption']}. Anchors: {anchors}; "
        f"new object to segment: {', '.join(fields['objects_edit'])}.",
    ]
    return [Turn(speaker="artist", text=instruction)] + [Turn(speaker="assistant", text=t) for t in said]


def plan_toy(
    frames: torch.Tensor | np.ndarray, instruction: str, keyframes: list[int] | None = None
) -> VFXPlan:
    """Plan an edit of a toy video ``[F, 3, H, W]`` in ``[0, 1]`` that adds the object ``instruction`` names.

    Raises ``ValueError`` for instructions it can't read (see :func:`parse_instruction`) or bad ``keyframes``.
    """
    colour, motion = parse_instruction(instruction)
    video = perception.as_video(frames)
    keyframes = default_keyframes(len(video)) if keyframes is None else check_keyframes(keyframes, len(video))
    background = perception.background_colour(video)
    found = perception.detect_objects(video)
    objects = [o for o in found if perception.looks_like_ball(o)]
    if len(objects) < len(found):
        warnings.warn(f"toy planner: ignored {len(found) - len(objects)} patch(es) of colour that are not "
                      "ball-shaped (the toy world has only balls)", stacklevel=2)
    source = [o.triple for o in objects]
    new = (colour, vocabulary.NOUN, motion or default_motion(source))
    fields = {
        "source_caption": caption(background, source),
        "composited_caption": caption(background, source + [new]),
        "objects_orig": list(dict.fromkeys(o.phrase for o in objects)),
        "objects_edit": [f"{colour} {vocabulary.NOUN}"],
    }
    caveats = _caveats(source, new)
    for caveat in caveats:
        warnings.warn(f"toy planner: {caveat}", stacklevel=2)
    chosen = [] if motion else [f"You didn't say how it should move, so I picked '{new[2]}' (a motion no source "
                                "object has)."]
    turns = _conversation(instruction, new, chosen + caveats, fields)
    return VFXPlan(instruction=instruction, conversation=turns, keyframes=keyframes, backend=BACKEND, **fields)
