"""The VFX plan: what the VFX assistant (a VLM, or the rule-based toy planner) hands to the method."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, Field, ValidationError, field_validator

from .errors import describe_validation

#: Word limits that keep prompts inside the text encoder's window (CogVideoX's T5 takes 226 tokens).
MAX_CAPTION_WORDS = 120
MAX_OBJECT_WORDS = 6
#: Who speaks in the imagined conversation; a ``Literal``, so JSON schemas state it as an enum.
Speaker = Literal["assistant", "artist"]


class Turn(BaseModel):
    """One line of the imagined conversation between the assistant and a VFX artist."""

    speaker: Speaker = Field(description="who speaks: the VFX assistant or the artist")
    text: str

    @field_validator("speaker", mode="before")
    @classmethod
    def _speaker(cls, v):
        return v.strip().lower() if isinstance(v, str) else v  # "Assistant " is still the assistant


class VFXPlan(BaseModel):
    """A reviewable edit plan. Edit the JSON by hand and run ``dynvfx edit --mode execute --plan FILE``."""

    instruction: str = Field(description="P_VFX, the user's edit instruction")
    source_caption: str = Field(description="caption of the source video as it is")
    conversation: list[Turn] = Field(default_factory=list, description="the VFX-artist discussion")
    composited_caption: str = Field(description="P_comp: caption of the edited video, new content included")
    objects_orig: list[str] = Field(description="O_orig: prominent source objects, used as anchors")
    objects_edit: list[str] = Field(description="O_edit: the new objects, segmented during refinement")
    keyframes: list[int] = Field(default_factory=list, description="indices of the frames shown to the planner")
    backend: str = Field(default="", description="which planner made this plan, e.g. 'toy-rules', 'openai'")
    model: str = Field(default="", description="the planner's model name, if any")
    raw_reply: str = Field(default="", description="the planner's raw reply, for the record")

    def save(self, path: str | Path) -> Path:
        """Write as JSON via a temporary file, so a crash never leaves half a plan."""
        path = Path(path)
        tmp = path.with_name(path.name + ".tmp")
        tmp.write_text(self.model_dump_json(indent=2))
        tmp.replace(path)
        return path

    @classmethod
    def load(cls, path: str | Path) -> "VFXPlan":
        """Read a plan file. ``ValueError`` in one line says what is wrong: an empty file, a JSON syntax error
        (with its line and column), or each field that fails validation."""
        text = Path(path).read_text()
        if not text.strip():
            raise ValueError(f"{path} is empty")
        try:
            data = json.loads(text)
        except json.JSONDecodeError as e:
            raise ValueError(f"{path} is not valid JSON: {e.msg} at line {e.lineno}, column {e.colno}") from None
        try:
            return cls.model_validate(data)
        except ValidationError as e:
            raise ValueError(f"{path} is not a valid plan: {describe_validation(e)}") from None
