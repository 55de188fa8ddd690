"""The toy model's text side: a closed word-level vocabulary and a T5 tokenizer built offline."""

from __future__ import annotations

from transformers import T5Tokenizer

from dynvfx.toy.world import BACKGROUNDS, CAPTION_SHAPES, COLOURS, MOTIONS, SHAPES, caption_for

#: Every word a toy caption can contain (besides colours, shapes, motions and backgrounds).
GLUE_WORDS = ("a", "an", "the", "and", "on", "moves", "bounces", "background", "with", "of", "in", "is")
SPECIALS = ("<pad>", "</s>", "<unk>")  # T5's order: pad=0, eos=1, unk=2


def vocabulary() -> list[str]:
    """All whole words the toy tokenizer knows, in id order after the special tokens."""
    words = [*GLUE_WORDS, *COLOURS, *SHAPES, *MOTIONS, *BACKGROUNDS]
    return list(dict.fromkeys(words))


def build_tokenizer(model_max_length: int = 24) -> T5Tokenizer:
    """A T5 (Unigram) tokenizer whose pieces are the toy vocabulary's whole words.

    Words outside the vocabulary fall back to single letters, so nothing is silently dropped.
    """
    pieces = [(s, 0.0) for s in SPECIALS]
    pieces += [("\u2581" + w, -1.0) for w in vocabulary()]
    pieces += [("\u2581", -5.0)] + [(ch, -10.0) for ch in "abcdefghijklmnopqrstuvwxyz0123456789,.'-"]
    return T5Tokenizer(vocab=pieces, extra_ids=0, model_max_length=model_max_length)


def write_prompt_vocabulary(folder) -> None:
    """Save ``prompt_vocabulary.json`` beside a saved toy pipeline: the CLI uses it to refuse captions that
    name no object this closed-vocabulary model knows."""
    import json
    from pathlib import Path

    from dynvfx.paths import PROMPT_VOCABULARY_FILE

    data = {"colours": list(COLOURS), "objects": list(CAPTION_SHAPES), "motions": list(MOTIONS),
            "backgrounds": list(BACKGROUNDS), "words": vocabulary(),
            "example": caption_for("gray", [("red", "ball", "right")])}
    (Path(folder) / PROMPT_VOCABULARY_FILE).write_text(json.dumps(data, indent=2))
