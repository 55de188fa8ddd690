"""The planner in notebook cells: a scripted stand-in for the vision-language model (offline demos of the
dialogue), a readable transcript of a chat, and a plan call that reports a failing backend instead of raising.

Messages use the neutral format of :mod:`dynvfx.planning.dialogue`.
"""

from __future__ import annotations

import textwrap

import torch

from .errors import PlanningError


class ScriptedChat:
    """A stand-in vision-language model for offline demos of :func:`dynvfx.planning.dialogue.run_dialogue`.

    Called like every planning backend, ``ask(messages, reply_model) -> str``, it answers with ``replies`` in
    order and keeps a copy of each chat it was sent in ``sent`` (a list of message lists).
    """

    def __init__(self, replies: list[str]):
        self.replies, self.sent = list(replies), []

    def __call__(self, messages: list[dict], reply_model) -> str:
        self.sent.append(list(messages))
        return self.replies.pop(0)


def try_plan(frames: torch.Tensor, instruction: str, backend: str, model: str | None = None):
    """:func:`dynvfx.planning.plan_edit` for an optional notebook cell: prints the plan as JSON (without the raw
    reply) and returns it, or prints why the backend failed and returns None."""
    from dynvfx.planning import plan_edit

    try:
        plan = plan_edit(frames, instruction, backend=backend, model=model)
    except PlanningError as err:
        print(f"the {backend} planner failed:", err)
        return None
    print(plan.model_dump_json(indent=2, exclude={"raw_reply"}))
    return plan


def transcript(messages: list[dict], width: int = 100) -> str:
    """A chat (neutral message format) as text: one ``[role]`` block per message, images shown as ``[image]``,
    long texts cut to ``width`` characters per line and 12 lines per message."""
    blocks = []
    for m in messages:
        parts = ["[image]" if p["type"] == "image" else p["text"] for p in m["content"]]
        lines = [line for part in parts for raw in part.splitlines() for line in textwrap.wrap(raw, width) or [""]]
        cut = lines[:12] + ([f"... ({len(lines) - 12} more lines)"] if len(lines) > 12 else [])
        blocks.append(f"[{m['role']}]\n" + "\n".join(cut))
    return "\n\n".join(blocks)
