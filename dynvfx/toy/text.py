"""The toy model's text side: a closed word-level vocabulary and a T5 tokenizer built offline."""

from __future__ import annotations

from transformers import T5Tokenizer

import torch

from dynvfx.toy.world import BACKGROUNDS, BOX_WORD, CAPTION_SHAPES, COLOURS, MOTIONS, RELATIONS, SHAPES, caption_for

#: Every word a toy caption can contain (besides colours, shapes, motions and backgrounds).
GLUE_WORDS = ("a", "an", "the", "and", "on", "moves", "bounces", "background", "with", "of", "in", "is")
SPECIALS = ("<pad>", "</s>", "<unk>")  # T5's order: pad=0, eos=1, unk=2


#: The box's words (its noun and the relations' words), after all others so that earlier words keep their ids.
BOX_WORDS = tuple(w for w in dict.fromkeys([BOX_WORD, *" ".join(RELATIONS.values()).split()]) if w not in GLUE_WORDS)


def vocabulary() -> list[str]:
    """All whole words the toy tokenizer knows, in id order after the special tokens."""
    words = [*GLUE_WORDS, *COLOURS, *SHAPES, *MOTIONS, *BACKGROUNDS, *BOX_WORDS]
    return list(dict.fromkeys(words))


def extend_embeddings(text_encoder, old_tokenizer, new_tokenizer, seed: int = 0) -> list[str]:
    """Give a text encoder trained with ``old_tokenizer`` the input embeddings ``new_tokenizer`` needs: each piece
    both know keeps its trained row (wherever its id moved), each new piece gets a random row of the trained rows'
    scale. Returns the new pieces."""
    old_vocab, new_vocab = old_tokenizer.get_vocab(), new_tokenizer.get_vocab()
    old_rows = text_encoder.get_input_embeddings().weight.detach().clone()
    g = torch.Generator().manual_seed(seed)
    rows = torch.randn(len(new_vocab), old_rows.shape[1], generator=g) * old_rows.std()
    added = []
    for piece, i in new_vocab.items():
        if piece in old_vocab:
            rows[i] = old_rows[old_vocab[piece]]
        else:
            added.append(piece)
    text_encoder.resize_token_embeddings(len(new_vocab), mean_resizing=False)
    text_encoder.get_input_embeddings().weight.data.copy_(rows)
    return added


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
