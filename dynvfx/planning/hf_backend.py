"""The VFX assistant as a local transformers vision-language model (no API key, no network once downloaded).

The default, :data:`DEFAULT_HF_MODEL` (Qwen2.5-VL-3B-Instruct, about 3.8 B parameters), needs about 7.5 GB
for its weights in float16, so it runs on a free Colab T4 (15 GB; the T4 has no bfloat16, hence float16)
with room for three key frames of up to 640 px. On a CPU it works in float32 (~15 GB of RAM) but takes
minutes per plan. Any model that ``AutoModelForImageTextToText`` loads and whose processor has a chat
template with images should do; choose one with ``model=`` or ``$DYNVFX_HF_MODEL``.

Small models often wrap their JSON in code fences or prose; the JSON is dug out of the text, validated,
and a refused reply is answered with what was wrong (see :mod:`dynvfx.planning.dialogue`).
"""

from __future__ import annotations

import functools
import os

import torch
from pydantic import BaseModel

from .dialogue import Message, run_dialogue
from .errors import PlanningError
from .keyframes import frames_to_images, select_keyframes
from .schema import VFXPlan

DEFAULT_HF_MODEL = "Qwen/Qwen2.5-VL-3B-Instruct"
ENV_MODEL = "DYNVFX_HF_MODEL"


def hf_model_name(model: str | None = None) -> str:
    """The model id to load: the argument, else ``$DYNVFX_HF_MODEL``, else :data:`DEFAULT_HF_MODEL`."""
    return model or os.environ.get(ENV_MODEL) or DEFAULT_HF_MODEL


@functools.lru_cache(maxsize=1)
def load_vlm(model_id: str, device: str | None = None, dtype: str | None = None):
    """Load ``(model, processor)`` once per process; float16 on a GPU, float32 on a CPU by default."""
    from transformers import AutoModelForImageTextToText, AutoProcessor

    device = device or ("cuda" if torch.cuda.is_available() else "cpu")
    torch_dtype = getattr(torch, dtype) if dtype else (torch.float16 if device.startswith("cuda") else torch.float32)
    processor = AutoProcessor.from_pretrained(model_id)
    model = AutoModelForImageTextToText.from_pretrained(model_id, dtype=torch_dtype).to(device).eval()
    return model, processor


class HFChat:
    """``ask(messages, reply_model) -> str`` by running ``generate`` on a local VLM.

    The neutral messages (text and PIL image parts) go straight into the processor's chat template,
    which inserts the model's image tokens; only the newly generated tokens are decoded.
    """

    def __init__(self, model, processor, max_new_tokens: int = 768, **generate_kwargs) -> None:
        self.model, self.processor = model, processor
        self.generate_kwargs = {"max_new_tokens": max_new_tokens, "do_sample": False, **generate_kwargs}

    def encode(self, messages: list[Message]):
        """The chat as model inputs: ``input_ids [1, T]``, plus the processor's image tensors."""
        inputs = self.processor.apply_chat_template(
            messages, add_generation_prompt=True, tokenize=True, return_dict=True, return_tensors="pt"
        )
        return inputs.to(self.model.device, dtype=self.model.dtype)

    @torch.inference_mode()
    def __call__(self, messages: list[Message], reply_model: type[BaseModel]) -> str:
        inputs = self.encode(messages)
        out = self.model.generate(**inputs, **self.generate_kwargs)
        new_tokens = out[:, inputs["input_ids"].shape[1] :]
        return self.processor.batch_decode(new_tokens, skip_special_tokens=True)[0].strip()


def _load_or_explain(model_id: str):
    """:func:`load_vlm`, turning a failed download or load into a one-line :class:`PlanningError`."""
    try:
        return load_vlm(model_id)
    except (OSError, ValueError, ImportError) as err:
        first = (str(err).strip().splitlines() or [type(err).__name__])[0]
        raise PlanningError(
            f"could not load the hf planner model {model_id!r} ({first}); pick another with {ENV_MODEL} "
            f"or --planner-model, or plan offline with --planner toy"
        ) from err


def _name_of(vlm) -> str:
    """A model object's hub id or local path, as recorded in its config."""
    return getattr(getattr(vlm, "config", None), "_name_or_path", "") or type(vlm).__name__


def plan_hf(
    frames,
    instruction: str,
    keyframes: list[int] | None = None,
    model: str | None = None,
    vlm=None,
    processor=None,
    max_attempts: int = 3,
    max_new_tokens: int = 768,
    image_max_side: int | None = 640,
    **generate_kwargs,
) -> VFXPlan:
    """Plan an edit of ``frames`` (``[F, 3, H, W]`` float in [0, 1]) with a local transformers VLM.

    Pass ``vlm`` and ``processor`` to use a model already in memory (notebooks, tests); otherwise the model
    id ``model`` (or its default) is loaded once per process. Raises :class:`PlanningError` when no reply
    validates after ``max_attempts`` tries per question.
    """
    if (vlm is None) != (processor is None):
        raise ValueError("pass both vlm and processor, or neither")
    if vlm is None:
        vlm, processor = _load_or_explain(hf_model_name(model))
    name = model or _name_of(vlm)
    keyframes = list(keyframes) if keyframes is not None else select_keyframes(len(frames))
    ask = HFChat(vlm, processor, max_new_tokens, **generate_kwargs)
    images = frames_to_images(frames, keyframes, image_max_side)
    plan = run_dialogue(ask, images, instruction, keyframes, len(frames), max_attempts)
    return plan.model_copy(update={"backend": "hf", "model": name})
