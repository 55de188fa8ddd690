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
# # 1 · DDIM inversion with a v-prediction model
#
# [![Open In Colab](https://colab.research.google.com/assets/colab-badge.svg)](https://colab.research.google.com/github/dynvfx-course/dynvfx/blob/main/notebooks/01_ddim_inversion.ipynb)
#
# **What you will learn.** DynVFX never edits pixels directly: it runs the source video through the diffusion
# model *beside* the edit, at the same noise level, so the edit can read the source's keys and values. For that it
# needs the source at every timestep of the sampler, which DDIM inversion provides. You will
#
# - derive the v-prediction formulas CogVideoX uses and check them numerically (and against diffusers' scheduler),
# - invert a video and sample it back from different timesteps, and see why sampling back from the *fully*
#   inverted noise is unreliable with CogVideoX's zero-terminal-SNR schedule (and why DynVFX never does that),
# - measure the reconstruction error per starting timestep and against the number of steps (plots),
# - look at the noisy latents along the way, decoded,
# - do three exercises (a cell for you, then its solution, collapsed).
#
# **Run time.** 29 s on one CPU thread with the toy model (measured by `notebooks/build.py`).
# It samples with 20 steps (the curves go up to 50); on a GPU the toy chapter takes a few seconds. With
# CogVideoX-5B on an A100 one 50-step inversion plus reconstruction takes a few minutes, and the curves, which repeat
# them from a few starting timesteps, about 20 min (estimates).

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
# (with the toy model, a toy-world clip such as `"../data/examples/green_ball_left.mp4"`).
# `MODEL = "toy"` runs anywhere. On a GPU you may set `"THUDM/CogVideoX-2b"` (≈ 12.5 GB at inference) or
# `"THUDM/CogVideoX-5b"` (≈ 20.7 GB); `CPU_OFFLOAD = True` needs much less GPU memory but is slower. This chapter
# runs the model alone (no source branch), so those figures apply as they are; with a real model the cell prints
# the estimated cost of a whole edit on this GPU (this chapter runs its inversion part, and repeats it for the
# curves). Without a GPU the cell falls back to the toy model.

# %%
VIDEO = None  # None: the toy example, or notebook.REAL_VIDEO with a real model; or a path to your own clip
MODEL = "toy"  # on a GPU: "THUDM/CogVideoX-2b" or "THUDM/CogVideoX-5b"
CPU_OFFLOAD = False  # True for GPUs with less than ~24 GB

from dynvfx import figures, notebook, probes

notebook.setup_notebook()
MODEL, _, _ = notebook.resolve_choices(MODEL)
notebook.print_cost(MODEL)  # a real model only: the estimate of one edit at the paper's settings, on this GPU
NUM_STEPS = 20 if MODEL == "toy" else 50  # sampling steps (the paper: 50)
CURVE_STEPS = (2, 5, 10, 20, 50) if MODEL == "toy" else (5, 10, 25)  # for the error-vs-steps curve

# %% [markdown]
# ## The maths in a few lines
#
# The forward process mixes a clean latent $x_0$ with Gaussian noise $\epsilon$ at noise level
# $\bar\alpha_t$ (`alphas_cumprod[t]`, from 1 at $t=0$ down to 0 at $t=999$):
#
# $$x_t = \sqrt{\bar\alpha_t}\,x_0 + \sqrt{1-\bar\alpha_t}\,\epsilon .$$
#
# CogVideoX does not predict $\epsilon$ but the *velocity*
# $v = \sqrt{\bar\alpha_t}\,\epsilon - \sqrt{1-\bar\alpha_t}\,x_0$.
# The pair $(x_t, v)$ is $(x_0, \epsilon)$ rotated by the angle $\phi_t$ with $\cos\phi_t = \sqrt{\bar\alpha_t}$, so
# rotating back gives both estimates:
#
# $$\hat x_0 = \sqrt{\bar\alpha_t}\,x_t - \sqrt{1-\bar\alpha_t}\,v, \qquad
#   \hat\epsilon = \sqrt{1-\bar\alpha_t}\,x_t + \sqrt{\bar\alpha_t}\,v .$$
#
# A deterministic DDIM step from $t$ to a less noisy $s$ re-mixes them at the new level:
# $x_s = \sqrt{\bar\alpha_s}\,\hat x_0 + \sqrt{1-\bar\alpha_s}\,\hat\epsilon$.
# **DDIM inversion** runs the same update *upwards*, from $s$ to the noisier $t$. It needs $v$ at $(x_t, t)$, which
# is unknown, and uses the prediction at $(x_s, s)$ instead; the smaller the step, the smaller that error.
#
# CogVideoX's schedule has *zero terminal SNR*: $\bar\alpha_{999} = 0$, so the last inversion step returns exactly
# $\hat\epsilon$, the model's own estimate of the noise in the video, and **keeps no $x_0$ term at all**. Hold on
# to that: it decides where one can sample back from (below).

# %%
# NBVAL_CHECK_OUTPUT
import torch

g = torch.Generator().manual_seed(0)
x0, eps = torch.randn(2, 10_000, generator=g, dtype=torch.float64)
for alpha_bar in (0.99, 0.5, 0.01):
    a = torch.tensor(alpha_bar, dtype=torch.float64)
    x_t = a.sqrt() * x0 + (1 - a).sqrt() * eps
    v = a.sqrt() * eps - (1 - a).sqrt() * x0
    x0_back = a.sqrt() * x_t - (1 - a).sqrt() * v
    eps_back = (1 - a).sqrt() * x_t + a.sqrt() * v
    exact = max((x0_back - x0).abs().max(), (eps_back - eps).abs().max()) < 1e-12
    print(f"alpha_bar {alpha_bar:4}: x0 and eps recovered exactly: {exact}; std of v = {v.std():.3f}")

# %% [markdown]
# $v$ keeps unit variance at every noise level, one reason it is a comfortable target for the network. Now the
# model's own schedule, and a check that diffusers' `CogVideoXDDIMScheduler.step` is the formula above.

# %%
from dynvfx.pipeline import encode_video, video_spec
from dynvfx.sampling import sampling_timesteps

pipe = notebook.load_model(MODEL, cpu_offload=CPU_OFFLOAD)
spec = video_spec(pipe)
frames, _ = notebook.source_video(pipe, MODEL, video=VIDEO)

# %%
# NBVAL_CHECK_OUTPUT
alphas = pipe.scheduler.alphas_cumprod
timesteps = sampling_timesteps(pipe, NUM_STEPS)
print(f"{NUM_STEPS} sampling timesteps:", timesteps.tolist())
print("alpha_bar at t = 0, 250, 500, 750, 999:", [float(f"{alphas[t]:.3g}") for t in (0, 250, 500, 750, 999)])

t, s = int(timesteps[5]), int(timesteps[6])
x_t, v = torch.randn(2, 1, 1000, generator=g, dtype=torch.float64)
x0_hat = alphas[t].sqrt() * x_t - (1 - alphas[t]).sqrt() * v
eps_hat = (1 - alphas[t]).sqrt() * x_t + alphas[t].sqrt() * v
ours = alphas[s].sqrt() * x0_hat + (1 - alphas[s]).sqrt() * eps_hat
theirs = pipe.scheduler.step(v, t, x_t).prev_sample
print(f"DDIM step {t} -> {s}: diffusers' scheduler matches the formula: {torch.allclose(ours, theirs)}")

# %% [markdown]
# ## Invert a video
#
# `ddim_invert` encodes nothing itself: it takes the source latents `x_orig = encode_video(pipe, frames)` and walks
# them up the schedule with the empty prompt (the paper's choice), keeping the latent at each sampling timestep.
# The paper inverts over a fine schedule of 250 steps and keeps the 50 sampling timesteps; here both are
# `NUM_STEPS` to stay fast.

# %%
from dynvfx.inversion import ddim_invert

x_orig = encode_video(pipe, frames)
inv = ddim_invert(pipe, x_orig, prompt="", num_steps=NUM_STEPS, inversion_steps=NUM_STEPS, progress=False)

# %%
# NBVAL_CHECK_OUTPUT
print(f"frames {tuple(frames.shape)} -> x_orig {tuple(x_orig.shape)}  ([1, F', C, h, w])")
print(f"kept latents {tuple(inv.latents.shape)} ([T, 1, F', C, h, w]) at timesteps {inv.timesteps[:3].tolist()} "
      f"... {inv.timesteps[-1].item()}")

# %% [markdown]
# ## Sample it back — but from where?
#
# Sampling back down the schedule with the same (empty) prompt and no guidance should give the source again. Two
# things limit it: the inversion's approximation (each step uses $v$ from one step earlier) and the autoencoder,
# whose own round trip `decode(encode(frames))` is the best any latent method can do. A third thing matters more:
# **where we start**. At $t = 999$, $\bar\alpha = 0$: the fully inverted latent is $\hat\epsilon$ alone, and the
# model's first clean estimate from it, $\hat x_0 = -v$, is made with no $x_0$ term in its input. From there the
# sampler has to decide the whole video again, background first, and the source's background is whatever the noise
# happens to suggest. A few steps lower, $\sqrt{\bar\alpha_t}$ (the weight of $x_0$ in $x_t$) is small but no longer
# zero (printed below).
#
# DynVFX never samples back from the fully inverted noise. Its source branch reads the kept latent `inv.at(t)` at
# each timestep of the *injection window* (the authors' code: $t$ = 899 … 619 of 50 steps), and each refinement
# pass is an SDEdit run that starts from $x_{orig} + x_{res}$ noised with *fresh* noise at strength ≤ 0.92 (the
# first pass: $t$ = 919 at 50 steps, 899 at our 20). So we sample back from four places: the inverted noise at
# $t = 999$,
# the kept latent at the first refinement timestep, and the kept latents at $t = 799$ and $t = 499$.

# %%
from dynvfx.pipeline import decode_latents
from dynvfx.sampling import start_index

T_REFINE = int(inv.timesteps[start_index(NUM_STEPS, 0.92)])  # where the first refinement pass starts
STARTS = {"inverted noise, t = 999": 999, f"kept latent, t = {T_REFINE}": T_REFINE, "kept latent, t = 799": 799,
          "kept latent, t = 499": 499}
rows = {"source": frames, "decode(x_orig)": decode_latents(pipe, x_orig)}
for name, t in STARTS.items():
    x_rec = probes.reconstruct_from(pipe, inv, t)
    rows[f"from the {name}"] = decode_latents(pipe, x_rec)
    rmse = (x_rec - inv.x_orig).pow(2).mean().sqrt()
    print(f"from t = {t}: sqrt(alpha_bar) = {alphas[t].sqrt():.3f}, latent RMSE(x_rec, x_orig) = {rmse:.3f}")
print(f"RMS of x_orig itself: {inv.x_orig.pow(2).mean().sqrt():.3f}; the inverted noise has std "
      f"{inv.noise.std():.2f} (the Gaussian noise the model was trained to start from: 1)")
figures.video_grid(rows, title="sampling back from four starting points");

# %% [markdown]
# **What you should see:** the autoencoder's own round trip (second row) is slightly blurred, the best any
# latent method can do here. Sampled back from the inverted noise at $t = 999$ the video is *redrawn*, not
# reconstructed: the blue ball moves down as in the source, about as large and a little blurrier, but over an
# almost white background instead of gray (latent RMSE 0.593); with 5, 10 or 50 steps the error is higher still
# (1.26–1.28, the steps curve below). From the kept latents at $t = 899$ and $t = 799$ the gray background is
# right but the ball is gone (0.12 both); from $t = 499$ the source
# comes back, as blurred as the autoencoder makes it (0.025). The inverted noise is not like the noise the sampler
# expects either (std 0.42, not 1). Why the ball is
# lost at 899 and 799: we sample with the empty prompt and no guidance, and there the model's clean estimate from
# the kept latent shows no ball, only a faint bluish smudge (see the $\hat x_0$ row of the last figure at
# $t = 749$); DynVFX's passes sample with the caption $P_{comp}$ and classifier-free guidance, which name the ball.

# %%
figures.show_videos({"source": frames, "autoencoder only": rows["decode(x_orig)"]} |
                    {k.removeprefix("from the "): v for k, v in list(rows.items())[2:]})

# %% [markdown]
# ## Reconstruction error per starting timestep
#
# For every kept timestep $t$: sample back from the kept latent `inv.at(t)` (solid) and, for contrast, from
# $x_{orig}$ noised to $t$ with fresh Gaussian noise, where SDEdit starts (dashed). The error is measured on the
# latents, so the autoencoder plays no part. Shaded: the injection window, where DynVFX's source branch runs on
# the kept latents; dotted: where the first refinement pass starts.

# %%
import matplotlib.pyplot as plt

from dynvfx.config import DynVFXConfig
from dynvfx.sampling import injection_window

starts = None if MODEL == "toy" else inv.timesteps[::10].tolist()  # a real model: 5 starting points, not 50
kept = probes.reconstruction_errors(pipe, inv, starts=starts)
fresh = probes.reconstruction_errors(pipe, inv, noise="random", starts=starts)
cfg = DynVFXConfig.for_model(MODEL)
window = injection_window(inv.timesteps, cfg.injection_max_timestep, cfg.injection_min_timestep)
fig, ax = plt.subplots(figsize=(8, 3.4))
ax.semilogy(*zip(*kept), "o-", label="from the kept latent inv.at(t)")
ax.semilogy(*zip(*fresh), "s--", label="from x_orig + fresh noise (SDEdit)")
ax.axhline(float(inv.x_orig.pow(2).mean().sqrt()), color="gray", lw=0.8, label="RMS of x_orig")
ax.axvspan(min(window), max(window), color="orange", alpha=0.15, label="injection window")
ax.axvline(T_REFINE, color="k", ls=":", lw=1, label="first refinement pass")
ax.set_xlabel("starting timestep t"), ax.set_ylabel("latent RMSE(x_rec, x_orig)")
ax.legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.01, 1))
ax.set_title("sampling back from timestep t"), fig.tight_layout()
print("from inv.at(t):", [(t, round(e, 3)) for t, e in kept])
print("fresh noise   :", [(t, round(e, 3)) for t, e in fresh])

# %% [markdown]
# **What you should see:** the solid curve does not fall smoothly: from the top two timesteps it is far off (RMSE
# 0.593 at $t$ = 999, the white-background redraw above, and 1.28 at 949, above the RMS of $x_{orig}$, gray line);
# from 899 to 749 it is at about 0.12 (at 899 and 799 the figure above shows the background right and the ball
# missing), 0.104 at 699; then it drops to 0.034 at 649 and 0.027 at 599, and settles at a floor of 0.024–0.026
# from 549 down (at 499 the figure above shows the ball back). The dashed curve, from fresh noise, lies above the
# solid one at every $t$ but 949: the inverted latent keeps what fresh noise destroys. The first refinement pass
# starts at the upper edge of the 0.12 plateau; inside the shaded window DynVFX's source branch never samples back
# at all, it only reads the kept latent at each step.

# %% [markdown]
# ## Reconstruction error versus number of steps
#
# Each point inverts with `n` steps and samples back with `n` steps. Circles start from the fully inverted noise
# ($t = 999$), as a plain "invert, then regenerate" would; squares and triangles start from the kept latent at
# $t = 399$ (on every schedule here; the paper's last refinement passes start at 479 and 379), where the curve
# above has reached the source. Triangles invert on a 5× finer schedule (as the paper does, 250 steps for 50) but
# still sample with `n`.

# %%
from dynvfx.inversion import inversion_error_curve

START = 399
from_noise = inversion_error_curve(pipe, x_orig, CURVE_STEPS)
later = {fine: [(n, probes.reconstruction_error(pipe, ddim_invert(pipe, x_orig, "", n, n * fine, progress=False),
                                                START)) for n in CURVE_STEPS if n >= 5 and n * fine <= 100]
         for fine in (1, 5)}
fig, ax = plt.subplots(figsize=(8, 3.4))
ax.loglog(*zip(*from_noise), "o-", label="from t = 999")
ax.loglog(*zip(*later[1]), "s-", label=f"from t = {START}")
ax.loglog(*zip(*later[5]), "^--", label=f"from t = {START}, inversion on a 5x finer schedule")
ax.set_xticks(CURVE_STEPS, [str(n) for n in CURVE_STEPS]), ax.minorticks_off()
ax.set_xlabel("steps n"), ax.set_ylabel("latent RMSE(x_rec, x_orig)")
ax.legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.01, 1))
ax.set_title("DDIM inversion: reconstruction error"), fig.tight_layout()
for name, curve in (("from t = 999", from_noise), (f"from t = {START}", later[1]), ("5x finer", later[5])):
    print(f"{name:13}:", [(n, round(e, 3)) for n, e in curve])

# %% [markdown]
# **What you should see:** from $t = 999$ (circles) the error does not fall with `n`, it jumps about: 0.51 at 2
# steps, 1.26–1.28 at 5, 10 and 50 (above the RMS of $x_{orig}$, 0.749), 0.59 at 20 (the white-background redraw
# above); it never comes near the source: it measures which video the sampler redraws more than how accurate the
# inversion is. From $t = 399$ (squares) it falls steadily with `n`, from 0.044 at 5 steps to 0.020 at
# 50, and the finer inversion schedule (triangles, 5 to 20 steps) sits below at every `n` (0.032 at 5): the paper's
# reason to invert with 250 steps.

# %% [markdown]
# ## The noisy latents, decoded
#
# What does the source branch of DynVFX see at each step? Below, for a few of the kept timesteps: the inverted
# latent $x_t$ decoded as if it were clean, the model's clean estimate $\hat x_0$ from it (one model call, what
# the source branch's keys and values are computed on), and, for contrast, the source noised to the same level
# with fresh random noise, which is where SDEdit (and each refinement pass of DynVFX) starts.

# %%
indices = figures.pick_frames(len(inv.timesteps), 5)  # indices into the kept timesteps
views = probes.noisy_views(pipe, inv, indices)
frame = spec.num_frames // 2
rows = {name: torch.stack([video[frame] for video in by_t.values()]) for name, by_t in views.items()}
figures.video_grid(rows, frames=list(range(len(indices))), labels=[f"t = {t}" for t in views["inverted x_t"]],
                   title=f"frame {frame}, from noisy (left) to clean (right)");

# %% [markdown]
# **What you should see:** top: the inverted latents, decoded as if clean, stay colour noise with a grid-like
# pattern down to $t = 499$, show a hint of the ball at 299 and the ball at $t = 49$; middle: the model's
# $\hat x_0$ from them is a flat yellowish-gray frame at $t = 999$ (no $x_0$ term to read), a gray frame with no
# ball at 749 (only a faint bluish smudge near the middle), and the ball clearly from
# 499 on; bottom: fresh forward noise hides the picture until $t = 49$, where a noisy ball shows.

# %%
from dynvfx import widgets

widgets.timestep_viewer(views)

# %% [markdown]
# ## Exercises
#
# Each exercise has a cell for you to work in (fill in what `...` stands for; as it is, it runs and does
# nothing) and, below it, its solution, collapsed in Jupyter and in Colab (double-click to read it). The
# solutions run with the notebook and check themselves with an `assert`; their output is not stored, so you
# see it only when you run them.
#
# **1 · Implement an inversion step.** With `inversion_steps = NUM_STEPS` the first step of `ddim_invert` goes
# from the clean latent (treated as timestep 0) to the lowest kept timestep `inv.timesteps[-1]`, with $v$ predicted
# at $(x_{orig}, 0)$ and the empty prompt. Write that step with `dynvfx.sampling.predict_v` and the formulas above,
# and check that you get `inv.latents[-1]`.

# %%
# Your turn. TODO: v at (x_orig, t = 0) with the empty prompt, then x0_hat and eps_hat, re-mixed at my_t1.
# Helpers: dynvfx.pipeline.encode_text(pipe, [""]), rotary_embeddings(pipe, x_orig),
# dynvfx.sampling.predict_v(pipe, latents, prompt_embeds, timestep, rope); alphas[t] is alpha_bar_t.
my_t1 = int(inv.timesteps[-1])
my_v = ...
my_latent = ...  # then: torch.allclose(my_latent, inv.latents[-1], atol=1e-5)

# %% jupyter={"source_hidden": true} tags=["solution"]
#@title Solution to exercise 1 (double-click to show the code)
#@markdown Runs with the notebook and checks itself with an `assert`; run it to see its output.
from dynvfx.pipeline import encode_text, rotary_embeddings
from dynvfx.sampling import predict_v

empty, rope = encode_text(pipe, [""]), rotary_embeddings(pipe, x_orig)
t1, a0 = int(inv.timesteps[-1]), alphas[0]
v = predict_v(pipe, x_orig, empty, 0, rope).cpu()
x0_hat, eps_hat = a0.sqrt() * inv.x_orig - (1 - a0).sqrt() * v, (1 - a0).sqrt() * inv.x_orig + a0.sqrt() * v
mine = alphas[t1].sqrt() * x0_hat + (1 - alphas[t1]).sqrt() * eps_hat
assert torch.allclose(mine, inv.latents[-1], atol=1e-5), (mine - inv.latents[-1]).abs().max()
print(f"one inversion step 0 -> {t1} by hand = ddim_invert's kept latent at t = {t1}")

# %% [markdown]
# **2 · Zero terminal SNR, by hand.** Show that the fully inverted latent `inv.noise` (at $t = 999$) is exactly
# the model's noise estimate $\hat\epsilon$ at the step before, `inv.timesteps[1]`, with no $x_0$ part: compute
# $\hat\epsilon$ from `inv.latents[1]` and compare. What does that mean for anything that starts sampling at
# $t = 999$?

# %%
# Your turn. TODO: eps_hat from the kept latent inv.latents[1] at my_s1 (v from predict_v, as in exercise 1),
# compared with inv.noise; and alphas[999].
my_s1 = int(inv.timesteps[1])
my_eps_hat = ...

# %% jupyter={"source_hidden": true} tags=["solution"]
#@title Solution to exercise 2 (double-click to show the code)
#@markdown Runs with the notebook and checks itself with an `assert`; run it to see its output.
s1 = int(inv.timesteps[1])
v = predict_v(pipe, inv.latents[1], empty, s1, rope).cpu()
eps_hat = (1 - alphas[s1]).sqrt() * inv.latents[1] + alphas[s1].sqrt() * v
assert alphas[999] == 0 and torch.allclose(inv.noise, eps_hat, atol=1e-5)
print(f"inv.noise = eps_hat at t = {s1}: the sampler's first x0 estimate at t = 999 (= -v) sees no x0 term")

# %% [markdown]
# **3 · Predict, then run.** Take the middle kept timestep. Will sampling back from the kept latent there beat
# sampling back from $x_{orig}$ + fresh noise for every one of three noise seeds? Write down your guess, then
# measure it with `probes.reconstruction_error(..., noise="random", seed=...)`.

# %%
# Your turn. First your guess: True if the kept latent wins against all three seeds.
my_guess = ...
# TODO: probes.reconstruction_error(pipe, inv, my_t) and, per seed,
# probes.reconstruction_error(pipe, inv, my_t, noise="random", seed=seed).
my_t = int(inv.timesteps[NUM_STEPS // 2])
my_from_kept, my_with_fresh = ..., ...

# %% jupyter={"source_hidden": true} tags=["solution"]
#@title Solution to exercise 3 (double-click to show the code)
#@markdown Runs with the notebook and checks itself with an `assert`; run it to see its output.
t_mid = int(inv.timesteps[NUM_STEPS // 2])
from_kept = probes.reconstruction_error(pipe, inv, t_mid)
with_fresh = [probes.reconstruction_error(pipe, inv, t_mid, noise="random", seed=seed) for seed in range(3)]
print(f"t = {t_mid}: from inv.at(t) {from_kept:.3f}; from fresh noise {[round(e, 3) for e in with_fresh]}")
assert from_kept < min(with_fresh)  # the inverted latent keeps what fresh noise destroys

# %% [markdown]
# ## What to take away
#
# - `x_0`, `ε` and `v` are one rotation apart; a DDIM step re-mixes the first two at the next noise level.
# - With a zero-terminal-SNR schedule the fully inverted latent is the model's noise estimate alone: sampling back
#   from it regenerates the video rather than reconstructing it. Lower down the kept latents carry more and more
#   of the source (here, with the empty prompt, sampling back comes near the source only from $t \approx 650$
#   down: RMSE 0.034 at 649, against ≥ 0.10 above it), and from there the error falls with the step count; a
#   finer inversion schedule helps for free at sampling time, which is why the paper inverts with 250 steps.
# - DynVFX keeps `inv.latents[i]`, the source at every sampling timestep: in chapters 4 and 5 the source branch
#   runs on them (its keys and values describe the source at exactly the noise level of the edit), and the
#   refinement passes start from fresh noise at strength ≤ 0.92, so neither ever starts from $t = 999$.
