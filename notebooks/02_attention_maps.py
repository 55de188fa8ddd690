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
# # 2 · Attention maps in a video diffusion transformer
#
# [![Open In Colab](https://colab.research.google.com/assets/colab-badge.svg)](https://colab.research.google.com/github/dynvfx-course/dynvfx/blob/main/notebooks/02_attention_maps.ipynb)
#
# **What you will learn.** CogVideoX puts the text tokens and the video tokens into *one* sequence and runs full
# self-attention over it in every block (an MM-DiT). DynVFX works entirely through that attention, so it pays to
# look at it. You will
#
# - see why the keys and values of a video token "locally encode" their own patch: queries look mostly at
#   keys at or near their own position, in their own video and in another one, and changing one patch of the
#   video changes the keys there and hardly anywhere else. This is what makes the *anchors* of chapter 4 work;
# - write the text→video attention of a word out as $\mathrm{softmax}(QK^\top/\sqrt d)$ and check it against the
#   library's recorder;
# - record, while the model looks at the source video along its inversion (as DynVFX's source branch does), how
#   much attention each video token pays to the words the toy model draws (a colour, "ball", a motion, the
#   background's colour), and measure how much of it falls inside the object's ground-truth mask;
# - in an edit, map the attention that the new object's queries pay to the source's keys, a map that localises
#   loosely, beside the raw attention of the new object's word, which does not;
# - do three exercises (a cell for you, then its solution, collapsed).
#
# **Run time.** 21 s on one CPU thread with the toy model (measured by `notebooks/build.py`).
# It records 20 timesteps. With CogVideoX, `notebook.print_cost` prints the estimate for your GPU and docs/gpu.md
# lists the measured times per GPU.

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
# `VIDEO = None` takes the shipped toy example (with the toy model) or the course's real clip
# (`notebook.REAL_VIDEO`, with a real model); any path works too, e.g. `"../../shared/data/videos/taxi.mp4"`
# (with the toy model, a toy-world clip such as `"red_ball_bounce"`: its `.json` holds the
# scene, so the ground-truth mask is known). `MODEL = "toy"` runs anywhere. On a GPU you may set
# `"THUDM/CogVideoX-2b"` or `"THUDM/CogVideoX-5b"`, with `MEMORY = "auto"` (the fastest of the library's memory
# modes that fits your GPU; `docs/gpu.md` lists each mode's peak and each GPU's time); the cell
# then prints the estimated cost of a whole edit on this GPU
# (this chapter runs its inversion and a few single calls). On those models record only a few layers and steps:
# each recorded (step, layer) keeps `heads × words × 17,550` numbers. A real clip has no ground-truth mask: set
# `CAPTION` and `WORDS` to what is in it.

# %%
VIDEO = None  # None: the toy example, or notebook.REAL_VIDEO with a real model; a shipped clip's name; or a path
MODEL = "toy"  # on a GPU: "THUDM/CogVideoX-2b" or "THUDM/CogVideoX-5b"
MEMORY = "auto"  # on a GPU: "auto" (the fastest mode that fits), "full", "lean" or "offload"; docs/gpu.md

from dynvfx import figures, notebook, probes

notebook.setup_notebook()
MODEL, _, _ = notebook.resolve_choices(MODEL)
notebook.print_cost(MODEL)  # a real model only: the estimate of one edit at the paper's settings, on this GPU
NUM_STEPS = 20 if MODEL == "toy" else 50
RECORD_LAYERS = None if MODEL == "toy" else [0, 10, 20, 29]  # None = every block
RECORD_STEPS = None if MODEL == "toy" else [5, 15, 25, 35, 45]  # None = every kept timestep
PROBE_LAYERS = None if MODEL == "toy" else [0, 29]  # blocks whose queries/keys are kept for the locality probes

# %% [markdown]
# ## The source, its caption and the words
#
# For a toy-world video the renderer gives the caption and the object's exact mask in every frame (the
# *ground truth*); the words are the object's colour, "ball", its motion and the background's colour, all of which
# the toy model draws. The source is DDIM-inverted (chapter 1), so we have it at every sampling timestep.

# %%
import torch

from dynvfx.inversion import ddim_invert
from dynvfx.pipeline import encode_text, encode_video, video_spec

pipe = notebook.load_model(MODEL, memory=MEMORY)
spec = video_spec(pipe)
source, _ = notebook.source_video(pipe, MODEL, video=VIDEO)
truth = notebook.toy_truth(VIDEO) if MODEL == "toy" else None
CAPTION, WORDS, mask = truth or ("cars drive along a city street", ["cars", "street"], None)  # a real clip: edit
inv = ddim_invert(pipe, encode_video(pipe, source), "", NUM_STEPS, NUM_STEPS, progress=False)
figures.video_grid({"source": source} | ({"ground-truth mask": figures.mask_video(source, mask)} if truth else {}),
                   title=CAPTION);

# %% [markdown]
# **What you should see:** the blue ball moving down over gray (top) and its ground-truth mask, tinted, in
# every frame (bottom). The share of the video the ball covers (printed below) is the chance level of the maps.

# %% [markdown]
# The T5 tokenizer splits the caption into pieces (`▁` marks the start of a word); the transformer sees the caption
# padded to a fixed length, so the positions of a word's pieces are also their positions in the text part of the
# sequence.

# %%
# NBVAL_CHECK_OUTPUT
print("tokens:", probes.tokens_of(pipe, CAPTION))
ids = {word: probes.word_token_ids(pipe, CAPTION, word) for word in WORDS}
print("text positions:", ids)
f_lat, rows, cols = spec.token_grid
L = spec.max_text_tokens
print(f"sequence per block: {L} text tokens + {f_lat} x {rows} x {cols} = {f_lat * rows * cols} video tokens")
if mask is not None:
    print(f"the object covers {mask.float().mean():.1%} of the pixels")

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
# We run one transformer call at a middle timestep on a batch of two videos of the same size: the inverted source,
# and a second video in the place of the edit: the source with every frame rolled two token columns to the right,
# noised to the same level with fresh noise. Its ball is off the centre column (the two videos' ball masks do not
# overlap: IoU printed below), so "same position" and "same content" point to different source tokens.

# %%
from dynvfx.sampling import add_noise

t_probe = int(inv.timesteps[NUM_STEPS // 2])
SHIFT = spec.width // 3  # pixels: two token columns of the toy model
shifted = source.roll(SHIFT, -1)  # every frame rolled right: what leaves at the right re-enters at the left
x_edit = add_noise(pipe, encode_video(pipe, shifted), t_probe, torch.Generator().manual_seed(0))
texts = torch.cat([encode_text(pipe, [""]), encode_text(pipe, [CAPTION])])
qk = probes.capture_qk(pipe, torch.cat([inv.at(t_probe), x_edit]), texts, t_probe, layers=PROBE_LAYERS)
if mask is not None:
    moved = mask.roll(SHIFT, -1)
    iou = float((mask & moved).sum() / (mask | moved).sum())
    print(f"IoU of the source's and the shifted video's ball masks: {iou:.2f}")

# %% [markdown]
# ### 1. Attention against distance
#
# For each layer: the attention that a video query of the shifted video gives to a video key at token distance
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
# **What you should see:** in layers 1–5 the attention per key peaks at distance 0, 3 to 13 times uniform (printed
# per layer), and is near uniform by distance 2, for the keys of the query's own video and for the source's alike;
# layer 0 is flat. Most tokens are gray background in both videos, so these averages alone do not separate position
# from content; the single query below does.
#
# One query, drawn: the token at the left edge of the shifted video's middle latent frame (white box), away from
# both videos' balls, and where it looks among the source's keys in each latent frame (last recorded layer; cyan:
# the source's ball). The table gives the share of its attention on its own cell and neighbours and on the source's
# ball, each next to chance.

# %%
mid = (f_lat // 2, rows // 2, 0)  # left edge: away from both videos' balls
q, k = qk[max(qk)]
where = probes.query_map(q[1], k[0], L, spec, probes.token_index(spec, *mid))
near = torch.zeros(rows, cols, dtype=torch.bool)
near[max(mid[1] - 1, 0):mid[1] + 2, max(mid[2] - 1, 0):mid[2] + 2] = True  # its cell and its neighbours
ball = probes.token_coverage(mask, spec) if mask is not None else None
fig, axes = plt.subplots(1, f_lat, figsize=(2 * f_lat, 2.2))
for f, ax in enumerate(axes):
    ax.imshow(where[f], cmap="magma", vmin=0, vmax=float(where.max())), ax.set_xticks([]), ax.set_yticks([])
    if ball is not None:
        ax.contour(ball[f].numpy(), levels=[0.25], colors="cyan", linewidths=1.2)
    ax.set_title(f"latent frame {f}", fontsize=8)
axes[mid[0]].add_patch(plt.Rectangle((mid[2] - 0.5, mid[1] - 0.5), 1, 1, fill=False, ec="white", lw=2))
fig.suptitle(f"layer {max(qk)}: one query of the shifted video over the source's keys", fontsize=10)
print("share of the query's attention in each latent frame (chance: the share of that frame's tokens)")
print(f"{'frame':>5} | {'at its cell and neighbours':>26} | " + ("on the source's ball" if ball is not None else ""))
for f in range(f_lat):
    line = f"{f:>5} | {float(where[f][near].sum() / where[f].sum()):7.0%} (chance {near.float().mean():.0%}){'':5} | "
    if ball is not None:
        line += f"{probes.share_inside(where[f][None], ball[f][None]):.0%} (chance {ball[f].mean():.0%})"
    print(line)

# %% [markdown]
# **What you should see:** the query reads the source along its own left edge in every latent frame, brightest in
# frames 3 and 4: 27–32 % of each frame's attention falls on its cell and neighbours (chance 17 %). The source's
# ball (cyan) gets 1 % (chance 5 %): where a query looks in another video is set by its own position, not by where
# that video's object is.

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
from dynvfx.masks import pixel_to_tokens

painted_tokens = pixel_to_tokens((painted != source).any(1, keepdim=True), spec, threshold=0.0)
near = torch.nn.functional.max_pool2d(painted_tokens[:, None].float(), 3, 1, 1)[:, 0] > 0  # and their neighbours
print(f"painted tokens: {painted_tokens.float().mean():.0%} of all tokens; with neighbours {near.float().mean():.0%}")
for layer, c in change.items():
    print(f"layer {layer}: {c[painted_tokens].sum() / c.sum():.0%} of the key change on the painted tokens, "
          f"{c[near].sum() / c.sum():.0%} with their neighbours")

# %% [markdown]
# **What you should see:** in every layer the brightest cells sit at or next to the painted patch (lower left) in
# every latent frame, spreading wider in layer 5. The painted tokens and their neighbours, 25 % of the tokens, take 44–58 % of the key change (printed
# above): a source key describes its own patch, the observation behind Anchor Extended Attention (the paper's
# Sec. 4.2 and Fig. 3).

# %% [markdown]
# ## The mechanism: one word's attention map, written out
#
# In a block, every token's query is compared with every key of the joint sequence [text; video] and a softmax
# turns the scores into weights that sum to 1. A word's *attention map* is the weight each **video query** gives to
# the word's text key(s), averaged over heads: one number per video token. Below it is computed by hand from the
# queries and keys of one block (captured after RoPE) at a middle timestep, on the inverted source with the
# caption, and compared with what the library's `AttentionRecorder` keeps.

# %%
from dynvfx.attention import AttentionRecorder

i_mid, layer = NUM_STEPS // 2, pipe.transformer.config.num_layers - 1
t_mid, word_ids = int(inv.timesteps[i_mid]), ids[WORDS[0]]
q, k = probes.capture_qk(pipe, inv.latents[i_mid], encode_text(pipe, [CAPTION]), t_mid, layers=[layer])[layer]
q, k = q[0], k[0]  # [heads, L + N, d]: text tokens first
scores = q[:, L:] @ k.transpose(1, 2) / q.shape[-1] ** 0.5  # [heads, N video queries, L + N keys]
weights = scores.softmax(dim=-1)  # each row sums to 1 over text and video keys
by_hand = weights[:, :, word_ids].sum(-1).mean(0).view(*spec.token_grid)  # the word's share, heads averaged

recorder = AttentionRecorder(word_ids)
recorder.record(0, layer, q, k, L, n_anchor=0)  # what the processor calls during sampling
assert torch.allclose(by_hand, probes.word_attention(recorder, spec), atol=1e-6)
print(f"layer {layer}, t = {t_mid}: the library's map = softmax(QK^T / sqrt(d)) by hand. A video query gives "
      f"{weights[:, :, :L].sum(-1).mean():.1%} of its attention to the {L} text tokens, {by_hand.mean():.2%} to "
      f"{WORDS[0]!r} (uniform over all keys would be {len(word_ids) / k.shape[1]:.2%})")

# %% [markdown]
# ## Where do the words look? Attention on the source, with the ground truth
#
# `record_on_inversion` makes one call per kept timestep on the inverted source with the caption (no sampling, so
# the video *is* the source at every step and the ground-truth mask applies) and records every block. The figure
# averages over timesteps, layers and heads; each row has its own colour scale (colour bar), the cyan outline is
# the object's mask, and the number under each word is the share of its attention that falls inside the mask,
# next to *chance*: the mask's share of the video, which a uniform map would get.

# %%
all_ids = sorted({i for word_ids in ids.values() for i in word_ids})
rec = probes.record_on_inversion(pipe, inv, CAPTION, all_ids, RECORD_STEPS, RECORD_LAYERS)
maps = {word: probes.word_attention(rec, spec, tokens=ids[word]) for word in WORDS}
cover = probes.token_coverage(mask, spec) if mask is not None else None
chance = float(cover.mean()) if cover is not None else None
notes = {word: f"{probes.share_inside(m, cover):.0%} inside\n(chance {chance:.0%})" for word, m in maps.items()} \
    if cover is not None else None
figures.word_maps(maps, spec, mask, notes=notes);

# %% [markdown]
# **What you should see:** no word's map follows the ball: 'blue', 'ball' and 'gray' put about chance inside the
# cyan outline (the share under each word) and are brightest in the lower rows whatever the frame. Only 'down'
# lights a horizontal band that moves down with the ball, the closest any word comes to the object.

# %% [markdown]
# By layer (mean over timesteps and heads): the share inside the mask for each word; the dashed line is chance.
# The table adds where the words' attention goes instead: its share on the *border* tokens (the outer ring of each
# latent frame's token grid).

# %%
import matplotlib.pyplot as plt
import numpy as np

layers = sorted({layer for _, layer in rec.text_to_video})
if cover is not None:
    shares = {w: [probes.share_inside(probes.word_attention(rec, spec, layer=n, tokens=ids[w]), cover)
                  for n in layers] for w in WORDS}
    fig, ax = plt.subplots(figsize=(6.5, 3))
    for j, (word, share) in enumerate(shares.items()):
        ax.bar(np.arange(len(layers)) + (j - 1.5) * 0.2, share, width=0.2, label=repr(word))
    ax.axhline(chance, color="k", ls="--", lw=1, label="chance (mask's share)")
    ax.set_xticks(range(len(layers)), [f"layer {n}" for n in layers]), ax.set_ylabel("share inside the mask")
    ax.legend(fontsize=7, ncol=3), fig.tight_layout()
    border = torch.ones(spec.token_grid)
    border[:, 1:-1, 1:-1] = 0  # the outer ring of tokens of every latent frame
    on_border = [probes.share_inside(probes.word_attention(rec, spec, layer=n, tokens=all_ids), border) for n in layers]
    print(f"{'':23}| " + " | ".join(f"layer {n}" for n in layers) + " | chance")
    for word, share in shares.items():
        print(f"{repr(word) + ' inside the mask':23}| " + " | ".join(f"{x:7.0%}" for x in share) + f" | {chance:.0%}")
    print(f"{'all words, on border':23}| " + " | ".join(f"{x:7.0%}" for x in on_border) + f" | {border.mean():.0%}")
else:
    print("no ground-truth mask for this video: the shares need one (a toy-world clip, or your own mask)")

# %% [markdown]
# **What you should see:** no word puts much more than twice chance inside the mask in any layer, and 'gray',
# which names the background, does about as well as 'ball': a share near chance does not tell which word names the
# object. Layer 4 puts almost nothing inside for every word because its queries read the text almost only on the
# border tokens (the table's last row), where the ball hardly ever is.
#
# **How well does raw attention localise?** Poorly, in this model: a word's raw map shows where a block reads the
# text at all, not where the object it names is. The toy model is small (6 blocks, 4 heads, a 6 × 6 token grid per
# latent frame, each token 8 × 8 pixels and 4 frames), so its maps are coarse.
#
# This is a known property of multimodal DiTs, not only of our toy. Helbling et al. (*ConceptAttention*, 2025,
# [arXiv 2502.04320](https://arxiv.org/abs/2502.04320)) found that the raw text→image attention weights of models
# such as Flux and SD3 give poor saliency maps, and that a map computed in the attention *output* space (the dot
# product between image tokens' attention outputs and those of concept tokens passed through the same layers)
# localises much better, without changing the image. DynVFX does not rely on text attention for localisation:
# where the new object goes is decided by which *source* keys the edit may attend to (the anchors: the next section
# and chapter 4), and where it ended up is found by a segmenter, not by attention maps.

# %% [markdown]
# ## A map that localises, loosely: the new ball's attention to the source
#
# An edit gives the video queries a second kind of key. In DynVFX the edit runs beside the source, and its queries
# may also attend to the source's keys at the *anchors* (chapter 4). Take the queries of the tokens where the new
# object is and ask which source keys they look at: each key sits at one place of the source, so that attention is
# a map on the source's frame.
#
# The edit is chapter 4's, "add a red ball moving right", at its first extending step (`probes.capture_anchor_call`):
# the edit's latent is the source with the red ball added at the top left (where chapter 4's edit draws it),
# rendered by the toy world so that the new ball's mask is exact (cyan outline), noised to t beside the inverted
# source, with the texts [P_comp, source caption]. The rows, summed over the blocks: the raw cross-attention of the
# new word 'red' (each edit query's attention to its text key); the attention that the new ball's queries pay to
# each source key when every source token is an anchor; the same with DynVFX's sparse anchors (most `O_orig`
# tokens, 5 % of the others). Under each row, its share inside the new ball's mask, next to chance (for the anchor
# rows: the share of a map spread evenly over the anchors).

# %%
import dataclasses

from dynvfx.anchors import anchor_grid, anchor_index
from dynvfx.config import DynVFXConfig
from dynvfx.masks import pixel_to_tokens

config = DynVFXConfig.for_model(MODEL).replace(num_inference_steps=NUM_STEPS, inversion_steps=NUM_STEPS)
if MODEL == "toy" and VIDEO is None:  # needs the toy world's renderer for the new ball's exact mask
    from dynvfx.toy import world
    from dynvfx.toy.examples import example_scene, scene_frames

    scene = example_scene("blue_ball_down")  # the source's scene
    red = world.place_object(np.random.default_rng(0), "red", "ball", "right")  # starts at the top left
    target = dataclasses.replace(scene, objects=scene.objects + (red,))  # the source with the new ball
    P_comp, new_mask = target.caption, torch.from_numpy(world.render(target)[1][1])[:, None]  # [F, 1, H, W]
    edit = dataclasses.replace(inv, x_orig=encode_video(pipe, scene_frames(target)))  # the call noises it to t
    new_tokens = pixel_to_tokens(new_mask, spec)
    orig_tokens = pixel_to_tokens(mask, spec, config.anchor_token_threshold)
    ANCHORS = {"every source token": torch.ones_like(orig_tokens),
               "DynVFX anchors": anchor_grid(orig_tokens, "anchor", config.fg_keep, config.bg_keep,
                                               torch.Generator().manual_seed(config.seed))}
    calls = {name: [probes.capture_anchor_call(pipe, edit, P_comp, CAPTION, anchor_index(grid), config, n)
                    for n in layers] for name, grid in ANCHORS.items()}
    red_ids = probes.word_token_ids(pipe, P_comp, "red")
    per_layer = {name: [probes.edit_attention(c, spec, new_tokens, red_ids) for c in cs] for name, cs in calls.items()}
    print(f"P_comp: {P_comp!r}; t = {calls['every source token'][0].timestep}; the new ball covers "
          f"{new_mask.float().mean():.1%} of the pixels, O_orig {mask.float().mean():.1%}")
else:
    print("a toy-world edit with its rendered truth (the shipped example); with a real model, choose the new "
          "object's tokens by hand (e.g. a box) and call probes.edit_attention on a capture_anchor_call")

# %%
if MODEL == "toy" and VIDEO is None:
    cover_new = probes.token_coverage(new_mask, spec)
    rows_new = {"red → edit video": sum(w for _, w in per_layer["DynVFX anchors"])} | \
        {f"new ball → {name}": sum(m for m, _ in per_layer[name]) for name in ANCHORS}
    even = [cover_new.new_ones(cover_new.shape)] + [grid.float() for grid in ANCHORS.values()]  # evenly spread
    notes_new = {row: f"{probes.share_inside(m, cover_new):.0%} inside\n(chance "
                      f"{probes.share_inside(e, cover_new):.0%})" for (row, m), e in zip(rows_new.items(), even)}
    figures.word_maps(rows_new, spec, new_mask, notes=notes_new)
    print("share inside the new ball's mask (chance) | new ball → DynVFX anchors: on the O_orig tokens (chance)")
    print(f"{'block':>6} | {'red → edit':>10} | {'new ball → every source token':>29} | {'→ anchors':>9} | "
          "on O_orig")
    for j, n in enumerate(layers + ["all"]):
        pick = slice(None) if n == "all" else slice(j, j + 1)
        red_map = sum(w for _, w in per_layer["DynVFX anchors"][pick])
        every, sparse = (sum(m for m, _ in per_layer[name][pick]) for name in ANCHORS)
        shares = [probes.share_inside(x, c) for x, c in ((red_map, cover_new), (every, cover_new),
                                                           (sparse, cover_new), (sparse, cover))]
        print(f"{n:>6} | {shares[0]:10.0%} | {shares[1]:29.0%} | {shares[2]:9.0%} | {shares[3]:.0%}")
    chances = [probes.share_inside(e, cover_new) for e in even] + [probes.share_inside(even[2], cover)]
    print(f"{'chance':>6} | {chances[0]:10.0%} | {chances[1]:29.0%} | {chances[2]:9.0%} | {chances[3]:.0%}")
    print("\nall blocks, per latent frame: share inside the new ball's mask (chance), and for the anchor map on O_orig")
    every, sparse = (rows_new[f"new ball → {name}"] for name in ANCHORS)
    for f in range(f_lat):
        inside = [probes.share_inside(x[f][None], cover_new[f][None]) for x in (every, sparse)]
        print(f"frame {f} | every source token {inside[0]:4.0%} (chance {cover_new[f].mean():.0%}) | anchors "
              f"{inside[1]:4.0%} (chance {probes.share_inside(even[2][f][None], cover_new[f][None]):.0%}), on O_orig "
              f"{probes.share_inside(sparse[f][None], cover[f][None]):.0%}")

# %% [markdown]
# **What you should see:** the word 'red' is brightest along the bottom rows, away from the new ball (cyan
# outline), and puts about as much inside it as chance, or less, in every block (the first table). The new ball's
# queries look at the source around the new ball's start (top left) and the blue ball (`O_orig`), not along the new
# ball's path: their share inside its mask falls from 19 % in latent frames 0–1 to 12 % in frame 4 (chance 7 %),
# and in frames 12 and 16 the bright area stays left of the ball. With DynVFX's sparse anchors it goes to the few
# anchors next to the new ball's start and on the blue ball (40 % on `O_orig`, chance 25 %); in latent frames 0, 3
# and 4 hardly any anchor lies inside the new ball's mask, so nothing can land there.
#
# **Why the two maps differ.** A text key has no position (RoPE rotates only the video tokens) and every video
# query reads the same few text keys, so a word's map shows how much each query reads the text in a block, not
# where the word's object is. A source key is rotated at its own place and describes its own patch (the locality
# section), so the new ball's queries find source keys near the ball's start and on `O_orig`: the map localises,
# loosely, because the keys are local, and it shows what the anchors tie the new ball to.

# %% [markdown]
# ### Does the model know which ball each word belongs to?
#
# The maps show where words are read, not whether "left" is read as the *red* ball's motion. Test that directly:
# two captions with the same words, bound the other way (the balls' motions exchanged), from the same seeds.

# %%
from dynvfx.pipeline import generate

if MODEL == "toy":
    from dynvfx.toy import judge, world

    BOUND = {"red left, blue up": [("red", "left"), ("blue", "up")],
             "red up, blue left": [("red", "up"), ("blue", "left")]}
    bound_rows = {}
    for seed in (1, 4):
        bound_videos = {name: generate(pipe, world.caption_for("black", [(c, "ball", m) for c, m in balls]),
                                       seed=seed, steps=NUM_STEPS) for name, balls in BOUND.items()}
        first, second = bound_videos.values()
        print(f"seed {seed}: mean pixel difference between the two videos {(first - second).abs().mean():.0e}; "
              + "; ".join(f"caption '{name}' drawn right: {judge.judge(v, 'black', BOUND[name]).ok}"
                          for name, v in bound_videos.items()))
        bound_rows |= {f"seed {seed},\n'{name}'": v for name, v in bound_videos.items()}
    figures.video_grid(bound_rows);
else:
    print("a toy-world check (captions of red and blue balls); with a real model, try two captions of your own")

# %% [markdown]
# **What you should see:** from the same seed the two captions give different videos (the pixel difference
# printed above): the blue ball moves up in the rows 'red left, blue up', the red ball in the rows 'red up, blue
# left', and the strict judge passes both captions with both seeds. So the toy model hears which ball each word
# belongs to, although CogVideoX gives text tokens no positions of their own: the text encoder's output has to carry
# the word order, as T5-XXL, pretrained on language, does for CogVideoX (docs/toy-model.md shows how the toy's
# encoder learns it; `benchmarks/toy_word_sensitivity.py` measures it).

# %% [markdown]
# ### Explore
#
# Step (index of the kept timestep), layer, head (-1 = mean over heads) and frame, for the first word. The right
# panel is the raw map on the token grid of the latent frame that holds the chosen frame.

# %%
from dynvfx import widgets

widgets.attention_viewer(source, probes.only_tokens(rec, ids[WORDS[0]]), spec, WORDS[0])

# %% [markdown]
# ## Exercises
#
# Each exercise has a cell for you to work in (fill in what `...` stands for; as it is, it runs and does
# nothing) and, below it, its solution, collapsed in Jupyter and in Colab (double-click to read it). The
# solutions run with the notebook and check themselves with an `assert`; their output is not stored, so you
# see it only when you run them.
#
# **1 · A permutation test.** The words' shares inside the mask sit near chance. Is any word's map really above
# it, or would the same values in random places do as well? For each word's averaged map (`maps[word]`, the
# figure's), shuffle its tokens 500 times and count how often the shuffled map puts at least as much inside the
# mask as the real one: a p-value. Predict first: which words get p < 0.05? (Toy-world videos only: it needs the
# mask.)

# %%
# Your turn. First your prediction: which words' maps beat their shuffled versions (p < 0.05)?
my_prediction = ...
# TODO (toy-world videos, where cover is not None): for each word, 500 times permute the tokens of maps[word]
# (torch.randperm on the flattened map, reshaped like cover) and take probes.share_inside(shuffled, cover);
# p = the share of shuffled maps at or above the real map's share.
my_p_values = {}

# %% jupyter={"source_hidden": true} tags=["solution"]
#@title Solution to exercise 1 (double-click to show the code)
#@markdown Runs with the notebook and checks itself with an `assert`; run it to see its output.
if cover is not None:
    g = torch.Generator().manual_seed(0)
    for word, m in maps.items():
        flat, real = m.flatten(), probes.share_inside(m, cover)
        shuffled = np.array([probes.share_inside(flat[torch.randperm(flat.numel(), generator=g)].view_as(cover),
                                                 cover) for _ in range(500)])
        print(f"{word!r:>7}: real {real:.1%}, shuffled {shuffled.mean():.1%} ± {shuffled.std():.1%}, "
              f"p = {(shuffled >= real).mean():.3f}")
        assert abs(shuffled.mean() - chance) < 0.01  # a shuffled map keeps its total: on average it gets chance

# %% [markdown]
# **2 · Heads.** The maps above average the heads. Compute the share inside the mask for each head of the last
# recorded layer (`probes.word_attention(..., head=h)`) for the first word. Which head localises best, and by how
# much does it beat the mean? Check that the mean over the heads' maps is the head-averaged map.

# %%
# Your turn. TODO: for every head h, probes.word_attention(rec, spec, layer=layers[-1], head=h,
# tokens=ids[WORDS[0]]) and its probes.share_inside(..., cover); check that the heads' mean is the map without head=.
my_heads = ...  # how many heads: the first axis of a map in rec.text_to_video
my_head_shares = ...

# %% jupyter={"source_hidden": true} tags=["solution"]
#@title Solution to exercise 2 (double-click to show the code)
#@markdown Runs with the notebook and checks itself with an `assert`; run it to see its output.
heads = next(iter(rec.text_to_video.values())).shape[0]
per_head = [probes.word_attention(rec, spec, layer=layers[-1], head=h, tokens=ids[WORDS[0]]) for h in range(heads)]
assert torch.allclose(torch.stack(per_head).mean(0), probes.word_attention(rec, spec, layer=layers[-1],
                                                                           tokens=ids[WORDS[0]]), atol=1e-7)
if cover is not None:
    head_shares = [probes.share_inside(m, cover) for m in per_head]
    print(f"layer {layers[-1]}, {WORDS[0]!r}: share inside per head", [f"{s:.0%}" for s in head_shares],
          f"(chance {chance:.0%})")

# %% [markdown]
# **3 · Predict, then run: paint elsewhere.** Paint the white square into the *upper right* corner instead. Predict
# where the keys will change; then check that in every recorded layer the painted tokens and their neighbours take
# a larger share of the key change than their share of the tokens.

# %%
# Your turn. First your prediction: where will the keys change?
# TODO: like section 2, on a copy of source with the square at the upper right (rows s:2*s, columns -2*s:-s):
# noise it as lat was, probes.capture_qk and probes.key_change against lat[0]'s keys, then the share of each
# layer's change on the painted tokens and their neighbours (pixel_to_tokens, max_pool2d) against their share.
my_painted = ...
my_change = ...

# %% jupyter={"source_hidden": true} tags=["solution"]
#@title Solution to exercise 3 (double-click to show the code)
#@markdown Runs with the notebook and checks itself with an `assert`; run it to see its output.
painted2 = source.clone()
painted2[:, :, s:2 * s, -2 * s:-s] = 1.0  # upper right
lat2 = add_noise(pipe, encode_video(pipe, painted2), t_probe, torch.Generator().manual_seed(1))
change2 = probes.key_change(probes.capture_qk(pipe, lat[0], empty, t_probe, PROBE_LAYERS),
                            probes.capture_qk(pipe, lat2, empty, t_probe, PROBE_LAYERS), L, spec)
tokens2 = pixel_to_tokens((painted2 != source).any(1, keepdim=True), spec, threshold=0.0)
near2 = torch.nn.functional.max_pool2d(tokens2[:, None].float(), 3, 1, 1)[:, 0] > 0
for layer_, c in change2.items():
    print(f"layer {layer_}: {c[near2].sum() / c.sum():.0%} of the key change near the patch "
          f"({near2.float().mean():.0%} of the tokens)")
    assert c[near2].sum() / c.sum() > near2.float().mean()

# %% [markdown]
# ## What to take away
#
# - The prompt reaches the video only through attention: a word's map is one column of
#   $\mathrm{softmax}(QK^\top/\sqrt d)$, read at the video queries. In this toy model such a map does not single
#   out the object (about chance inside its mask), except, loosely, for the motion word.
# - In an edit, the attention that the new object's queries pay to the source's keys lands near the new object's
#   start and on the source's object, well above chance: source keys carry positions, text keys do not.
# - Raw text→video attention is a weak localiser in an MM-DiT (ConceptAttention's point); DynVFX localises the new
#   content through the *source's* keys and values instead.
# - A video token's key mostly describes its own patch, and a query mostly looks near its own position, also into
#   another video in the batch. So letting the edit attend to *all* source tokens ties every place of the edit to
#   the same place of the source (the new object has no room), while letting it attend to a sparse, chosen set of
#   source tokens ties it only there: the observation behind Anchor Extended Attention (the paper's Sec. 4.2 and
#   Fig. 3; the project page, https://dynvfx.github.io/, shows the edits it makes possible). Chapter 4 builds that
#   set.
