"""What the VFX assistant is asked, and the shape its answers must have.

DynVFX asks a vision-language model two questions about a few key frames of the source video:

(a) describe the scene, talk the edit through with an imagined VFX artist, and write the composited
    caption ``P_comp`` (the caption of the edited video, with the new content in it);
(b) name ``O_orig`` (source objects the edit touches or must keep) and ``O_edit`` (the new objects).

Captions feed CogVideoX's T5 encoder, which reads at most 226 tokens, so the word limits from
:mod:`dynvfx.planning.schema` are written into the prompts and checked again on the replies.
"""

from __future__ import annotations

from typing import Annotated, get_args

from pydantic import BaseModel, Field, field_validator

from .schema import MAX_CAPTION_WORDS, MAX_OBJECT_WORDS, Speaker

#: Limits on the imagined conversation and on the object lists.
MIN_TURNS = 2
MAX_TURNS = 8
MAX_TURN_WORDS = 60
MAX_OBJECTS = 5
SPEAKERS = get_args(Speaker)

SYSTEM_PROMPT = """\
You plan shots for a visual-effects studio. A user wants new content, often moving, added to a real \
video and gives you a short instruction; you see a few frames of that video in time order. Your plan \
drives a text-to-video model that re-renders the clip, so write plainly about what can be seen: what \
is where, how big it is, how it moves and how light falls on it. Leave out sound, camera jargon and \
anything that happens outside the frames. Everything already in the video stays unless the instruction \
removes it. Answer every question with one JSON object and no other text."""

SCENE_QUESTION = """\
Above are {num_keyframes} key frames (indices {keyframes}) of a {num_frames}-frame video.
Instruction: "{instruction}"

1. Caption the video as it is now, in at most {max_caption} words.
2. Picture yourself working the shot out with an experienced VFX artist: where the new content \
appears, its size next to what is already there, how it moves from frame to frame, and how it meets \
the scene (contact, occlusion, shadows, reflections, matching light). Write that talk as \
{min_turns} to {max_turns} turns that alternate between "assistant" and "artist", each at most \
{max_turn} words.
3. Using what you agreed on, caption the edited video in at most {max_caption} words, describing the \
new content as part of the original scene, as if it had been filmed there.

Reply with a JSON object of this form:
{{"source_caption": "...", "conversation": [{{"speaker": "assistant", "text": "..."}}, \
{{"speaker": "artist", "text": "..."}}], "composited_caption": "..."}}"""

OBJECTS_QUESTION = """\
Now list the objects the edit depends on, each as a noun phrase of at most {max_object} words that a \
text-prompted segmenter can find (say "brown dog", not "the dog that runs to the left").
- objects_orig: 1 to {max_objects} prominent things already in the video that the new content \
touches, covers, stands on or moves around, or that must stay visible.
- objects_edit: 1 to {max_objects} new things the edit adds.

Reply with a JSON object of this form:
{{"objects_orig": ["..."], "objects_edit": ["..."]}}"""

RETRY_MESSAGE = """\
That reply could not be used: {problem}
Answer the same question again with one corrected JSON object only, within the word limits."""


def scene_question(instruction: str, keyframes: list[int], num_frames: int) -> str:
    """Question (a) for one instruction; ``keyframes`` are the indices of the frames shown."""
    return SCENE_QUESTION.format(
        num_keyframes=len(keyframes),
        keyframes=", ".join(str(i) for i in keyframes),
        num_frames=num_frames,
        instruction=instruction,
        max_caption=MAX_CAPTION_WORDS,
        min_turns=MIN_TURNS,
        max_turns=MAX_TURNS,
        max_turn=MAX_TURN_WORDS,
    )


def objects_question() -> str:
    """Question (b), asked in the same chat right after (a) was answered."""
    return OBJECTS_QUESTION.format(max_object=MAX_OBJECT_WORDS, max_objects=MAX_OBJECTS)


def retry_message(problem: str) -> str:
    """The follow-up sent after an unusable reply, quoting what was wrong with it."""
    return RETRY_MESSAGE.format(problem=problem)


def count_words(text: str) -> int:
    """Whitespace-separated words in ``text``."""
    return len(text.split())


def _check_text(text: str, max_words: int, what: str) -> str:
    """Strip ``text``; refuse it if empty or longer than ``max_words`` words."""
    text = " ".join(text.split())
    if not text:
        raise ValueError(f"{what} is empty")
    n = count_words(text)
    if n > max_words:
        raise ValueError(f"{what} has {n} words, the limit is {max_words}")
    return text


def words_pattern(max_words: int) -> str:
    """The JSON Schema ``pattern`` of what :func:`_check_text` accepts: 1 to ``max_words`` words."""
    return rf"^\s*\S+(\s+\S+){{0,{max_words - 1}}}\s*$"


def Words(max_words: int):  # noqa: N802 - a type, as Annotated aliases are named
    """A ``str`` whose JSON schema carries its word limit as a ``pattern``, so a server that follows the schema
    (structured outputs, guided decoding) writes text the validators accept; the validators give the message."""
    return Annotated[str, Field(json_schema_extra={"pattern": words_pattern(max_words)})]


class ArtistTurn(BaseModel):
    """One turn of the imagined talk with the VFX artist, as the model writes it."""

    speaker: Speaker  # a Literal: the JSON schema sent to the server carries the enum
    text: Words(MAX_TURN_WORDS)

    @field_validator("speaker", mode="before")
    @classmethod
    def _speaker(cls, v):
        v = v.strip().lower() if isinstance(v, str) else v
        if v not in SPEAKERS:
            raise ValueError(f"speaker must be one of {list(SPEAKERS)}, got {v!r}")
        return v

    @field_validator("text")
    @classmethod
    def _text(cls, v: str) -> str:
        return _check_text(v, MAX_TURN_WORDS, "a turn")


class SceneReply(BaseModel):
    """The answer to question (a)."""

    source_caption: Words(MAX_CAPTION_WORDS)
    conversation: list[ArtistTurn] = Field(min_length=MIN_TURNS, max_length=MAX_TURNS)
    composited_caption: Words(MAX_CAPTION_WORDS)

    @field_validator("source_caption", "composited_caption")
    @classmethod
    def _caption(cls, v: str, info) -> str:
        return _check_text(v, MAX_CAPTION_WORDS, info.field_name)


class ObjectsReply(BaseModel):
    """The answer to question (b)."""

    objects_orig: list[Words(MAX_OBJECT_WORDS)] = Field(min_length=1, max_length=MAX_OBJECTS)
    objects_edit: list[Words(MAX_OBJECT_WORDS)] = Field(min_length=1, max_length=MAX_OBJECTS)

    @field_validator("objects_orig", "objects_edit")
    @classmethod
    def _phrases(cls, v: list[str], info) -> list[str]:
        """Each phrase within the word limit; repeats (ignoring case) dropped."""
        out: list[str] = []
        for phrase in v:
            phrase = _check_text(phrase, MAX_OBJECT_WORDS, f"phrase {phrase!r}")
            if phrase.lower() not in (p.lower() for p in out):
                out.append(phrase)
        return out
