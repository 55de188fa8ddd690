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
# # 4 · Anchor Extended Attention: which source tokens may the edit see?
#
# [![Open In Colab](https://colab.research.google.com/assets/colab-badge.svg)](https://colab.research.google.com/github/dynvfx-course/dynvfx/blob/main/notebooks/04_anchor_masking.ipynb)
#
# **What you will learn.** During the edit the source video runs through the model beside it (its inverted
# latents, chapter 1), and in the attention layers the edit's queries may also attend to some of the source's
# keys and values. Which ones is the heart of DynVFX (the paper's Sec. 4.2 and Fig. 3). You will
#
# - see on a chosen benchmark pair what the anchors prevent: without them the new ball is drawn over the source's,
# - segment the prominent source objects `O_orig` and map their masks onto the transformer's token grid,
# - sample the **anchors** — most tokens of `O_orig`, a few of the background — and play with the keep rates,
# - write Anchor Extended Attention out in one cell and check it against the library's attention processor on
#   the toy model's real activations,
# - run the same edit, same seed, with anchor / full / masked / no extended attention and measure what differs,
# - measure where the edit's queries spend their attention: on the anchors, or on the edit itself,
# - and try three exercises (per-call anchor draws, a keep-rate sweep, the anchor-mass metric).
#
# **Run time.** 1 min 21 s on one CPU thread with the toy model (measured by `notebooks/build.py`).
# It runs two edits of a benchmark pair with 50 sampling steps and four with 20. With CogVideoX the four full edits would take several times one edit's cost, so the comparison cell
# runs a single refinement pass per mode there; the cell below the switches prints the estimate for your GPU
# (`notebook.print_cost`), and docs/gpu.md lists the measured times per GPU.

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
# `VIDEO = None` takes the toy example (or, with a CogVideoX model, the course's taxi clip); with the toy model name
# a shipped toy clip, e.g. `"green_ball_left"` (found from any folder, Colab's too), and with CogVideoX give any path,
# e.g. `"../../shared/data/videos/taxi.mp4"`. `MODEL = "toy"` runs anywhere. On a GPU you may set `"THUDM/CogVideoX-2b"` or
# `"THUDM/CogVideoX-5b"`, plus a real segmenter and planner. `MEMORY = "auto"` picks the fastest of the library's
# memory modes whose estimated peak (source branch and extended keys included) fits your GPU;
# `docs/gpu.md` lists each mode's peak and each GPU's time.

# %%
VIDEO = None  # None: the toy example (toy model) or the taxi clip (CogVideoX); a shipped clip's name; or a path
MODEL = "toy"  # on a GPU: "THUDM/CogVideoX-2b" or "THUDM/CogVideoX-5b"
SEGMENTER = "toy"  # with CogVideoX: "grounded-sam2", "sam3" or "masks:/path/to/masks"
PLANNER = "toy"  # with CogVideoX: "openai" (needs OPENAI_API_KEY) or "hf" (a local VLM)
MEMORY = "auto"  # on a GPU: "auto" (the fastest mode that fits), "full", "lean" or "offload"; docs/gpu.md

from dynvfx import figures, notebook, probes

notebook.setup_notebook()
MODEL, SEGMENTER, PLANNER = notebook.resolve_choices(MODEL, SEGMENTER, PLANNER)

# %%
# the model, the source video, its plan, the segmenter and the settings
# (toy: 20 steps instead of 50, to keep the four edits below near a minute on a CPU)
pipe, spec, frames, plan, segmenter, config = notebook.edit_inputs(MODEL, SEGMENTER, PLANNER, video=VIDEO,
                                                                   memory=MEMORY)
PROBE_LAYERS = None if MODEL == "toy" else [0, 10, 20, 29]  # blocks the attention recorder watches (None = all)
print(f"{plan.instruction!r}: O_orig = {plan.objects_orig}, O_edit = {plan.objects_edit}")
notebook.print_cost(MODEL, config.replace(strengths=config.strengths[:1]))  # one pass per mode (section 4)

# %% [markdown]
# ## The anchors at work: one chosen edit
#
# First what the anchors are for. The toy edit benchmark (`benchmarks/toy_edit.py`) gives the toy model a
# one-ball source and asks it to add a ball whose combination training never showed. Below is one of its pairs, **chosen** because
# there the ablation visibly fails: edited with DynVFX and without Anchor Extended Attention (`attention_mode="off"`),
# with the benchmark's settings. How often each way happens is the benchmark's count over all its pairs, read
# from the results it saved (`benchmarks/results/toy_edit.json`).

# %%
# NBVAL_CHECK_OUTPUT
from dynvfx.paths import REPO_ROOT
from dynvfx.lab import edit_bench as bench, stats

saved = bench.EditRun.load(REPO_ROOT / "benchmarks" / "results" / "toy_edit.json")
runs_ok = {name: sum(r["success"] for r in saved.results[name]) for name in ("authors", "no_anchor_attn")}
_, _, _, only_dynvfx, only_off = stats.paired_difference(saved.results["authors"], saved.results["no_anchor_attn"])
print(f"the benchmark's {len(saved.ceiling)} pairs ({saved.config.num_inference_steps} steps), judged strictly:")
print(f"  DynVFX right: {runs_ok['authors']}; without AnchorExtAttn right: {runs_ok['no_anchor_attn']}")
print(f"  right only with the anchors: {only_dynvfx}; only without them: {only_off}")
CHOSEN = 53  # a pair right only with the anchors (chosen, not typical)
print(f"chosen: pair {CHOSEN}, saved as right with DynVFX: {saved.results['authors'][CHOSEN]['success']}, "
      f"without the anchors: {saved.results['no_anchor_attn'][CHOSEN]['success']}")

# %%
import warnings

from dynvfx.toy.examples import scene_frames
from dynvfx.toy.perception import centroid_track, colour_mask

pair = bench.make_pairs(CHOSEN + 1)[CHOSEN]
if MODEL == "toy":  # the benchmark's pairs are toy-world scenes
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        chosen = bench.edit_pair(pipe, pair, ["authors", "no_anchor_attn"], saved.config)
    print(f"{pair[2]!r} on {pair[0].caption!r}")
    print(f"{'':18} | judged right | source ball moves as before | its IoU with the truth | new ball moves as asked")
    for name, label in (("authors", "DynVFX"), ("no_anchor_attn", "no AnchorExtAttn")):
        s = chosen[name].scores
        print(f"{label:18} | {str(s['success']):12} | {str(s['source_moves']):27} | {s['iou']:22.2f} | "
              f"{s['new_moves']}")
    for label, video in (("source", scene_frames(pair[0])), ("DynVFX", chosen["authors"].output[0]),
                         ("no AnchorExtAttn", chosen["no_anchor_attn"].output[0])):  # centres (x, y), first -> last
        ends = {c: centroid_track(colour_mask(video, c))[[0, -1]].round(1).tolist()
                for c in (pair[0].objects[0].colour, pair[1][0])}
        print(f"{label:18}: " + "; ".join(f"{c} ball {a} -> {b}" for c, (a, b) in ends.items()))
    figures.video_grid({"source": scene_frames(pair[0]), "DynVFX": chosen["authors"].output[0],
                        "no AnchorExtAttn": chosen["no_anchor_attn"].output[0]}, title=f"chosen pair: {pair[2]!r}");
else:
    print("a toy-world pair: with a real model, compare run_edit with attention_mode='anchor' and 'off' on your clip")

# %% [markdown]
# **What you should see:** with DynVFX a yellow ball appears below the green source ball and both move left by
# about 20 pixels (the centres printed), the green one kept as it was (its IoU with the rendered truth). Without
# the anchors the yellow ball is drawn on top of the green one, which is lost: nothing ties the edit to where the
# source ball is. The pair is chosen; on most pairs the two agree (the counts above).

# %% [markdown]
# ## 1. Segment O_orig
#
# The segmenter is prompted with the `O_orig` phrases from the plan (the toy segmenter finds toy objects by colour
# alone, all being balls; on real videos Grounded-SAM 2 or SAM 3 do this). The mask could be widened by
# `config.source_mask_dilate_radius` pixels; both presets leave it as segmented (0), as the authors do.

# %%
from dynvfx.masks import dilate
from dynvfx.figures import mask_video

seg = segmenter.segment(frames, plan.objects_orig)
src_mask = dilate(seg.union, config.source_mask_dilate_radius)
figures.video_grid({"source": frames, "O_orig mask": mask_video(frames, orig_mask=src_mask)});

# %% [markdown]
# **What you should see:** top, the blue ball moving down the gray frame; bottom, the same frames darkened with
# the ball tinted red: the toy segmenter's `O_orig` mask covers the ball in every frame.

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

# %% [markdown]
# **What you should see:** the pixel mask (top); the share of each latent cell it covers (middle, bright = fully
# covered; frames 1 and 4 share one latent frame, as do 5 and 8); the tokens counted as "in the mask" (bottom, red
# squares of 2×2 cells). Where the ball sits across a token boundary (frames 1, 4 and 16) fewer tokens pass the
# threshold and part of the ball sticks out of the token mask.

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
# As in the authors' code, the library draws a **new** anchor set in every attention call
# (seeded with `config.seed`, so a run is reproducible); the figure shows the first draw.
# Red: the O_orig tokens; yellow squares: the anchors.

# %%
import torch

from dynvfx.anchors import anchor_grid


def anchors(mode, fg_keep=0.7, bg_keep=0.05, seed=config.seed):
    """The anchor grid [F', h', w'] bool for a mode and keep rates (one draw, seeded)."""
    return anchor_grid(token_mask, mode, fg_keep, bg_keep, torch.Generator().manual_seed(seed))


settings = {"masked": anchors("masked"), "anchor (0.7, 0.05)": anchors("anchor"),
            "anchor (0.7, 0.3)": anchors("anchor", bg_keep=0.3), "full": anchors("full")}
figures.video_grid({name: figures.anchor_overlay(frames, token_mask, grid, spec) for name, grid in settings.items()},
                   title="anchors (yellow) over the O_orig tokens (red)");

# %% [markdown]
# **What you should see:** *masked* marks exactly the red `O_orig` tokens; *anchor (0.7, 0.05)* most of them plus
# a few background positions, the same in every frame (one draw per spatial position); *anchor (0.7, 0.3)* about a
# third of the background as well; *full* every token (the counts are printed below).

# %%
# NBVAL_CHECK_OUTPUT
for name, grid in settings.items():
    print(f"{name:19}: {int(grid.sum()):4} anchors of {grid.numel()} tokens, "
          f"{int((grid & token_mask).sum())} of the {int(token_mask.sum())} O_orig tokens")

# %% [markdown]
# Try other keep rates and seeds, and move through the frames: each frame shows the mask and the anchors of the
# latent frame that holds it, so the red `O_orig` tokens, and the anchors on them, follow the ball down from frame
# to frame, while the few background anchors stay where they are.

# %%
from dynvfx import widgets

widgets.anchor_viewer(frames, token_mask, spec)

# %% [markdown]
# ## 4. Anchor Extended Attention, written out
#
# In one attention layer, for the batch [edit, source]: every token (text and video) of each item makes a query,
# a key and a value; CogVideoX normalises queries and keys per head and rotates the video tokens' queries and keys
# by their 3-D position (RoPE). The source attends to itself as usual. The edit's queries attend to
# **[their own keys; the source's keys at the anchor tokens]**, and take the same mix of values. Because the
# anchors' keys were rotated at the anchors' own positions, an edit query "sees" each anchor where it is in the
# video (chapter 2: keys and values stay local).
#
# `probes.capture_anchor_call` runs one real transformer call — the first denoising step of the first refinement
# pass: x_orig noised to t, beside the inverted source at t — with the library's processor
# (`dynvfx.attention.AnchorExtendedAttnProcessor`) and keeps what one block's attention received and returned.
# The next cell recomputes that block's output from its input, by hand.

# %%
from diffusers.models.embeddings import apply_rotary_emb

from dynvfx.anchors import anchor_index
from dynvfx.inversion import ddim_invert
from dynvfx.pipeline import encode_video

torch.set_grad_enabled(False)  # inference only, here and below
inv = ddim_invert(pipe, encode_video(pipe, frames), config.inversion_prompt, config.num_inference_steps,
                  config.inversion_steps, progress=False)
a = anchor_index(settings["anchor (0.7, 0.05)"])  # [A] anchor positions among the N video tokens
LAYER = len(pipe.transformer.transformer_blocks) // 2
call = probes.capture_anchor_call(pipe, inv, plan.composited_caption, plan.source_caption, a, config, LAYER)
print(f"block {LAYER} at t = {call.timestep}: input {tuple(call.hidden.shape)} = [edit, source] x "
      f"[{call.text_len} text + {call.hidden.shape[1] - call.text_len} video tokens] x width; {len(a)} anchors")

# %%
attn, h, L, a = call.attn, call.hidden, call.text_len, call.anchor_index.to(call.hidden.device)
EDIT, SOURCE = 0, 1
Q = slice(None) if MODEL == "toy" else slice(L, L + 1024)  # CogVideoX: 1024 video queries (all would not fit)


def heads(x):  # [2, L + N, D] -> [2, heads, L + N, d]
    return x.unflatten(-1, (attn.heads, -1)).transpose(1, 2)


q, k, v = heads(attn.to_q(h)), heads(attn.to_k(h)), heads(attn.to_v(h))
q, k = attn.norm_q(q), attn.norm_k(k)  # per-head LayerNorm of queries and keys
if call.rope is not None:  # RoPE on the video tokens only (CogVideoX-2B has none)
    q, k = (torch.cat([x[:, :, :L], apply_rotary_emb(x[:, :, L:], call.rope)], 2) for x in (q, k))
K = torch.cat([k[EDIT], k[SOURCE][:, L + a]], dim=1)  # [heads, L + N + A, d]: own keys, then the source's anchors
V = torch.cat([v[EDIT], v[SOURCE][:, L + a]], dim=1)
P = torch.softmax(q[EDIT][:, Q] @ K.transpose(1, 2) / q.shape[-1] ** 0.5, dim=-1)  # [heads, queries, L + N + A]
mine = attn.to_out[0]((P @ V).transpose(0, 1).flatten(1))  # heads side by side, then the output projection
tol = 1e-5 if h.dtype == torch.float32 else 3e-2  # bfloat16 / float16 models round more
print("equals the library's processor:", torch.allclose(mine, call.output[EDIT, Q], atol=tol),
      f"(largest difference {(mine - call.output[EDIT, Q]).abs().max().item():.1e})")
share = (P[:, L:] if MODEL == "toy" else P)[..., -len(a):].sum(-1).mean(0)  # video queries: attention on anchors
print(f"the anchors are {len(a) / K.shape[1]:.1%} of the keys and take {share.mean().item():.1%} of the video "
      f"queries' attention (head average; max over queries {share.max().item():.1%})")

# %% [markdown]
# The same formula with `a` = every video token is *full* extended attention, with `a` = the O_orig tokens it is
# *masked*; with no anchors it is the model's own attention. Nothing is trained: DynVFX only chooses which keys
# the edit may look at.
#
# ## 5. Same edit, four kinds of extended attention
#
# On this chapter's own example *anchor*, *full* and *off* end alike; where they differ is the chosen pair at the
# top (without the anchors the new ball is drawn over the source's). Everything else is fixed: plan, seed, strengths, segmenter. What the paper shows on real videos (Fig. 3,
# [project page, "Extended Attention Analysis"](https://dynvfx.github.io/sm/index.html#Analysis)): **full**
# extension reconstructs the input scene and leaves the new object no room; **masked** lets new content appear
# but is too constrained where it overlaps `O_orig`; **anchor** (sparse points, mostly on `O_orig`) gives the
# best balance; **off** (no source branch) is the "w/o AnchorExtAttn" ablation, where the new content ends up in
# the wrong place (Fig. 4). Each run gets an `AttentionRecorder` (`run_edit(..., recorder=...)`) that keeps, for
# the conditional edit branch, the share of every video query's attention that lands on the anchors.

# %%
import warnings

from dynvfx.attention import AttentionRecorder
from dynvfx.edit import run_edit

MODES = ("anchor", "full", "masked", "off")
mode_config = config if MODEL == "toy" else config.replace(strengths=config.strengths[:1])  # 1 pass on big models
WINDOW = probes.injection_steps(pipe, mode_config)  # the denoising steps where the source branch runs
recorders = {mode: AttentionRecorder(steps=WINDOW, layers=PROBE_LAYERS) for mode in MODES}
with warnings.catch_warnings():
    warnings.simplefilter("ignore")  # "O_edit not found" warnings: summarised below
    runs = {mode: run_edit(pipe, frames, plan, segmenter, mode_config.replace(attention_mode=mode), progress=False,
                           recorder=recorders[mode]) for mode in MODES}
every_step = probes.injection_steps(pipe, mode_config.replace(injection_max_timestep=1.0, injection_min_timestep=0))
print(f"the source branch runs on {len(WINDOW)} of the {len(every_step)} denoising steps of the refinement "
      f"(the injection window: {config.injection_max_timestep} to {config.injection_min_timestep} of the schedule)")

# %%
from dynvfx.metrics import iou

print("mode   | anchors (first draw) | attention on them | O_edit found | O_orig IoU: pass 1's x̂ | output")
for mode, r in runs.items():
    its = r.refinement.iterations
    on_anchors = probes.mean_anchor_mass(recorders[mode], spec, WINDOW).mean() if mode != "off" else 0.0
    first, kept = (iou(segmenter.segment(video, plan.objects_orig).union, src_mask)
                   for video in (its[0].frames_hat, r.decoded))  # the source object in x̂ and in decode(x_comp)
    found = sum(it.found for it in its)
    print(f"{mode:6} | {int(r.anchor_grid.sum()):20} | {on_anchors:17.1%} | {found}/{len(its)} passes | {first:22.2f} |"
          f" {kept:6.2f}")
figures.video_grid({"source": frames} | {mode: r.frames for mode, r in runs.items()},
                   title=f"{plan.instruction!r}, seed {config.seed}: the outputs");

# %% [markdown]
# **What you should see:** *anchor*, *full* and *off* end alike: a red ball moves right along the top and the
# blue ball keeps the source's path. *masked* puts its red ball along the bottom edge, where it runs into the
# blue ball in the last frames. The table says how much attention each mode's anchors get and whether the source
# ball survives.

# %%
figures.show_videos({"source": frames} | {mode: r.frames for mode, r in runs.items()})

# %%
figures.video_grid({"source": frames} | {mode: r.refinement.iterations[0].frames_hat for mode, r in runs.items()},
                   title="pass 1: the model's output x̂, before the residual mask");

# %% [markdown]
# **What you should see:** the modes differ inside the passes. In pass 1, *full* keeps the blue ball on the
# source's path and draws no red ball yet, while *anchor*, *masked* and *off* redraw the scene with the blue ball
# off its path (its IoU in pass 1's x̂ in the table). Three of them end alike because each pass keeps `x̂` only
# inside the new ball's mask, so what the attention did to the rest is thrown away; in the chosen pair at the top
# of the chapter the anchors change where the new ball itself is drawn.
#
# ## 6. Where do the edit's queries put their attention?
#
# The recorders of the four runs, averaged over the steps inside the injection window: for every video token of
# the edit, the share of its query's attention that went to the source anchors (rather than to the edit's own
# tokens and the text). Bright = the edit leans on the source there.

# %%
mass = {mode: probes.mean_anchor_mass(recorders[mode], spec, WINDOW) for mode in MODES if mode != "off"}
top = max(float(m.max()) for m in mass.values())  # one colour scale for the three rows
figures.video_grid({mode: 0.7 * figures.heat_rgb(figures.grid_to_pixels(m, spec), top) + 0.3 * frames
                    for mode, m in mass.items()},
                   title=f"share of each edit query's attention on the anchors (dark 0 - bright {top:.0%}), over the source");

# %% [markdown]
# **What you should see:** *anchor* and *masked* are dark except for a brighter vertical band along the blue
# ball's path, where the `O_orig` anchors are; *full* is bright everywhere.

# %%
import matplotlib.pyplot as plt

fig, ax = plt.subplots(figsize=(5, 3.2))
for mode in mass:
    layers = sorted({layer for _, layer in recorders[mode].anchor_mass})
    per_layer = [probes.mean_anchor_mass(recorders[mode], spec, WINDOW, [layer]).mean() for layer in layers]
    ax.plot(layers, per_layer, "o-", label=f"{mode} ({int(runs[mode].anchor_grid.sum())} anchors)")
ax.set_xlabel("transformer block"), ax.set_ylabel("attention share on anchors"), ax.set_ylim(0, 1)
ax.legend(fontsize=8), ax.set_title("inside the injection window, mean over steps and queries"), fig.tight_layout();

# %% [markdown]
# **What you should see:** *full* extension takes a much larger share of the attention than *anchor* and *masked*
# in every block (least in block 1), and those two draw almost the same curve: the background anchors that
# *anchor* adds to *masked*'s mask tokens (the legend counts them) add little attention on the toy model.
#
# Inside versus outside the new object: where the edit drew the new object (its final `O_edit` mask), do the
# queries rely less on the source than elsewhere?

# %%
for mode, m in mass.items():
    new = pixel_to_tokens(runs[mode].edit_mask, spec)
    if new.any() and not new.all():
        print(f"{mode:6}: on anchors {m[new].mean():.1%} inside the new object, {m[~new].mean():.1%} elsewhere")
    else:
        print(f"{mode:6}: the new object was not found")

# %% [markdown]
# With *masked* and *full* extension the queries inside the new object lean on the source less than the rest: the
# direction the method wants (the new object free, the scene tied). With *anchor* extension they lean on it more:
# its red ball runs along the top, across the upper end of the bright band of `O_orig` anchors in the figure above.
#
# ## Exercises
#
# Each exercise has a cell for you to work in (fill in what `...` stands for; as it is, it runs and does
# nothing) and, below it, its solution, collapsed in Jupyter and in Colab (double-click to read it). The
# solutions run with the notebook and check themselves with an `assert`; their output is not stored, so you
# see it only when you run them.
#
# **1 · Per-call anchor draws (implement a variant).** The library draws new anchors in every attention call.
# Predict first: over the 36 extending calls of one pass of the toy edit (6 steps × 6 blocks), what share of the
# *background* tokens is an anchor at least once, when each draw keeps 5 % of them? Then (a) make 36 draws yourself
# with `anchor_grid` and one generator seeded `config.seed`, (b) check that `AnchorContext(draw="per_call", ...)`
# produces exactly your draws, in order, and (c) measure the share.

# %%
# Your turn. First your prediction: the share of background tokens that are an anchor at least once.
my_prediction = ...
# TODO: (a) 36 draws anchor_grid(token_mask, "anchor", 0.7, 0.05, generator) from one generator seeded
# config.seed; (b) AnchorContext(mode="anchor", draw="per_call", ...) with a generator seeded the same:
# ctx.next_anchor_index() against anchor_index(draw); (c) the share of ~token_mask covered at least once.
my_draws = []

# %% jupyter={"source_hidden": true} tags=["solution"]
#@title Solution to exercise 1 (double-click to show the code)
#@markdown Runs with the notebook and checks itself with an `assert`; run it to see its output.
from dynvfx.attention import AnchorContext

g = torch.Generator().manual_seed(config.seed)
draws = [anchor_grid(token_mask, "anchor", 0.7, 0.05, g) for _ in range(36)]
ctx = AnchorContext(mode="anchor", draw="per_call", token_mask=token_mask, fg_keep=0.7, bg_keep=0.05,
                    generator=torch.Generator().manual_seed(config.seed))
assert all(torch.equal(ctx.next_anchor_index(), anchor_index(d)) for d in draws)  # same seed, same draws
# one draw anchors the spatial positions with u < 0.05, a few of the h' x w': its share scatters widely around 5 %
ever = torch.stack(draws).any(0)
seen = ever[~token_mask].float().mean().item()
print(f"one draw: {draws[0][~token_mask].float().mean():.1%} of the background; 36 draws: {seen:.0%} at least once"
      f" (expected 1 - 0.95^36 = {1 - 0.95 ** 36:.0%})")
assert seen > 0.5 and not all(torch.equal(draws[0], d) for d in draws[1:])
# So with per-call draws no single background position is tied to the source for long, but over a pass most of the
# background is consulted now and then; a fixed draw (`draw="once"`) ties the same few positions at every step.

# %% [markdown]
# **2 · A keep-rate sweep (predict, then run).** With the captured call of section 4, keep `fg_keep = 0.7` and
# raise `bg_keep` through 0, 0.05, 0.2, 0.5 and 1. Predict how the video queries' share of attention on the anchors
# changes, then compute it with the explicit formula (same `q`, `k`, new anchor sets).

# %%
# Your turn. First your prediction: how does the anchors' share of the attention change as bg_keep grows?
my_prediction = ...
# TODO: for each bg_keep, anchor_index(anchors("anchor", 0.7, bg_keep)), the keys of section 4 with those source
# keys appended, P = softmax(q K^T / sqrt(d)) at the video queries, and P's mass on the appended keys.
my_shares = {}

# %% jupyter={"source_hidden": true} tags=["solution"]
#@title Solution to exercise 2 (double-click to show the code)
#@markdown Runs with the notebook and checks itself with an `assert`; run it to see its output.
shares = {}
for bg in (0.0, 0.05, 0.2, 0.5, 1.0):
    idx = anchor_index(anchors("anchor", 0.7, bg)).to(k.device)
    K_bg = torch.cat([k[EDIT], k[SOURCE][:, L + idx]], dim=1)
    P_bg = torch.softmax(q[EDIT][:, Q] @ K_bg.transpose(1, 2) / q.shape[-1] ** 0.5, dim=-1)
    shares[bg] = P_bg[:, :, -len(idx):].sum(-1).mean().item()
print({bg: f"{s:.1%}" for bg, s in shares.items()})
values = list(shares.values())  # one uniform draw per position: a larger bg_keep keeps a superset of anchors
assert all(x <= y + 1e-6 for x, y in zip(values, values[1:])) and values[-1] > values[0]
# The share grows with every extra anchor, but slower than the anchor count: at bg_keep = 1 (nearly "full") the
# source's keys are almost half of all keys, yet they take well under half of the attention.

# %% [markdown]
# **3 · The anchor-mass metric (a metric).** `AttentionRecorder` reports `anchor_mass`: per video query, the head
# average of the attention on the last `n_anchor` keys. Compute it from `P` of section 4 and check it against
# `AttentionRecorder.record` on the same queries and keys.

# %%
# Your turn. TODO: from P of section 4, each video query's attention on the last len(a) keys, averaged over the
# heads; then AttentionRecorder().record(0, LAYER, q[EDIT], K, L, n_anchor=len(a)) and its anchor_mass.
my_anchor_mass = ...

# %% jupyter={"source_hidden": true} tags=["solution"]
#@title Solution to exercise 3 (double-click to show the code)
#@markdown Runs with the notebook and checks itself with an `assert`; run it to see its output.
if MODEL == "toy":  # on CogVideoX, P holds only a slice of the queries
    rec = AttentionRecorder()
    rec.record(0, LAYER, q[EDIT], K, L, n_anchor=len(a))
    by_hand = P[:, L:, -len(a):].sum(-1).mean(0)  # video queries, anchor keys, head average
    assert torch.allclose(by_hand.cpu(), rec.anchor_mass[(0, LAYER)], atol=1e-5)
    print(f"recorder and hand agree; mean {by_hand.mean():.1%}")

# %% [markdown]
# ## What to take away
#
# - Masks become token sets through the autoencoder's temporal grouping and spatial downsampling, then patching.
# - Anchor Extended Attention is ordinary softmax attention with extra keys and values: the source's, at the
#   anchor tokens, after RoPE (section 4 recomputes the library's processor exactly).
# - The anchor set decides how much of the edit's attention goes to the source: dense on the objects the new content
#   interacts with, sparse elsewhere. On the toy model the modes differ inside the passes and the residual mask
#   hides most of that in the output; where it does not (the chosen pair), the anchors keep the new ball off the
#   source ball.
# - On real videos the difference is visible: the paper's Fig. 3 and the
#   [project page's analysis videos](https://dynvfx.github.io/sm/index.html#Analysis) (knight on a horse: full,
#   masked and anchor extension side by side). Chapter 5 adds the last piece: refining a residual so that only the
#   new content changes the video.
