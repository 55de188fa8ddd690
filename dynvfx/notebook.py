"""Notebook setup in one place: quiet logging, the model/segmenter/planner choice, loading the model and the
source video every chapter starts from.

Frames are ``[F, 3, H, W]`` float in [0, 1].
"""

from __future__ import annotations

import warnings
from pathlib import Path

import torch

from dynvfx.paths import EXAMPLES_DIR, SHARED_VIDEOS

#: The real clip of the optional cells (in :data:`dynvfx.paths.SHARED_VIDEOS`, beside the repository).
REAL_VIDEO = SHARED_VIDEOS / "taxi.mp4"
REAL_INSTRUCTION = "add a huge dinosaur walking down the street between the cars"


def setup_notebook(dpi: int = 80) -> None:
    """Notebook defaults: hide the loading progress bars and deprecation chatter of diffusers/transformers, print
    warnings on one line without the source line (dynvfx's own warnings stay visible), and draw figures at
    ``dpi`` dots per inch (keeps the saved notebooks small)."""
    import matplotlib
    from diffusers.utils import logging as diffusers_logging
    from transformers.utils import logging as transformers_logging

    for log in (diffusers_logging, transformers_logging):
        log.disable_progress_bar()
        log.set_verbosity_error()
    warnings.filterwarnings("ignore", category=FutureWarning)
    warnings.filterwarnings("ignore", category=DeprecationWarning)
    warnings.formatwarning = lambda message, category, *args, **kwargs: f"{category.__name__}: {message}\n"
    matplotlib.rcParams["figure.dpi"] = dpi


def resolve_choices(model: str = "toy", segmenter: str | None = None, planner: str | None = None):
    """The ``(model, segmenter, planner)`` to run with (None = not used by this chapter, returned as None).

    A CogVideoX model needs a GPU: without one everything falls back to the toy model, segmenter and planner, with
    a note. The toy model only understands toy-world captions, so it always goes with the toy segmenter/planner.
    """
    toy = ("toy", segmenter and "toy", planner and "toy")
    if model != "toy" and not torch.cuda.is_available():
        print(f"no GPU here, so {model!r} cannot run: using the toy model (and the toy segmenter and planner)")
        return toy
    if model == "toy":
        if (segmenter, planner) != toy[1:]:
            print("the toy model goes with the toy segmenter and planner: using those")
        return toy
    if "toy" in (segmenter, planner):
        print("note: the toy segmenter and planner only understand the toy world; set SEGMENTER and PLANNER too")
    return model, segmenter, planner


def load_model(name: str = "toy", memory: str = "auto"):
    """The pipeline ``name`` ("toy", a saved folder or a hub id): :func:`dynvfx.pipeline.load_pipeline`, with its
    ``memory`` mode (``"auto"``: the fastest that fits this GPU; docs/gpu.md). On a GPU it prints the mode it
    chose."""
    from dynvfx.pipeline import load_pipeline, memory_mode

    pipe = load_pipeline(name, memory=memory)
    if torch.cuda.is_available():
        print(f"{name}: memory mode {memory_mode(pipe)!r} (docs/gpu.md lists each mode's peak and speed)")
    return pipe


def edit_inputs(model: str, segmenter: str, planner: str, toy_steps: int = 20,
                video: str | Path | None = None, instruction: str | None = None, memory: str = "auto"):
    """Everything a chapter's edit starts from: ``(pipe, spec, frames [F, 3, H, W], plan, segmenter, config)``.

    Loads the model (:func:`load_model`, ``memory`` as there), takes the source video and instruction
    (:func:`source_video`: ``video`` or the default one), plans the edit with ``planner`` and builds ``segmenter``.
    ``config`` is :meth:`DynVFXConfig.for_model`; for the toy model with ``toy_steps`` sampling and inversion steps
    instead of 50, to keep a chapter short on a CPU.
    """
    from dynvfx.config import DynVFXConfig
    from dynvfx.pipeline import video_spec
    from dynvfx.planning import plan_edit
    from dynvfx.segmentation import get_segmenter

    pipe = load_model(model, memory=memory)
    frames, instruction = source_video(pipe, model, video=video, instruction=instruction)
    config = DynVFXConfig.for_model(model)
    if model == "toy":
        config = config.replace(num_inference_steps=toy_steps, inversion_steps=toy_steps)
    plan = plan_edit(frames, instruction, backend=planner)
    return pipe, video_spec(pipe), frames, plan, get_segmenter(segmenter), config


def source_video(pipe, model: str, example: str = "blue_ball_down", video: str | Path | None = None,
                 instruction: str | None = None) -> tuple[torch.Tensor, str]:
    """Source frames ``[F, 3, H, W]`` and an edit instruction.

    ``video`` None: the toy ``example`` for the toy model, else :data:`REAL_VIDEO` (if that clip is not here, the
    toy example, with a note). A ``video`` is a path or the name of a shipped toy clip (:func:`video_path`); with
    the toy model it should be a toy-world clip, e.g. ``"yellow_ball_up"``. With a ``pipe`` the frames are fitted
    to its size. The instruction: the argument, else the one in a ``.json`` beside the video (the toy examples
    have one), else the default clip's.
    """
    from dynvfx.toy.examples import EXAMPLES, example_frames
    from dynvfx.video import load_video

    if video is None and model != "toy":
        if REAL_VIDEO.exists():
            video = REAL_VIDEO
        else:
            print(f"NOTE: the course's clip {REAL_VIDEO} is not here (it ships beside the repository, not in it), "
                  f"so this runs on the toy clip {example!r}, which {model} was not trained on. To edit your own "
                  "video, set VIDEO = \"path/to/clip.mp4\" in the switch cell (on Colab: upload it in the Files "
                  "panel first).")
    if video is None:
        frames, default = example_frames(example), EXAMPLES[example][3]
    else:
        video = video_path(video)
        frames = load_video(video)[0]
        default = _instruction_beside(Path(video)) or (REAL_INSTRUCTION if model != "toy" else EXAMPLES[example][3])
    if pipe is not None and (video is not None or model != "toy"):  # fit to the model (the toy examples are)
        from dynvfx.edit import prepare_source

        frames, note = prepare_source(pipe, frames)
        if note:
            print(note)
    return frames, instruction or default


def video_path(video: str | Path) -> Path:
    """A video given by path, or by the name of a shipped toy clip (``"yellow_ball_up"`` ->
    ``EXAMPLES_DIR/yellow_ball_up.mp4``), so a chapter's ``VIDEO`` works from any working folder (e.g. Colab's)."""
    shipped = EXAMPLES_DIR / f"{video}.mp4"
    return shipped if isinstance(video, str) and "/" not in video and shipped.exists() else Path(video)


def _instruction_beside(video: Path) -> str | None:
    """The ``instruction`` of the ``.json`` next to a video (as the toy examples ship), if there is one."""
    import json

    meta = video.with_suffix(".json")
    return json.loads(meta.read_text()).get("instruction") if meta.exists() else None


def toy_truth(video: str | Path | None = None, example: str = "blue_ball_down"):
    """Ground truth of a toy-world source, from the renderer: ``(caption, words, mask)`` for the toy ``example``
    (``video`` None) or the scene in the ``.json`` beside ``video`` (as the toy examples ship); None for a video
    without one (a real clip). ``words``: the first object's colour, "ball" and its motion word, then the
    background's colour; ``mask`` ``[F, 1, H, W]`` bool: where that first object is visible. ``video`` as in
    :func:`source_video`."""
    import json

    from dynvfx.toy import world
    from dynvfx.toy.examples import example_scene

    video = None if video is None else video_path(video)
    if video is None:
        scene = example_scene(example)
    elif video.with_suffix(".json").exists():
        meta = json.loads(video.with_suffix(".json").read_text())
        scene = world.Scene.from_dict({k: v for k, v in meta.items() if k != "instruction"})
    else:
        return None
    first = scene.objects[0]
    motion = world.motion_phrase(first.motion).split()[-1]  # the caption's word for it
    masks = torch.from_numpy(world.render(scene)[1])
    return scene.caption, [first.colour, "ball", motion, scene.background], masks[0, :, None]


def gpu_key() -> str:
    """This machine's GPU as a key of :data:`dynvfx.cost.GPUS` ("t4", "a100", ...; "h100" if unknown or none)."""
    name = torch.cuda.get_device_name(0).lower() if torch.cuda.is_available() else ""
    if "a100" in name:
        return "a100-80" if torch.cuda.get_device_properties(0).total_memory > 50 * 2**30 else "a100"
    return next((key for key in ("t4", "l4", "a10", "h100") if key in name), "h100")


def print_cost(model: str, config=None) -> None:
    """With a real model, print :func:`dynvfx.cost.estimate` of one edit with ``config`` on this GPU (so the
    heavy cells' cost is known before they run); nothing for the toy model, which runs in seconds."""
    if model == "toy":
        return
    from dynvfx.cost import estimate

    print(estimate(model, gpu=gpu_key(), config=config).table())
