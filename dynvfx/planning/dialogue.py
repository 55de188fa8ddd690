"""The two-question chat with the VFX assistant, shared by every model backend.

A backend is just an ``ask(messages, reply_model) -> str`` callable: it sends the chat so far and returns
the model's raw text. Messages use one neutral format that both backends translate::

    {"role": "system" | "user" | "assistant", "content": [{"type": "text", "text": str}
                                                          | {"type": "image", "image": PIL.Image}]}

Here the replies are parsed and checked; an unusable reply is answered with what was wrong, up to
``max_attempts`` tries per question, then :class:`PlanningError` quotes the last raw reply.
"""

from __future__ import annotations

import json
from typing import Callable, TypeVar

from PIL import Image
from pydantic import BaseModel, ValidationError

from .errors import PlanningError, describe_validation, shorten
from .prompts import SYSTEM_PROMPT, ObjectsReply, SceneReply, objects_question, retry_message, scene_question
from .schema import Turn, VFXPlan

Message = dict
Ask = Callable[[list[Message], type[BaseModel]], str]
R = TypeVar("R", bound=BaseModel)

#: Separates the two raw replies in ``VFXPlan.raw_reply``.
REPLY_SEPARATOR = "\n\n----- objects -----\n\n"


def text_message(role: str, text: str) -> Message:
    """A message holding only text."""
    return {"role": role, "content": [{"type": "text", "text": text}]}


def opening_messages(
    images: list[Image.Image], instruction: str, keyframes: list[int], num_frames: int
) -> list[Message]:
    """System prompt, then the key frames followed by question (a)."""
    content = [{"type": "image", "image": im} for im in images]
    content.append({"type": "text", "text": scene_question(instruction, keyframes, num_frames)})
    return [text_message("system", SYSTEM_PROMPT), {"role": "user", "content": content}]


def extract_json(text: str) -> dict:
    """The first JSON object in ``text``, ignoring code fences and prose around it.

    Raises ``ValueError`` if there is none.
    """
    decoder = json.JSONDecoder()
    start = text.find("{")
    while start != -1:
        try:
            obj, _ = decoder.raw_decode(text, start)
        except json.JSONDecodeError:
            obj = None
        if isinstance(obj, dict):
            return obj
        start = text.find("{", start + 1)
    raise ValueError("no JSON object found in the reply")


def describe_problem(err: Exception) -> str:
    """A short, model-readable account of why a reply was refused."""
    return describe_validation(err) if isinstance(err, ValidationError) else str(err)


def parse_reply(text: str, reply_model: type[R]) -> R:
    """Validate the JSON inside ``text`` as ``reply_model``; raises ``ValueError``/``ValidationError``."""
    return reply_model.model_validate(extract_json(text))


def ask_until_valid(
    ask: Ask, messages: list[Message], reply_model: type[R], max_attempts: int, what: str
) -> tuple[R, str]:
    """Ask until a reply validates as ``reply_model``; returns it with its raw text.

    On success the accepted reply is appended to ``messages`` (failed tries are not kept in the history).
    """
    if max_attempts < 1:
        raise ValueError(f"max_attempts must be at least 1, got {max_attempts}")
    tries = list(messages)
    raw, problem = "", ""
    for _ in range(max_attempts):
        raw = ask(tries, reply_model) or ""
        try:
            reply = parse_reply(raw, reply_model)
        except (ValueError, ValidationError) as err:
            problem = describe_problem(err)
            tries += [text_message("assistant", raw), text_message("user", retry_message(problem))]
            continue
        messages.append(text_message("assistant", raw))
        return reply, raw
    raise PlanningError(
        f"the planner gave no usable {what} after {max_attempts} attempt(s) ({problem}); "
        f"last raw reply: {shorten(raw)!r}",
        raw_reply=raw,
    )


def run_dialogue(
    ask: Ask,
    images: list[Image.Image],
    instruction: str,
    keyframes: list[int],
    num_frames: int,
    max_attempts: int = 3,
) -> VFXPlan:
    """Ask questions (a) and (b) in one chat and assemble the plan (backend/model left for the caller)."""
    messages = opening_messages(images, instruction, keyframes, num_frames)
    scene, raw_scene = ask_until_valid(ask, messages, SceneReply, max_attempts, "scene description")
    messages.append(text_message("user", objects_question()))
    objects, raw_objects = ask_until_valid(ask, messages, ObjectsReply, max_attempts, "object lists")
    return VFXPlan(
        instruction=instruction,
        source_caption=scene.source_caption,
        conversation=[Turn(speaker=t.speaker, text=t.text) for t in scene.conversation],
        composited_caption=scene.composited_caption,
        objects_orig=objects.objects_orig,
        objects_edit=objects.objects_edit,
        keyframes=list(keyframes),
        raw_reply=raw_scene + REPLY_SEPARATOR + raw_objects,
    )
