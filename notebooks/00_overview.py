# ---
# jupyter:
#   jupytext:
#     cell_metadata_filter: jupyter,tags,-all
#     formats: ipynb,py:percent
#     text_representation:
#       extension: .py
#       format_name: percent
#       format_version: '1.3'
#       jupytext_version: 1.19.6
#   kernelspec:
#     display_name: Python 3 (ipykernel)
#     language: python
#     name: python3
# ---

# %% [markdown]
# # 0 · DynVFX in one page
#
# [![Open In Colab](https://colab.research.google.com/assets/colab-badge.svg)](https://colab.research.google.com/github/dynvfx-course/dynvfx/blob/main/notebooks/00_overview.ipynb)
#
# **What you will learn.** DynVFX (Yatim et al., 2025, [arXiv 2502.03621](https://arxiv.org/abs/2502.03621)) adds
# new, *moving* content to a real video from a short instruction such as "add a red ball moving right". It needs no
# training: a pretrained text-to-video diffusion transformer (CogVideoX) does the work, steered in three ways. This
# page runs the whole edit in a handful of cells and shows the result next to the source, with the masks the method
# used, and says honestly where the toy falls short of the paper. The following chapters open each stage up:
#
# | chapter | stage |
# |---|---|
# | 1 · DDIM inversion | turn the source video into noise the model can regenerate it from |
# | 2 · attention maps | where the transformer looks, and why source keys/values stay "local" |
# | 3 · VLM planning | the VFX assistant that writes the captions and object lists |
# | 4 · anchor masking | which source tokens the edit may attend to (Anchor Extended Attention) |
# | 5 · residual refinement | the iterations that grow the new content, ablations and metrics |
#
# The paper's method overview is its Fig. 2; its results, as videos, are on the project page,
# https://dynvfx.github.io/ (worth watching before and after this page: the toy world below is much simpler).
#
# **Run time.** 21 s on one CPU thread with the toy model (measured by `notebooks/build.py`).
# The toy chapter samples with 20 steps instead of the paper's 50 to keep it short; on a GPU it takes a few
# seconds. With CogVideoX at the paper's settings (250 inversion steps, 7 refinement passes of 50-step sampling)
# an edit takes tens of minutes: with a real model the switch cell below prints `dynvfx.cost`'s estimate for your GPU
# (`notebook.print_cost`) before anything heavy runs, and docs/gpu.md lists the measured times per GPU.

# %% [markdown]
# ## Setup
#
# On Colab this clones the repository (the toy model and the example videos live in it) and installs the package
# and its dependencies, keeping Colab's own CUDA build of PyTorch. Where `dynvfx` is already installed it does
# nothing.

# %%
import importlib.util, subprocess, sys  # noqa: E401

if importlib.util.find_spec("dynvfx") is None:  # e.g. on Colab: clone the course and install it (keeps Colab's torch)
    subprocess.run("[ -d dynvfx-course ] || git clone -q --depth 1 https://github.com/dynvfx-course/dynvfx dynvfx-course"
                   f" && {sys.executable} -m pip install -q -e dynvfx-course", shell=True, check=True)
    sys.path.insert(0, "dynvfx-course")

# %% [markdown]
# ## Choose the video and the model
#
# The default runs anywhere: a **toy model** shipped with the course, a small diffusion transformer built from
# diffusers' own CogVideoX classes (RoPE, 3D autoencoder, T5 text encoder, v-prediction) and trained on videos of
# coloured balls moving over flat backgrounds (48×48 pixels, 17 frames; docs/toy-model.md says how to train it
# again). Its vocabulary is what it draws: a colour, "ball", a motion and a background. It is small and imperfect
# (docs/toy-model.md has its measured quality); in particular, with *two* balls in one caption it does not always
# draw both right, which matters for an edit that adds a second ball.
#
# `VIDEO = None` takes the shipped toy example (with the toy model) or the course's real clip
# (`notebook.REAL_VIDEO`, with a real model); any path works too, e.g. `"../../shared/data/videos/taxi.mp4"`. With
# the toy model, name a shipped toy-world clip such as `"yellow_ball_up"` (found in `data/examples/` from any folder,
# Colab's too; its instruction comes from the `.json` beside it).
#
# With a GPU you may switch to a real model: `MODEL = "THUDM/CogVideoX-2b"` (float16, no RoPE) or
# `"THUDM/CogVideoX-5b"` (bfloat16, the paper's model). `MEMORY` is the library's memory mode: `"auto"` picks the
# fastest of `"full"`, `"lean"` (the text encoder visits the GPU only to encode a prompt), `"offload"` and
# `"sequential"` that fits your GPU, and prints its choice. `docs/gpu.md` lists each mode's peak
# memory and each GPU's run time; the cell below prints the estimate for yours.
# Real videos also need a real segmenter (`"grounded-sam2"` or `"sam3"`) and a VLM planner (`"openai"` with an
# `OPENAI_API_KEY`, or `"hf"` for a local model). Without a GPU the cell below falls back to the toy setup.

# %%
VIDEO = None  # None: the toy example, or notebook.REAL_VIDEO with a real model; a shipped clip's name; or a path
MODEL = "toy"  # on a GPU: "THUDM/CogVideoX-2b" or "THUDM/CogVideoX-5b"
SEGMENTER = "toy"  # with CogVideoX: "grounded-sam2", "sam3" or "masks:/path/to/masks"
PLANNER = "toy"  # with CogVideoX: "openai" (needs OPENAI_API_KEY) or "hf" (a local VLM)
MEMORY = "auto"  # on a GPU: "auto" (the fastest mode that fits), "full", "lean" or "offload"; docs/gpu.md

from dynvfx import figures, notebook

notebook.setup_notebook()
MODEL, SEGMENTER, PLANNER = notebook.resolve_choices(MODEL, SEGMENTER, PLANNER)
notebook.print_cost(MODEL)  # a real model only: the estimate of this edit at the paper's settings, on this GPU

# %% [markdown]
# ## The source video and the instruction
#
# For the toy model the source is one of the shipped examples; for CogVideoX it is a real clip (a drive through
# a city, if the course's shared videos are present), or `VIDEO`. A real clip is fitted to the model's native
# size; pass your own instruction with `notebook.source_video(pipe, MODEL, video=VIDEO, instruction="add ...")`.

# %%
from dynvfx.pipeline import video_spec

pipe = notebook.load_model(MODEL, memory=MEMORY)
spec = video_spec(pipe)
frames, instruction = notebook.source_video(pipe, MODEL, video=VIDEO)
figures.show_videos({"source": frames})

# %%
# NBVAL_CHECK_OUTPUT
print(f"model size: {spec.num_frames} frames of {spec.height}x{spec.width} pixels")
print(f"source frames: {tuple(frames.shape)}  ([F, 3, H, W], values in [0, 1])")
print(f"token grid (latent frames, rows, columns): {spec.token_grid}")
print(f"instruction: {instruction!r}")

# %% [markdown]
# ## 1. Plan the edit
#
# The VFX assistant looks at a few key frames and turns the instruction into what the method needs:
# the **composited caption** `P_comp` (a caption of the edited video, new content included), the prominent source
# objects `O_orig` (their tokens become the main *anchors*) and the new objects `O_edit` (segmented at every
# refinement pass). The toy planner is a rule-based stand-in for the VLM (chapter 3).

# %%
# NBVAL_CHECK_OUTPUT
from dynvfx.planning import plan_edit

plan = plan_edit(frames, instruction, backend=PLANNER)
print("P_comp :", plan.composited_caption)
print("O_orig :", plan.objects_orig)
print("O_edit :", plan.objects_edit)

# %% [markdown]
# ## 2. Run the edit
#
# `run_edit` chains the stages: encode the source into latents `x_orig`, DDIM-invert them (chapter 1), segment
# `O_orig` and draw the anchor tokens (chapter 4), then refine a residual `x_res` over several SDEdit passes of
# decreasing strength, each sampled with Anchor Extended Attention and masked to where `O_edit` was found
# (chapter 5). The output is `decode(x_orig + x_res)` inside the `O_edit` mask and the source's own pixels
# outside it.

# %%
from dynvfx.config import DynVFXConfig
from dynvfx.edit import run_edit
from dynvfx.segmentation import get_segmenter

config = DynVFXConfig.for_model(MODEL)
if MODEL == "toy":  # 20 steps instead of 50 keep this page under a minute on a CPU
    config = config.replace(num_inference_steps=20, inversion_steps=20)
result = run_edit(pipe, frames, plan, get_segmenter(SEGMENTER), config, progress=False)
print("seconds per stage:", {k: round(v, 1) for k, v in result.seconds.items()})
print("O_edit found in refinement pass:", [it.found for it in result.refinement.iterations])

# %% [markdown]
# ## 3. The result and the masks
#
# Red: the `O_orig` mask in the source (where anchors are dense). Green: the `O_edit` mask found in the edit (the
# only place the residual may change the video). If the model does not produce the new object at all, the green
# mask is empty and the output is the source itself (a warning says so).

# %%
from dynvfx.figures import mask_video

masks = mask_video(frames, result.source_mask, result.edit_mask)
figures.video_grid({"source": frames, "DynVFX": result.frames, "masks": masks}, title=plan.instruction);

# %% [markdown]
# **What you should see:** a red ball appears in every frame and moves *right* as asked, along the top edge from
# the upper left towards the top's centre-right (the green mask slides with it), a blurry, boxy blob rather than a
# clean disc. The blue ball is left as it was, and outside the green mask the frames are the source's.

# %%
figures.show_videos({"source": frames, "DynVFX": result.frames, "O_orig (red) / O_edit (green)": masks})

# %% [markdown]
# Did the new object do what the instruction asked? For the toy world we can measure it: the centre of the green
# mask in every frame gives the new ball's track, and `dynvfx.toy.perception.classify_motion` names its direction
# (the same for the source ball and its red mask).

# %%
from dynvfx.toy.perception import centroid_track, classify_motion

new_track = centroid_track(result.edit_mask[:, 0].numpy())
old_track = centroid_track(result.source_mask[:, 0].numpy())
print(f"instruction: {plan.instruction!r}")
print(f"the new object (green) moves {classify_motion(new_track)!r}: centre (x, y) from {new_track[0].round(1)} "
      f"to {new_track[-1].round(1)} pixels")
print(f"the source object (red) moves {classify_motion(old_track)!r}: from {old_track[0].round(1)} to "
      f"{old_track[-1].round(1)}")

from dynvfx.lab.edit_bench import EditRun
from dynvfx.paths import REPO_ROOT

saved = EditRun.load(REPO_ROOT / "benchmarks" / "results" / "toy_edit.json")  # the toy edit benchmark's results
right = sum(r["success"] for r in saved.results["authors"])
print(f"toy edit benchmark: DynVFX judged right on {right} of {len(saved.ceiling)} pairs "
      f"({right / len(saved.ceiling):.0%}), each a one-ball source and a new ball in a combination training never "
      "showed")

# %% [markdown]
# **So the toy edit did what was asked, roughly.** The new ball has the right colour and moves right, not down
# like the source ball (the centres printed above); where the toy falls short is the drawing, a blurry, boxy blob
# rather than a clean disc. The paper's edits, made with CogVideoX-5B, add content that moves as described and
# interacts with the scene: watch the result videos on the project page, https://dynvfx.github.io/ (the pipeline
# that made them is the paper's Fig. 2). Try another toy example with
# `VIDEO = "yellow_ball_up"` and see whether the new ball keeps its own motion there.
#
# The shipped example is not one of the toy edit benchmark's pairs, and it is not a chosen success either: an edit
# judged right is the benchmark's common outcome (the last line above, from `benchmarks/results/toy_edit.json`).

# %%
# NBVAL_CHECK_OUTPUT
print(f"output frames: {tuple(result.frames.shape)}; latents x_orig: {tuple(result.inversion.x_orig.shape)}")
print(f"inverted latents kept: {tuple(result.inversion.latents.shape)}  ([T, 1, F', C, h, w])")
print(f"O_orig mask: {result.source_mask.float().mean().item():.1%} of the pixels")
print(f"anchors: {int(result.anchor_grid.sum())} of {result.anchor_grid.numel()} source tokens")
print(f"refinement strengths: {list(config.strengths)}")

# %% [markdown]
# ## Exercises
#
# Each exercise has a cell for you to work in (fill in what `...` stands for; as it is, it runs and does
# nothing) and, below it, its solution, collapsed in Jupyter and in Colab (double-click to read it). The
# solutions run with the notebook and check themselves with an `assert`; their output is not stored, so you
# see it only when you run them.
#
# **1 · Predict, then check: the paper's raw output outside the green mask.** The paper's output is the raw
# `decode(x_orig + x_res)` (`config.composite = "latent"`); DynVFX here composites it into the source with the
# `O_edit` mask. Before running: outside the green mask, what share of the raw output's values differ from the
# source, and by about how much? Then measure it on `result.decoded`.

# %%
# Your turn. First write down your prediction, then count.
my_prediction = ...  # the share of values outside the green mask that differ, and by how much
# TODO: a boolean [F, 3, H, W] tensor, True outside result.edit_mask ([F, 1, H, W]); then the share of values of
# result.decoded (the raw output) that differ from frames there, and their mean absolute difference.
my_outside = ...
my_share, my_mean_difference = ..., ...

# %% jupyter={"source_hidden": true} tags=["solution"]
#@title Solution to exercise 1 (double-click to show the code)
#@markdown Runs with the notebook and checks itself with an `assert`; run it to see its output.
outside = ~result.edit_mask.expand_as(frames)  # [F, 3, H, W]: every channel of every pixel outside O_edit
raw = (result.decoded != frames)[outside].float().mean()
print(f"raw decode(x_comp): {raw:.0%} of the values outside the mask differ from the source, by "
      f"{(result.decoded - frames).abs()[outside].mean():.3f} on average (the autoencoder's error); the "
      f"composited frames: {int(((result.frames != frames) & outside).sum())} values")
assert raw > 0.5 and not ((result.frames != frames) & outside).any()

# %% [markdown]
# **2 · A metric by hand: how fast does the new ball go?** Compute the centre of the green mask in every frame
# yourself (mean pixel coordinates, `+ 0.5` for pixel centres) and check it against `centroid_track` above. Then
# predict and measure its largest move from one frame to the next: is the motion even?

# %%
# Your turn. TODO: the centre of result.edit_mask[:, 0] ([F, H, W]) in every frame, the mean x and y of its
# pixels + 0.5 (torch.meshgrid gives each pixel's coordinates); then compare with new_track and take the
# largest distance between the centres of two consecutive frames.
my_centre = ...  # [F, 2]: (x, y) per frame
my_largest_step = ...

# %% jupyter={"source_hidden": true} tags=["solution"]
#@title Solution to exercise 2 (double-click to show the code)
#@markdown Runs with the notebook and checks itself with an `assert`; run it to see its output.
import numpy as np
import torch

ys, xs = torch.meshgrid(torch.arange(spec.height), torch.arange(spec.width), indexing="ij")
m = result.edit_mask[:, 0].float()  # [F, H, W]
area = m.sum((1, 2))
centre = torch.stack([(m * xs).sum((1, 2)) / area, (m * ys).sum((1, 2)) / area], 1) + 0.5  # NaN where empty
assert np.allclose(centre.numpy(), new_track, equal_nan=True)
steps = centre[~centre.isnan().any(1)].diff(dim=0).norm(dim=1)
print(f"frame-to-frame moves: largest {steps.max():.1f} px, mean {steps.mean():.1f} px (asked: {plan.instruction!r})")

# %% [markdown]
# ## What next
#
# Each chapter is self-contained; start with **01_ddim_inversion** to see how the source becomes noise that the
# model turns back into the source, which is what lets the edit stay faithful to it.
