"""Rule-based VFX planner for the toy world (backend ``"toy-rules"``; no language model involved).

It looks at the source frames with :mod:`dynvfx.toy.perception` (background, objects, their motions),
reads an instruction such as "add a red ball moving right" word by word, and writes a :class:`VFXPlan`
whose captions use the toy world's own grammar (:func:`dynvfx.toy.world.caption_for`).

The toy vocabulary has one object noun, "ball" (and synonyms such as "circle", ``vocabulary.OBJECT_WORDS``).
An instruction naming another shape ("add a yellow square") is refused with a message saying the toy world
only has balls, rather than quietly drawing a ball the artist did not ask for.

A source may show the box (``world.BOX_WORD``, found by its colour: :func:`perception.sees_box`). It is then one
of the anchors, O_orig, and a new ball moving left or right may pass "behind the box" or "in front of the box";
the box itself is a place, never an object to add. The planner does not read whether a *source* ball that
crosses the box passes behind or in front of it: its clause says only how it moves.
"""

from __future__ import annotations

import warnings

import numpy as np
import torch

from dynvfx.planning.schema import Turn, VFXPlan
from dynvfx.toy import perception, vocabulary, world

BACKEND = "toy-rules"
EXAMPLE = "add a red ball moving right"
BOX_EXAMPLE = "add a yellow ball that moves right behind the box"
#: Preference order for the motion of a new object when the instruction names none.
DEFAULT_MOTIONS: tuple[str, ...] = ("right", "left", "down", "up", "bounce")
#: Where an instruction outside the toy grammar can go instead.
VLM_PLANNERS = "for free-form instructions use a VLM planner: --planner openai or hf (plan_edit(backend=...))"
#: Words that ask for something other than adding an object, which this planner can't do.
UNSUPPORTED_VERBS = frozenset({"remove", "delete", "erase", "replace", "recolor", "recolour", "change"})

Triple = tuple  # (colour, "ball", motion) and maybe a relation to the box, as world.caption_for takes it


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
    if vocabulary.names_box(instruction) and vocabulary.relation(instruction) is None:
        raise ValueError(
            f"toy planner: the box is part of the scene, not something to add; a new ball may move left or right "
            f"'{world.RELATIONS['behind']}' or '{world.RELATIONS['front']}' (e.g. {BOX_EXAMPLE!r}); {VLM_PLANNERS}"
        )
    colour = _ball_colour(ws)
    if colour is None:
        raise ValueError(
            f"toy planner: can't find a colour and a ball in {instruction!r}; try e.g. {EXAMPLE!r} "
            f"(colours: {', '.join(world.COLOURS)}; object: {vocabulary.NOUN}; motions: {', '.join(world.MOTIONS)}); "
            f"{VLM_PLANNERS}"
        )
    return colour, vocabulary.first_name(instruction, vocabulary.MOTION_WORDS)


def parse_relation(instruction: str, motion: str | None, box: bool) -> str | None:
    """The new ball's relation to the box (``"behind"``, ``"front"`` or None) that an instruction asks for.

    Raises ``ValueError`` when it asks for one but the source shows no box (``box``), or names a motion
    (``motion``) that does not carry a ball across the box (``world.CROSSING_MOTIONS``).
    """
    relation = vocabulary.relation(instruction) if vocabulary.names_box(instruction) else None
    if relation is None:
        return None
    if not box:
        raise ValueError(f"toy planner: {instruction!r} places the ball {world.RELATIONS[relation]}, but this video "
                         f"shows no {world.BOX_WORD}")
    if motion is not None and motion not in world.CROSSING_MOTIONS:
        raise ValueError(f"toy planner: a ball passes {world.RELATIONS[relation]} by moving "
                         f"{' or '.join(world.CROSSING_MOTIONS)}, not {motion!r}; try e.g. {BOX_EXAMPLE!r}")
    return relation


def default_motion(source: list[Triple], choices: tuple[str, ...] = DEFAULT_MOTIONS) -> str:
    """The first of ``choices`` no source object has (so the new object stands out)."""
    used = {o[2] for o in source}
    return next((m for m in choices if m not in used), choices[0])


def caption(background: str, objects: list[Triple], box: bool = False) -> str:
    """Toy-grammar caption (``box``: the scene shows the box); objects seen standing still read "stays still";
    no objects -> "an empty ... background"."""
    if not objects:
        return f"an empty {background} background" + (world.BOX_SUFFIX if box else "")
    clauses = [world.ToyObject(*o[:3], 0.0, 0.0, 1.0, *o[3:]).clause() if o[2] in world.MOTIONS
               else f"a {o[0]} {o[1]} stays still" for o in objects]
    return world.compose_caption(clauses, background, box)


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


def _caveats(source: list[Triple], new: Triple, box: bool) -> list[str]:
    """What may go wrong with the plan (also raised as warnings, so the command line shows them)."""
    caveats = []
    if box and new[2] in world.CROSSING_MOTIONS and not new[3]:
        caveats.append(f"Moving {new[2]}, it will cross the {world.BOX_WORD}; say whether it passes "
                       f"'{world.RELATIONS['behind']}' or '{world.RELATIONS['front']}' (the toy model learnt "
                       "crossing balls only with one).")
    if any((c, sh) == new[:2] for c, sh, _ in source):
        caveats.append(f"There is already a {new[0]} {new[1]}; masks of that phrase will cover both.")
    if len(source) + 1 > 2:
        caveats.append(f"That makes {len(source) + 1} objects; the toy model was trained on at most 2.")
    return caveats


def _conversation(instruction: str, new: Triple, notes: list[str], fields: dict) -> list[Turn]:
    """The rule-based 'discussion' recorded in the plan: what was seen, what will be added, and why.

    ``fields``: the plan's ``source_caption``, ``composited_caption``, ``objects_orig`` and ``objects_edit``.
    """
    verb = " ".join([world.motion_phrase(new[2]), *([world.RELATIONS[new[3]]] if new[3] else [])])
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
    box = perception.sees_box(video)
    relation = parse_relation(instruction, motion, box)
    found = perception.detect_objects(video)
    objects = [o for o in found if perception.looks_like_ball(o)]
    if len(objects) < len(found):
        warnings.warn(f"toy planner: ignored {len(found) - len(objects)} patch(es) of colour that are not "
                      "ball-shaped (the toy world has only balls)", stacklevel=2)
    source = [o.triple for o in objects]
    new = (colour, vocabulary.NOUN,
           motion or default_motion(source, world.CROSSING_MOTIONS if relation else DEFAULT_MOTIONS), relation)
    fields = {
        "source_caption": caption(background, source, box),
        # a ball that crosses the box comes first, as in the captions the toy model learnt from
        "composited_caption": caption(background, [new] + source if relation else source + [new], box),
        "objects_orig": list(dict.fromkeys(o.phrase for o in objects)) + ([world.BOX_WORD] if box else []),
        "objects_edit": [f"{colour} {vocabulary.NOUN}"],
    }
    caveats = _caveats(source, new, box)
    for caveat in caveats:
        warnings.warn(f"toy planner: {caveat}", stacklevel=2)
    chosen = [] if motion else [f"You didn't say how it should move, so I picked '{new[2]}' (a motion no source "
                                f"object has{', that crosses the box' if relation else ''})."]
    turns = _conversation(instruction, new, chosen + caveats, fields)
    return VFXPlan(instruction=instruction, conversation=turns, keyframes=keyframes, backend=BACKEND, **fields)
