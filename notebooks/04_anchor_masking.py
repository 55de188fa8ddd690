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
# # 4 · Anchor Extended Attention: which source tokens may the edit see?
#
# [![Open In Colab](https://colab.research.google.com/assets/colab-badge.svg)](https://colab.research.google.com/github/dynvfx-course/dynvfx/blob/main/notebooks/04_anchor_masking.ipynb)
#
# **What you will learn.** During the edit the source video runs through the model beside it (its inverted
# latents, chapter 1), and in every attention layer the edit's queries may also attend to some of the source's
# keys and values. Which ones is the heart of DynVFX. You will
#
# - segment the prominent source objects `O_orig` and map their masks onto the transformer's token grid,
# - sample the **anchors** — most tokens of `O_orig`, a few of the background — and play with the keep rates,
# - run the same edit, same seed, with anchor / full / masked / no extended attention and compare,
# - measure where the edit's queries spend their attention: on the anchors, or on the edit itself.
#
# **Run time.** About 1 min on a 2-core CPU with the toy model (four edits with 20 sampling steps); about 15 s
# on a GPU with the toy model. With CogVideoX-5B the four full edits would take about two hours on an A100, so the
# comparison cell runs a single refinement pass per mode there (about 20 min; estimates).

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
# `MODEL = "toy"` runs anywhere. On a GPU you may set `"THUDM/CogVideoX-2b"` (≈ 12.5 GB at inference) or
# `"THUDM/CogVideoX-5b"` (≈ 20.7 GB), plus a real segmenter and planner. Extended attention adds the source
# branch to every batch (3 items instead of 2) and longer key sequences, so budget a few GB more, or set
# `CPU_OFFLOAD = True` (less GPU memory, slower).

# %%
MODEL = "toy"  # on a GPU: "THUDM/CogVideoX-2b" or "THUDM/CogVideoX-5b"
SEGMENTER = "toy"  # with CogVideoX: "grounded-sam2", "sam3" or "masks:/path/to/masks"
PLANNER = "toy"  # with CogVideoX: "openai" (needs OPENAI_API_KEY) or "hf" (a local VLM)
CPU_OFFLOAD = False  # True for GPUs with less than ~24 GB

from dynvfx import figures, notebook

notebook.setup_notebook()
MODEL, SEGMENTER, PLANNER = notebook.resolve_choices(MODEL, SEGMENTER, PLANNER)

# %%
# the model, the source video, its plan, the segmenter and the settings
# (toy: 20 steps instead of 50, to keep the four edits below near a minute on a CPU)
pipe, spec, frames, plan, segmenter, config = notebook.edit_inputs(MODEL, SEGMENTER, PLANNER, CPU_OFFLOAD)
PROBE_LAYERS = None if MODEL == "toy" else [0, 10, 20, 29]  # blocks the attention recorder watches (None = all)
print(f"{plan.instruction!r}: O_orig = {plan.objects_orig}, O_edit = {plan.objects_edit}")

# %% [markdown]
# ## 1. Segment O_orig
#
# The segmenter is prompted with the `O_orig` phrases from the plan (the toy segmenter finds toy objects by colour
# alone, all being balls; on real videos Grounded-SAM 2 or SAM 3 do this). The mask is then widened by
# `config.source_mask_dilate_radius` pixels (0 for the toy model's 48-pixel frames).

# %%
from dynvfx.masks import dilate
from dynvfx.figures import mask_video

seg = segmenter.segment(frames, plan.objects_orig)
src_mask = dilate(seg.union, config.source_mask_dilate_radius)
figures.video_grid({"source": frames, "O_orig mask": mask_video(frames, orig_mask=src_mask)});

# %%
# NBVAL_CHECK_OUTPUT
print(f"masks {tuple(seg.masks.shape)} ([phrases, F, 1, H, W]); found in {int(seg.found().sum())} of "
      f"{seg.found().numel()} (phrase, frame) pairs")
print(f"O_orig covers {src_mask.float().mean().item():.1%} of the pixels")

# %% [markdown]
# ## 2. From pixels to tokens
#
# CogVideoX's autoencoder keeps frame 0 as latent frame 0 and packs each following group of 4 frames into one
# latent frame; it shrinks space by 8 (4 for the toy model), and the transformer cuts the latents into 2×2 patches,
# one token each. A token counts as "in the mask" when more than `config.anchor_token_threshold` of its pixels
# (over its frames) are: `pixel_to_tokens`.

# %%
from dynvfx.masks import pixel_to_tokens, to_latent_grid

coverage = to_latent_grid(src_mask, spec.temporal_compression, spec.spatial_compression, reduce="mean")[:, 0]
token_mask = pixel_to_tokens(src_mask, spec, config.anchor_token_threshold)
figures.video_grid({"pixel mask": mask_video(frames, orig_mask=src_mask),
                    "latent-cell coverage": figures.heat_rgb(figures.grid_to_pixels(coverage, spec), 1.0),
                    "token mask": mask_video(frames, orig_mask=figures.grid_to_pixels(token_mask, spec).bool())},
                   frames=[0, 1, 4, 5, 8, 16]);

# %%
# NBVAL_CHECK_OUTPUT
print(f"latent-grid coverage {tuple(coverage.shape)}, token mask {tuple(token_mask.shape)} ([F', h', w'])")
print("tokens in the O_orig mask per latent frame:", token_mask.flatten(1).sum(1).tolist(),
      f"of {token_mask[0].numel()} each")

# %% [markdown]
# ## 3. Sample the anchors
#
# Each token of the mask is kept with probability `fg_keep` (paper: 0.7), each other token with `bg_keep` (paper:
# 0.05). One random draw per *spatial* position serves every latent frame, so an anchor stays put over time while
# the mask moves under it. The modes are the special cases: `masked` = (1, 0), `full` = (1, 1), `off` = no anchors.
# Red: the O_orig tokens; yellow squares: the anchors.

# %%
import torch

from dynvfx.anchors import anchor_grid


def anchors(mode, fg_keep=0.7, bg_keep=0.05):
    """The anchor grid [F', h', w'] bool for a mode and keep rates, with the config's seed."""
    return anchor_grid(token_mask, mode, fg_keep, bg_keep, torch.Generator().manual_seed(config.seed))


settings = {"masked": anchors("masked"), "anchor (0.7, 0.05)": anchors("anchor"),
            "anchor (0.7, 0.3)": anchors("anchor", bg_keep=0.3), "full": anchors("full")}
figures.video_grid({name: figures.anchor_overlay(frames, token_mask, grid, spec) for name, grid in settings.items()},
                   title="anchors (yellow) over the O_orig tokens (red)");

# %%
# NBVAL_CHECK_OUTPUT
for name, grid in settings.items():
    print(f"{name:19}: {int(grid.sum()):4} anchors of {grid.numel()} tokens, "
          f"{int((grid & token_mask).sum())} of the {int(token_mask.sum())} O_orig tokens")

# %% [markdown]
# Try other keep rates and seeds:

# %%
from dynvfx import widgets

widgets.anchor_viewer(frames, token_mask, spec)

# %% [markdown]
# ## 4. Same edit, four kinds of extended attention
#
# Everything else is fixed: plan, seed, strengths, segmenter. Expect, with a well-trained model:
#
# - **off** — no source branch: the edit is free, but the new object does not know the scene (it may cross the
#   existing object, ignore the motion, or drift from the source's look);
# - **full** — every source token: each edit query finds the source's own content at its position (chapter 2),
#   so the output sticks to the source and the new object struggles to appear;
# - **masked** — only `O_orig`: the scene's main object is tied to the source, the rest is free;
# - **anchor** — `O_orig` mostly, plus a sparse background: tied where it matters, room everywhere else.

# %%
import warnings

from dynvfx.edit import run_edit

MODES = ("anchor", "full", "masked", "off")
mode_config = config if MODEL == "toy" else config.replace(strengths=config.strengths[:1])  # 1 pass on big models
with warnings.catch_warnings():
    warnings.simplefilter("ignore")  # "O_edit not found" warnings: summarised below
    runs = {mode: run_edit(pipe, frames, plan, segmenter, mode_config.replace(attention_mode=mode), progress=False)
            for mode in MODES}
for mode, r in runs.items():
    print(f"{mode:7}: O_edit found in {sum(it.found for it in r.refinement.iterations)} of "
          f"{len(r.refinement.iterations)} passes; final O_edit mask {r.edit_mask.float().mean().item():.1%} of pixels")

# %%
figures.video_grid({"source": frames} | {mode: r.frames for mode, r in runs.items()},
                   title=f"{plan.instruction!r}, seed {config.seed}");

# %%
figures.show_videos({"source": frames} | {mode: r.frames for mode, r in runs.items()})

# %% [markdown]
# ## 5. Where do the edit's queries put their attention?
#
# We rerun the first refinement pass of each mode with an `AttentionRecorder` installed. For every video query of
# the edit (conditional branch), `anchor_mass` is the share of its attention that goes to the source anchors
# rather than to the edit's own tokens and the text. Bright = the edit leans on the source there.

# %%
from dynvfx.inversion import ddim_invert
from dynvfx.pipeline import encode_video
from dynvfx.probes import anchor_mass_probe, mean_anchor_mass

inv = ddim_invert(pipe, encode_video(pipe, frames), config.inversion_prompt, config.num_inference_steps,
                  config.inversion_steps, progress=False)
probes = {}
for mode in ("anchor", "full", "masked"):
    index = runs[mode].anchor_grid.flatten().nonzero().flatten()
    probes[mode] = anchor_mass_probe(pipe, inv, plan.composited_caption, index,
                                     config.replace(attention_mode=mode), record_layers=PROBE_LAYERS)
mass = {mode: mean_anchor_mass(rec, spec) for mode, (rec, _) in probes.items()}
figures.video_grid({mode: 0.7 * figures.heat_rgb(figures.grid_to_pixels(m, spec), 1.0) + 0.3 * frames
                    for mode, m in mass.items()},
                   title="share of each edit query's attention on the anchors (0 dark - 1 bright), over the source");

# %%
import matplotlib.pyplot as plt

fig, ax = plt.subplots(figsize=(5, 3.2))
for mode, (rec, _) in probes.items():
    layers = sorted({layer for _, layer in rec.anchor_mass})
    per_layer = [torch.stack([v for (s, l_), v in rec.anchor_mass.items() if l_ == layer]).mean() for layer in layers]
    ax.plot(layers, per_layer, "o-", label=f"{mode} ({int(runs[mode].anchor_grid.sum())} anchors)")
    print(f"{mode:6}: mean share on anchors {mass[mode].mean():.2f}")
ax.set_xlabel("transformer block"), ax.set_ylabel("attention share on anchors"), ax.set_ylim(0, 1)
ax.legend(fontsize=8), ax.set_title("first refinement pass, mean over steps and queries"), fig.tight_layout();

# %% [markdown]
# Inside versus outside the new object: where the first pass drew the new object (found by segmenting its
# output), do the queries rely less on the source than elsewhere?

# %%
for mode, (rec, first_pass) in probes.items():
    new = pixel_to_tokens(segmenter.segment(first_pass, plan.objects_edit).union, spec)
    if new.any() and not new.all():
        print(f"{mode:6}: on anchors {mass[mode][new].mean():.2f} inside the new object, "
              f"{mass[mode][~new].mean():.2f} elsewhere")
    else:
        print(f"{mode:6}: the new object was not found after the first pass")

# %% [markdown]
# ## What to take away
#
# - Masks become token sets through the autoencoder's temporal grouping and spatial downsampling, then patching.
# - The anchor set decides where the edit is tied to the source: dense on the objects the new content interacts
#   with, sparse elsewhere. Full extension ties everything and leaves no room; none ties nothing.
# - The recorder shows the trade-off directly, as the share of attention each query spends on the source.
#   Chapter 5 adds the last piece: refining a residual so that only the new content changes the video.
