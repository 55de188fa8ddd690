"""The one exception every planner raises when it cannot hand back a usable plan."""

from __future__ import annotations

from dynvfx.errors import DynVFXError


class PlanningError(DynVFXError):
    """The VFX assistant gave no usable plan; the message says why and what to try next.

    Attributes:
        raw_reply: the last text the planner's model produced, if any (also quoted, shortened, in the message).
    """

    def __init__(self, message: str, raw_reply: str = "") -> None:
        super().__init__(message)
        self.raw_reply = raw_reply


def shorten(text: str, limit: int = 600) -> str:
    """Keep the head and tail of ``text`` when it is longer than ``limit`` characters, marking the cut."""
    if len(text) <= limit:
        return text
    head = limit * 2 // 3
    tail = limit - head
    return f"{text[:head]} [... {len(text) - limit} chars cut ...] {text[-tail:]}"


def describe_validation(err) -> str:
    """A pydantic ``ValidationError`` as one line: ``field: problem; field: problem``."""
    lines = []
    for e in err.errors():
        where = ".".join(str(p) for p in e["loc"]) or "top level"
        lines.append(f"{where}: {e['msg'].removeprefix('Value error, ')}")
    return "; ".join(lines)
