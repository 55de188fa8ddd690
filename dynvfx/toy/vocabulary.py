"""The toy tools' vocabulary: the words an instruction or a phrase may use, mapped to the toy world's names.

The toy planner (:mod:`dynvfx.planning.toy`) and segmenter (:mod:`dynvfx.segmentation.toy`) read text with these
tables; the toy model's own tokenizer is :mod:`dynvfx.toy.text`.
"""

from __future__ import annotations

import re

from dynvfx.toy import world

NOUN: str = world.CAPTION_SHAPES[0]  # "ball": the toy vocabulary's one object noun

#: Words (lower case) the toy tools understand, mapped to toy-world names.
COLOUR_WORDS: dict[str, str] = {c: c for c in world.COLOURS}
#: Nouns for the toy world's one object, the ball.
OBJECT_WORDS: dict[str, str] = {
    w: NOUN for w in ("ball", "balls", "circle", "circles", "disc", "disk", "sphere", "dot", "orb")
}
#: Shape nouns the toy world does not draw as objects (it once had squares and triangles): a phrase naming one
#: of these names nothing in a toy video.
OTHER_SHAPE_WORDS: frozenset[str] = frozenset({
    "square", "squares", "cube", "cubes", "block", "blocks", "rectangle", "rectangles",
    "triangle", "triangles", "pyramid", "pyramids", "star", "stars",
})
#: Words for the scene's one box (the occluder, ``world.BOX_WORD``): a place, never an object to add.
BOX_WORDS: frozenset[str] = frozenset({"box", "boxes", "crate"})
#: How an instruction places a ball relative to the box: word sequences -> ``world.RELATIONS``' keys.
RELATION_WORDS: dict[tuple[str, ...], str] = {
    ("behind",): "behind", ("in", "front", "of"): "front", ("in", "front"): "front", ("before",): "front",
}
MOTION_WORDS: dict[str, str] = {
    **{w: "left" for w in ("left", "leftward", "leftwards")},
    **{w: "right" for w in ("right", "rightward", "rightwards")},
    **{w: "up" for w in ("up", "upward", "upwards", "rising", "rises", "rise", "ascending", "ascends")},
    **{w: "down" for w in ("down", "downward", "downwards", "falling", "falls", "fall", "sinking", "sinks",
                           "dropping", "drops", "descending", "descends")},
    **{w: "bounce" for w in ("bounce", "bounces", "bouncing", "bouncy", "hopping", "hops", "jumping", "jumps")},
}


def words(text: str) -> list[str]:
    """Lower-case words of ``text`` (letters only): ``"The Red-Ball!"`` -> ``["the", "red", "ball"]``."""
    return re.findall(r"[a-z]+", text.lower())


def first_name(text: str, vocabulary: dict[str, str]) -> str | None:
    """The toy name of the first word of ``text`` found in ``vocabulary``, or None."""
    return next((vocabulary[w] for w in words(text) if w in vocabulary), None)


def names_box(text: str) -> bool:
    """Whether ``text`` names the box (``BOX_WORDS``)."""
    return bool(BOX_WORDS & set(words(text)))


def relation(text: str) -> str | None:
    """The relation to the box (``"behind"`` or ``"front"``) that ``text`` names first, or None:
    ``"moving right behind the box"`` -> ``"behind"``; ``"in front of the box"`` -> ``"front"``."""
    ws = words(text)
    for i in range(len(ws)):
        for phrase, name in RELATION_WORDS.items():
            if tuple(ws[i:i + len(phrase)]) == phrase:
                return name
    return None
