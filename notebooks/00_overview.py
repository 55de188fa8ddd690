# ---
# jupyter:
#   jupytext:
#     cell_metadata_filter: -all
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
# used. The following chapters open each stage up:
#
# | chapter | stage |
# |---|---|
# | 1 · DDIM inversion | turn the source video into noise the model can regenerate it from |
# | 2 · attention maps | where the transformer looks, and why source keys/values stay "local" |
# | 3 · VLM planning | the VFX assistant that writes the captions and object lists |
# | 4 · anchor masking | which source tokens the edit may attend to (Anchor Extended Attention) |
# | 5 · residual refinement | the iterations that grow the new content, ablations and metrics |
#
# **Run time.** About 30 s on a 2-core CPU with the toy model (we sample with 20 steps instead of the paper's
# 50 to keep it short); a few seconds on a GPU with the toy model. With CogVideoX-5B on an A100 at the paper's
# settings (250 inversion steps, 7 refinement passes of 50-step sampling) expect roughly half an hour (our estimate
# from the model card's ~3 min per 50-step generation).

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
# ## Choose the model
#
# The default runs anywhere: a **toy model** shipped with the course, a small diffusion transformer built from
# diffusers' own CogVideoX classes (RoPE, 3D autoencoder, T5 text encoder, v-prediction) and trained on a CPU on
# videos of coloured balls moving over flat backgrounds (48×48 pixels, 17 frames). It is small and imperfect: it
# gets colours, backgrounds and directions of motion mostly right, but often draws squares and triangles as round
# blobs (the README has its measured quality).
#
# With a GPU you may switch to a real model:
#
# | `MODEL` | GPU memory at inference | notes |
# |---|---|---|
# | `"THUDM/CogVideoX-2b"` | ≈ 12.5 GB | float16, no RoPE |
# | `"THUDM/CogVideoX-5b"` | ≈ 20.7 GB | bfloat16, the paper's model |
#
# DynVFX runs a source branch beside the two guidance branches (a batch of 3 instead of 2) and keeps the
# inverted latents, so budget a few GB more; `CPU_OFFLOAD = True` needs much less GPU memory but runs slower.
# Real videos also need a real segmenter (`"grounded-sam2"` or `"sam3"`) and a VLM planner (`"openai"` with an
# `OPENAI_API_KEY`, or `"hf"` for a local model). Without a GPU the cell below falls back to the toy setup.

# %%
MODEL = "toy"  # on a GPU: "THUDM/CogVideoX-2b" or "THUDM/CogVideoX-5b"
SEGMENTER = "toy"  # with CogVideoX: "grounded-sam2", "sam3" or "masks:/path/to/masks"
PLANNER = "toy"  # with CogVideoX: "openai" (needs OPENAI_API_KEY) or "hf" (a local VLM)
CPU_OFFLOAD = False  # True for GPUs with less than ~24 GB

from dynvfx import figures, notebook

notebook.setup_notebook()
MODEL, SEGMENTER, PLANNER = notebook.resolve_choices(MODEL, SEGMENTER, PLANNER)

# %% [markdown]
# ## The source video and the instruction
#
# For the toy model the source is one of the shipped examples; for CogVideoX it is a real clip (a drive through
# a city, if the course's shared videos are present; pass your own with `notebook.source_video(pipe, MODEL,
# video="my.mp4", instruction="add ...")`). Either way it is fitted to the model's native size.

# %%
from dynvfx.pipeline import video_spec

pipe = notebook.load_model(MODEL, cpu_offload=CPU_OFFLOAD)
spec = video_spec(pipe)
frames, instruction = notebook.source_video(pipe, MODEL)
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

# %%
figures.show_videos({"source": frames, "DynVFX": result.frames, "O_orig (red) / O_edit (green)": masks})

# %%
# NBVAL_CHECK_OUTPUT
print(f"output frames: {tuple(result.frames.shape)}; latents x_orig: {tuple(result.inversion.x_orig.shape)}")
print(f"inverted latents kept: {tuple(result.inversion.latents.shape)}  ([T, 1, F', C, h, w])")
print(f"O_orig mask: {result.source_mask.float().mean().item():.1%} of the pixels")
print(f"anchors: {int(result.anchor_grid.sum())} of {result.anchor_grid.numel()} source tokens")
print(f"refinement strengths: {list(config.strengths)}")

# %% [markdown]
# ## What next
#
# Each chapter is self-contained; start with **01_ddim_inversion** to see how the source becomes noise that the
# model turns back into the source, which is what lets the edit stay faithful to it.
