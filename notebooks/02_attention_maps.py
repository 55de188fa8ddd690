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
# # 2 · Attention maps in a video diffusion transformer
#
# [![Open In Colab](https://colab.research.google.com/assets/colab-badge.svg)](https://colab.research.google.com/github/dynvfx-course/dynvfx/blob/main/notebooks/02_attention_maps.ipynb)
#
# **What you will learn.** CogVideoX puts the text tokens and the video tokens into *one* sequence and runs full
# self-attention over it in every block. DynVFX works entirely through that attention, so it pays to look at it.
# You will
#
# - record, during a plain generation, how much attention each video token pays to one word of the prompt, and
#   browse it by denoising step, layer, head and frame;
# - see why the keys and values of a video token "locally encode" their own patch: queries look mostly at
#   keys at or near their own position, in their own video and in another one, and changing one patch of the
#   video changes the keys there and hardly anywhere else. This is what makes the *anchors* of chapter 4 work.
#
# **Run time.** About 20 s on a 2-core CPU with the toy model (20 sampling steps); a few seconds on a GPU with
# the toy model. With CogVideoX-5B on an A100, about 4 min for the recorded generation (a few layers and steps
# recorded) and a minute for the rest (estimates).

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
# `"THUDM/CogVideoX-5b"` (≈ 20.7 GB); `CPU_OFFLOAD = True` needs much less GPU memory but is slower. On those
# models record only a few layers and steps: each recorded (step, layer) keeps `heads × words × 17,550` numbers.

# %%
MODEL = "toy"  # on a GPU: "THUDM/CogVideoX-2b" or "THUDM/CogVideoX-5b"
CPU_OFFLOAD = False  # True for GPUs with less than ~24 GB

from dynvfx import figures, notebook, probes

notebook.setup_notebook()
MODEL, _, _ = notebook.resolve_choices(MODEL)
NUM_STEPS = 20 if MODEL == "toy" else 50
CAPTION, WORD = ("a red ball moves right on a gray background", "ball") if MODEL == "toy" else \
    ("a golden retriever runs across a sunny park lawn", "retriever")
RECORD_LAYERS = None if MODEL == "toy" else [0, 10, 20, 29]  # None = every block
RECORD_STEPS = None if MODEL == "toy" else [5, 15, 25, 35, 45]  # None = every step
PROBE_LAYERS = None if MODEL == "toy" else [0, 29]  # blocks whose queries/keys are kept for the locality probes

# %% [markdown]
# ## Which tokens are the word?
#
# The text encoder is T5. Its tokenizer splits the prompt into pieces (`▁` marks the start of a word); the
# transformer sees the prompt padded to a fixed length, so the positions of the word's pieces are also their
# positions in the text part of the sequence.

# %%
from dynvfx.pipeline import video_spec

pipe = notebook.load_model(MODEL, cpu_offload=CPU_OFFLOAD)
spec = video_spec(pipe)
token_ids = probes.word_token_ids(pipe, CAPTION, WORD)

# %%
# NBVAL_CHECK_OUTPUT
print("tokens:", probes.tokens_of(pipe, CAPTION))
print(f"{WORD!r} is at text position(s) {token_ids}")
f_lat, rows, cols = spec.token_grid
print(f"sequence per block: {spec.max_text_tokens} text tokens + {f_lat} x {rows} x {cols} = {f_lat * rows * cols} "
      "video tokens")

# %% [markdown]
# ## Record text→video attention during a plain generation
#
# `generate_with_recorder` samples the caption from seeded noise with classifier-free guidance, exactly like the
# base model, with an `AttentionRecorder` installed in every block. At the recorded steps and layers it keeps, for
# the conditional branch, the softmax weight that every video query gives to each of the word's text keys:
# `text_to_video[(step, layer)]` is `[heads, T, N_video]`.

# %%
frames, rec = probes.generate_with_recorder(pipe, CAPTION, token_ids, steps=NUM_STEPS, seed=0,
                                            record_steps=RECORD_STEPS, record_layers=RECORD_LAYERS)
figures.show_videos({CAPTION: frames})

# %%
# NBVAL_CHECK_OUTPUT
steps = sorted({s for s, _ in rec.text_to_video})
layers = sorted({layer for _, layer in rec.text_to_video})
print(f"recorded {len(rec.text_to_video)} (step, layer) pairs: steps {steps[0]}..{steps[-1]}, layers {layers}")
print("each map:", tuple(rec.text_to_video[steps[0], layers[0]].shape), " [heads, word tokens, video tokens]")

# %% [markdown]
# ### By layer and by step (static figures)
#
# Each row is normalised on its own (yellow = most attention in that row), so the rows show *where* the word is
# looked for, not how strongly. Averaged over heads; the first figure also over steps, the second over layers.

# %%
import torch

from dynvfx.figures import heat_overlay


def overlay(**which):
    """Frames [F, 3, H, W] with the word's attention map (chosen step/layer/head, else averaged) in yellow."""
    return heat_overlay(frames, figures.grid_to_pixels(probes.word_attention(rec, spec, **which), spec))


figures.video_grid({f"layer {layer}": overlay(layer=layer) for layer in layers},
                   title=f"attention to {WORD!r} by layer (mean over steps and heads)");

# %%
shown = steps[:: max(1, len(steps) // 5)]
figures.video_grid({f"step {s}": overlay(step=s) for s in shown},
                   title=f"attention to {WORD!r} by denoising step (mean over layers and heads)");

# %% [markdown]
# How much of it lands on the object? The toy segmenter finds the generated object; below, the mean attention a
# video token inside its mask pays to the word, divided by the mean outside (1 = no preference).

# %%
from dynvfx.masks import pixel_to_tokens
from dynvfx.segmentation import get_segmenter

if MODEL == "toy":
    found = get_segmenter("toy").segment(frames, [CAPTION.split(" moves")[0]]).union  # e.g. "a red ball"
    inside = pixel_to_tokens(found, spec)
    if inside.any() and not inside.all():
        for layer in layers:
            m = probes.word_attention(rec, spec, layer=layer)
            print(f"layer {layer}: inside / outside = {m[inside].mean() / m[~inside].mean():.2f}")
    else:
        print("the object was not found in the generated video (the toy model missed it: try another seed)")

# %% [markdown]
# ### Explore
#
# Step, layer, head (-1 = mean over heads) and frame. The right panel is the raw map on the token grid of the
# latent frame that holds the chosen frame.

# %%
from dynvfx import widgets

widgets.attention_viewer(frames, rec, spec, WORD)

# %% [markdown]
# ## Why keys and values "locally encode" their patch
#
# Every video token enters the first block as the embedding of one small patch of the latent video, and its
# queries and keys are rotated by RoPE according to its (frame, row, column). Through the blocks the residual
# stream keeps each token mostly about its own patch. Two consequences matter for DynVFX:
#
# 1. **A query looks mostly near its own position** — among its own video's keys, and, in a trained model, also
#    among the keys of *another* video of the same size that runs in the same batch. With full extended attention
#    (chapter 4) an edit query at position *p* would therefore fetch the *source's* content at *p*: the source leaks
#    into the edit everywhere, including where the new object should appear.
# 2. **A key describes its own patch**: change one patch of the source and only the keys there (and a little
#    around) change. So choosing *which* source tokens the edit may attend to chooses *which places* of the source
#    it is tied to — the idea behind anchors.
#
# We take the source video (the shipped example), DDIM-invert it, and run one transformer call at a middle
# timestep on a batch of two: the inverted source and the generated video above noised to the same level.

# %%
from dynvfx.inversion import ddim_invert
from dynvfx.pipeline import encode_text, encode_video
from dynvfx.sampling import add_noise

source, _ = notebook.source_video(pipe, MODEL)
inv = ddim_invert(pipe, encode_video(pipe, source), "", NUM_STEPS, NUM_STEPS, progress=False)
t_probe = int(inv.timesteps[NUM_STEPS // 2])
x_edit = add_noise(pipe, encode_video(pipe, frames), t_probe, torch.Generator().manual_seed(0))
texts = torch.cat([encode_text(pipe, [""]), encode_text(pipe, [CAPTION])])
qk = probes.capture_qk(pipe, torch.cat([inv.at(t_probe), x_edit]), texts, t_probe, layers=PROBE_LAYERS)

# %% [markdown]
# ### 1. Attention against distance
#
# For each layer: the attention that a video query of the generated video gives to a video key at token distance
# *d* (the largest of the frame, row and column offsets), relative to uniform attention. Solid: keys of its own
# video. Dashed: keys of the source video (softmax over those keys only, as if the edit could see all of them).

# %%
import matplotlib.pyplot as plt

L = spec.max_text_tokens
fig, axes = plt.subplots(1, 2, figsize=(9, 3.2), sharey=True)
for layer, (q, k) in sorted(qk.items()):
    own, cross = probes.locality_profile(q[1], k[1], L, spec), probes.locality_profile(q[1], k[0], L, spec)
    axes[0].plot(own, "o-", label=f"layer {layer}")
    axes[1].plot(cross, "s--", label=f"layer {layer}")
    print(f"layer {layer}: same position x{own[0]:.2f} (own video), x{cross[0]:.2f} (source)")
for ax, name in zip(axes, ("own video", "source video")):
    ax.axhline(1, color="gray", lw=0.8), ax.set_xlabel("token distance"), ax.set_title(f"keys of the {name}")
axes[0].set_ylabel("attention per key / uniform"), axes[1].legend(fontsize=7), fig.tight_layout();

# %% [markdown]
# Values above 1 at distance 0-1 mean local attention. How strong it is depends on the training: a half-trained
# toy model can still be close to flat, while the key-change experiment below shows locality even then, because
# it comes mostly from the architecture (one patch per token, a residual stream) rather than from learning.
#
# One query, drawn: the token in the middle of the middle latent frame of the generated video (white box), and
# where it looks among the source's keys in each latent frame (last recorded layer).

# %%
mid = (f_lat // 2, rows // 2, cols // 2)
q, k = qk[max(qk)]
where = probes.query_map(q[1], k[0], L, spec, probes.token_index(spec, *mid))
fig, axes = plt.subplots(1, f_lat, figsize=(2 * f_lat, 2.2))
for f, ax in enumerate(axes):
    ax.imshow(where[f], cmap="magma", vmin=0, vmax=float(where.max())), ax.set_xticks([]), ax.set_yticks([])
    ax.set_title(f"latent frame {f}", fontsize=8)
axes[mid[0]].add_patch(plt.Rectangle((mid[2] - 0.5, mid[1] - 0.5), 1, 1, fill=False, ec="white", lw=2))
fig.suptitle(f"layer {max(qk)}: one query of the generated video over the source's keys", fontsize=10);

# %% [markdown]
# ### 2. Paint one patch, see which keys change
#
# A white square is painted into every frame of the source, both versions are encoded and noised with the same
# noise, and the keys are compared token by token. Shown: the change of each token's key, relative to the mean
# key norm, on the token grid of each latent frame (rows: layers).

# %%
painted = source.clone()
s = spec.height // 6
painted[:, :, -2 * s:-s, s:2 * s] = 1.0  # lower left, away from the example's moving object
lat = [add_noise(pipe, encode_video(pipe, v), t_probe, torch.Generator().manual_seed(1)) for v in (source, painted)]
empty = encode_text(pipe, [""])
change = probes.key_change(*(probes.capture_qk(pipe, x, empty, t_probe, PROBE_LAYERS) for x in lat), L, spec)
vmax = max(float(c.max()) for c in change.values())
rows_ = {f"layer {layer}": figures.heat_rgb(c[:, None], vmax) for layer, c in change.items()}
figures.video_grid(rows_, frames=list(range(f_lat)), labels=[f"latent frame {f}" for f in range(f_lat)],
                   title="|change of each token's key| after painting a patch (bright = large)");

# %%
painted_tokens = pixel_to_tokens((painted != source).any(1, keepdim=True), spec, threshold=0.0)
near = torch.nn.functional.max_pool2d(painted_tokens[:, None].float(), 3, 1, 1)[:, 0] > 0  # and their neighbours
print(f"painted tokens: {painted_tokens.float().mean():.0%} of all tokens; with neighbours {near.float().mean():.0%}")
for layer, c in change.items():
    print(f"layer {layer}: {c[painted_tokens].sum() / c.sum():.0%} of the key change on the painted tokens, "
          f"{c[near].sum() / c.sum():.0%} with their neighbours")

# %% [markdown]
# ## What to take away
#
# - The prompt reaches the video only through attention; a word's map shows where the model puts that word,
#   and it sharpens over the denoising steps and differs from layer to layer and head to head.
# - A video token's key mostly describes its own patch, and a query mostly looks near its own position — also
#   into another video in the batch. So letting the edit attend to *all* source tokens ties every place of the edit
#   to the same place of the source (the new object has no room), while letting it attend to a sparse, chosen set
#   of source tokens ties it only there. Chapter 4 builds that set.
