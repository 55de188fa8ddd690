"""The VFX assistant: turns key frames and an instruction into a :class:`VFXPlan`.

Backends:

- ``"toy"``: the offline rule-based planner of :mod:`dynvfx.planning.toy` (no model, no key);
- ``"openai"``: any OpenAI-compatible chat endpoint (:mod:`dynvfx.planning.openai_backend`);
- ``"hf"``: a local transformers VLM (:mod:`dynvfx.planning.hf_backend`).

Example::

    plan = plan_edit(frames, "a puppy runs across the lawn", backend="openai")
    print(plan.composited_caption, plan.objects_orig, plan.objects_edit)
"""

from __future__ import annotations

import warnings
from pathlib import Path

from .cache import default_cache_dir, load_plan, plan_key, store_plan
from .errors import PlanningError
from .hf_backend import DEFAULT_HF_MODEL, hf_model_name, plan_hf
from .keyframes import frames_to_data_urls, frames_to_images, select_keyframes
from .openai_backend import DEFAULT_OPENAI_MODEL, openai_model_name, plan_openai
from .schema import MAX_CAPTION_WORDS, MAX_OBJECT_WORDS, Turn, VFXPlan

BACKENDS = ("toy", "openai", "hf")

__all__ = [
    "BACKENDS",
    "DEFAULT_HF_MODEL",
    "DEFAULT_OPENAI_MODEL",
    "MAX_CAPTION_WORDS",
    "MAX_OBJECT_WORDS",
    "PlanningError",
    "Turn",
    "VFXPlan",
    "frames_to_data_urls",
    "frames_to_images",
    "plan_edit",
    "plan_hf",
    "plan_openai",
    "select_keyframes",
]


def _clean_instruction(instruction) -> str:
    """The instruction with its whitespace tidied; :class:`PlanningError` if there is nothing left."""
    text = " ".join(str(instruction or "").split())
    if not text:
        raise PlanningError("the edit instruction is empty: say what to add, e.g. 'a dog runs across the lawn'")
    return text


def _model_name(backend: str, model: str | None, backend_kwargs: dict) -> str:
    """The model name a backend will use, so the cache key names it even when defaulted."""
    if backend == "openai":
        return openai_model_name(model)
    if backend == "hf":
        vlm = backend_kwargs.get("vlm")
        if model or vlm is None:
            return hf_model_name(model)
        return getattr(getattr(vlm, "config", None), "_name_or_path", "") or type(vlm).__name__
    return model or ""


def _cache_dir(cache_dir, backend: str) -> Path | None:
    """Where to cache: the given folder; by default none for the toy planner and
    :func:`default_cache_dir` for the model backends; ``False`` turns caching off."""
    if cache_dir is False:
        return None
    if cache_dir is None:
        return None if backend == "toy" else default_cache_dir()
    return Path(cache_dir)


def _run_backend(backend: str, frames, instruction: str, keyframes: list[int], model: str, **kwargs) -> VFXPlan:
    """Call one backend; the toy planner is imported only when asked for."""
    if backend == "toy":
        from .toy import plan_toy

        try:
            return plan_toy(frames, instruction, keyframes=keyframes, **kwargs)
        except ValueError as err:  # the toy planner's word for an instruction it cannot read
            raise PlanningError(str(err)) from err
    if backend == "openai":
        return plan_openai(frames, instruction, keyframes=keyframes, model=model, **kwargs)
    return plan_hf(frames, instruction, keyframes=keyframes, model=model, **kwargs)


def _stamp(plan: VFXPlan, instruction: str, keyframes: list[int], backend: str, model: str) -> VFXPlan:
    """Make sure the plan records what produced it (a backend's own labels are kept)."""
    return plan.model_copy(
        update={
            "instruction": plan.instruction or instruction,
            "keyframes": plan.keyframes or list(keyframes),
            "backend": plan.backend or backend,
            "model": plan.model or model,
        }
    )


def plan_edit(
    frames,
    instruction: str,
    backend: str = "toy",
    model: str | None = None,
    cache_dir: str | Path | None | bool = None,
    keyframes: list[int] | None = None,
    **backend_kwargs,
) -> VFXPlan:
    """Plan adding ``instruction``'s content to ``frames`` (``[F, 3, H, W]`` float in [0, 1]).

    Args:
        backend: ``"toy"``, ``"openai"`` or ``"hf"``.
        model: the backend's model name (defaults per backend, see their modules).
        cache_dir: folder for cached plans; ``None`` means :func:`~dynvfx.planning.cache.default_cache_dir`
            for model backends and no cache for the toy planner; ``False`` disables caching.
        keyframes: frame indices to show; default first, middle and last.
        **backend_kwargs: passed to the backend, e.g. ``api_key``, ``base_url``, ``timeout`` for openai,
            ``vlm``/``processor`` for hf.

    Returns the plan, recording keyframes, backend, model, raw reply and the artist conversation.
    Raises :class:`PlanningError` for an empty instruction, an unknown backend or a planner failure.
    """
    instruction = _clean_instruction(instruction)
    if backend not in BACKENDS:
        raise PlanningError(f"unknown planner backend {backend!r}; choose one of {', '.join(BACKENDS)}")
    keyframes = list(keyframes) if keyframes is not None else select_keyframes(len(frames))
    model_name = _model_name(backend, model, backend_kwargs)
    folder = _cache_dir(cache_dir, backend)
    key = plan_key(frames, keyframes, instruction, backend, model_name) if folder else ""
    cached = load_plan(folder, key) if folder else None
    if cached is not None:
        return cached
    plan = _run_backend(backend, frames, instruction, keyframes, model, **backend_kwargs)
    plan = _stamp(plan, instruction, keyframes, backend, model_name)
    if folder:
        try:
            store_plan(folder, key, plan)
        except OSError as err:
            warnings.warn(f"could not cache the plan in {folder}: {err}", stacklevel=2)
    return plan
