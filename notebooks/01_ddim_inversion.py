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
# - invert a video, with the inversion loop written out, and see how little of the source the noisy latents hold
#   at the top of CogVideoX's zero-terminal-SNR schedule (a plot of $\sqrt{\bar\alpha_t}$),
# - sample it back from inside the injection window, where DynVFX uses it, and measure what makes the round trip
#   succeed there: the prompt, the guidance, the step count,
# - measure the reconstruction error per starting timestep and against the number of steps (plots),
# - look at the noisy latents along the way, decoded,
# - do three exercises (a cell for you, then its solution, collapsed).
#
# **Run time.** 57 s on one CPU thread with the toy model (measured by `notebooks/build.py`).
# It samples with 20 steps (the curves go up to 50); on a GPU the toy chapter takes a few seconds. With a
# CogVideoX model the switch cell prints the estimated cost of an edit on your GPU (`notebook.print_cost`); the
# curves repeat the inversion from a few starting timesteps, so they take several times that. docs/gpu.md lists the
# measured times per GPU.

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
# (`notebook.REAL_VIDEO`, with a real model); any path works too, e.g. `"../../shared/data/videos/taxi.mp4"`.
# With the toy model, name a shipped toy-world clip, e.g. `"green_ball_left"` (found in `data/examples/` from any
# folder, Colab's too).
# `MODEL = "toy"` runs anywhere. On a GPU you may set `"THUDM/CogVideoX-2b"` or `"THUDM/CogVideoX-5b"`;
# `MEMORY = "auto"` picks the fastest of the library's memory modes that fits your GPU
# (`docs/gpu.md` lists each mode's peak and each GPU's time). With a real model the cell prints
# the estimated cost of a whole edit on this GPU (this chapter runs its inversion part, and repeats it for the
# curves). Without a GPU the cell falls back to the toy model.

# %%
VIDEO = None  # None: the toy example, or notebook.REAL_VIDEO with a real model; a shipped clip's name; or a path
MODEL = "toy"  # on a GPU: "THUDM/CogVideoX-2b" or "THUDM/CogVideoX-5b"
MEMORY = "auto"  # on a GPU: "auto" (the fastest mode that fits), "full", "lean" or "offload"; docs/gpu.md

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

pipe = notebook.load_model(MODEL, memory=MEMORY)
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
# The loop inside `ddim_invert`, written out: from the clean latent at $t = 0$ up the schedule, each step predicts
# $v$ at the level it knows, $s$, and re-mixes $\hat x_0$ and $\hat\epsilon$ at the next, noisier level $t$ (the
# DDIM update above, run upwards). It gives exactly the kept latents.

# %%
# NBVAL_CHECK_OUTPUT
from dynvfx.pipeline import encode_text, rotary_embeddings
from dynvfx.sampling import predict_v

empty, rope = encode_text(pipe, [""]), rotary_embeddings(pipe, x_orig)
x, s, mine = inv.x_orig, 0, []
for t in inv.timesteps.flip(0).tolist():  # upwards: from t = 0 to t = 999
    v = predict_v(pipe, x, empty, s, rope).cpu()  # v at the known level s stands in for v at (x_t, t)
    x0_hat = alphas[s].sqrt() * x - (1 - alphas[s]).sqrt() * v
    eps_hat = (1 - alphas[s]).sqrt() * x + alphas[s].sqrt() * v
    x, s = alphas[t].sqrt() * x0_hat + (1 - alphas[t]).sqrt() * eps_hat, t
    mine.insert(0, x)  # kept at every sampling timestep, the noisiest first
same = torch.allclose(torch.stack(mine), inv.latents, atol=1e-5)
print(f"the loop's {len(mine)} latents equal ddim_invert's: {same}")

# %% [markdown]
# ## How much of the source is left at each timestep
#
# In $x_t = \sqrt{\bar\alpha_t}\,x_0 + \sqrt{1-\bar\alpha_t}\,\epsilon$ the source's weight is $\sqrt{\bar\alpha_t}$.
# CogVideoX's schedule has *zero terminal SNR*: that weight is exactly 0 at $t = 999$. Shaded: the *injection
# window*, the timesteps at which DynVFX's source branch reads the kept latents (the authors' code: $t$ = 899 … 619
# of 50 steps).

# %%
import matplotlib.pyplot as plt

from dynvfx.config import DynVFXConfig
from dynvfx.sampling import injection_window

cfg = DynVFXConfig.for_model(MODEL)
window = injection_window(inv.timesteps, cfg.injection_max_timestep, cfg.injection_min_timestep)
fig, ax = plt.subplots(figsize=(8, 3))
ax.plot(alphas.sqrt(), label="sqrt(alpha_bar_t): weight of the source x_0")
ax.plot((1 - alphas).sqrt(), "--", label="sqrt(1 - alpha_bar_t): weight of the noise")
ax.axvspan(min(window), max(window), color="orange", alpha=0.15, label="injection window")
ax.set_xlabel("timestep t"), ax.legend(fontsize=7), ax.set_title("what x_t is made of"), fig.tight_layout()
print(f"{'t':>5} | sqrt(alpha_bar_t) | SNR = alpha_bar_t / (1 - alpha_bar_t)")
for t in (999, 949, max(window), min(window), 499):
    print(f"{t:5d} | {alphas[t].sqrt():17.3f} | {alphas[t] / (1 - alphas[t]):.4f}")

# %% [markdown]
# **What you should see:** the source's weight falls from 1 at $t = 0$ to exactly 0 at $t = 999$, and it is a few
# hundredths at the top of the injection window (the table). There the kept latent is almost all noise, so what
# sampling back makes of it depends on what the prompt tells the model.

# %% [markdown]
# ## Sample it back: what makes the round trip work inside the window
#
# Sampling back down the schedule should give the source again. Two things limit it: the inversion's
# approximation (each step uses $v$ from one step earlier) and the autoencoder, whose own round trip
# `decode(encode(frames))` is the best any latent method can do. Near the top of the schedule a third matters more,
# what the sampler is told. Below, from the kept latents at three timesteps (the inverted noise at 999, the top of
# the window where the first refinement pass also starts, and 799), four ways of sampling back: with the
# inversion's empty prompt, with the source's caption, with the caption and classifier-free guidance (the
# preset's scale), and with the empty prompt on a finer schedule (inverted and sampled with more steps).

# %%
from dynvfx.pipeline import decode_latents
from dynvfx.sampling import start_index

truth = notebook.toy_truth(VIDEO) if MODEL == "toy" else None
SOURCE_CAPTION = truth[0] if truth else "cars drive along a city street"  # a real clip: describe yours
T_REFINE = int(inv.timesteps[start_index(NUM_STEPS, 0.92)])  # where the first refinement pass starts
STARTS, MORE_STEPS = (999, T_REFINE, 799), 50 if MODEL == "toy" else 2 * NUM_STEPS
inv_more = ddim_invert(pipe, x_orig, "", MORE_STEPS, MORE_STEPS, progress=False)
WAYS = {"empty prompt": (inv, "", 1.0), "source caption": (inv, SOURCE_CAPTION, 1.0),
        f"source caption, guidance {cfg.guidance_scale}": (inv, SOURCE_CAPTION, cfg.guidance_scale),
        f"empty prompt, {MORE_STEPS} steps": (inv_more, "", 1.0)}
back = {(way, t): probes.reconstruct_from(pipe, i, t, prompt=p, guidance=g)
        for way, (i, p, g) in WAYS.items() for t in STARTS}
rmse = {key: (x_rec - inv.x_orig).pow(2).mean().sqrt().item() for key, x_rec in back.items()}
print(f"latent RMSE(x_rec, x_orig), sampled back from the kept latent at t (RMS of x_orig: "
      f"{inv.x_orig.pow(2).mean().sqrt():.3f}); source caption: {SOURCE_CAPTION!r}")
print(f"{'sampled back with':32}" + "".join(f" | t = {t:3d}" for t in STARTS))
for way in WAYS:
    print(f"{way:32}" + "".join(f" | {rmse[way, t]:7.3f}" for t in STARTS))
rows = {"source": frames, "decode(x_orig)": decode_latents(pipe, x_orig)}
rows |= {f"from t = {T_REFINE},\n{way}": decode_latents(pipe, back[way, T_REFINE]) for way in WAYS}
figures.video_grid(rows, title=f"sampling back from the kept latent at t = {T_REFINE}");

# %% [markdown]
# **What you should see:** sampled back with the empty prompt, the video loses its ball from inside the window and
# is redrawn from $t = 999$ (the table); with the source caption and no guidance the ball comes back from every
# starting point, as blurred as the autoencoder makes it. Guidance pulls the result away from the source (a larger
# error than without it), and more steps lower the empty prompt's error from $t = 899$ down, but not from 999.
#
# Why the prompt decides: at the top of the schedule the latent holds little or none of $x_0$ (the plot above), so
# the model's first clean estimate from it is mostly what the prompt asks for, and the empty prompt asks for any
# video. Yet the kept latent is no random noise: it is the model's own noise estimate for this video (exercise 2),
# so with the caption that describes the video the sampler retraces the inversion back to it. That is the setting
# of DynVFX's source branch: the kept latent `inv.at(t)` with the source caption and no guidance, at every step of
# the injection window; the refinement passes, which sample with $P_{comp}$ and guidance, start from
# $x_{orig} + x_{res}$ noised with fresh noise instead.

# %%
figures.show_videos({name.replace("\n", " "): video for name, video in rows.items()})

# %% [markdown]
# ## Reconstruction error per starting timestep
#
# For every kept timestep $t$: sample back from the kept latent `inv.at(t)` with the empty prompt (circles) and
# with the source caption (diamonds), and, for contrast, from $x_{orig}$ noised to $t$ with fresh Gaussian noise,
# where SDEdit starts (dashed, empty prompt). The error is measured on the latents, so the autoencoder plays no
# part. Shaded: the injection window; dotted: where the first refinement pass starts.

# %%
starts = None if MODEL == "toy" else inv.timesteps[::10].tolist()  # a real model: 5 starting points, not 50
kept = probes.reconstruction_errors(pipe, inv, starts=starts)
kept_caption = probes.reconstruction_errors(pipe, inv, starts=starts, prompt=SOURCE_CAPTION)
fresh = probes.reconstruction_errors(pipe, inv, noise="random", starts=starts)
fig, ax = plt.subplots(figsize=(8, 3.4))
ax.semilogy(*zip(*kept), "o-", label="from the kept latent inv.at(t), empty prompt")
ax.semilogy(*zip(*kept_caption), "D-", label="from the kept latent, source caption")
ax.semilogy(*zip(*fresh), "s--", label="from x_orig + fresh noise (SDEdit)")
ax.axhline(float(inv.x_orig.pow(2).mean().sqrt()), color="gray", lw=0.8, label="RMS of x_orig")
ax.axvspan(min(window), max(window), color="orange", alpha=0.15, label="injection window")
ax.axvline(T_REFINE, color="k", ls=":", lw=1, label="first refinement pass")
ax.set_xlabel("starting timestep t"), ax.set_ylabel("latent RMSE(x_rec, x_orig)")
ax.legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.01, 1))
ax.set_title("sampling back from timestep t"), fig.tight_layout()
print(f"{'t':>5} | inv.at(t), empty prompt | inv.at(t), source caption | fresh noise, empty prompt")
for (t, e), (_, c), (_, f) in zip(kept, kept_caption, fresh):
    print(f"{t:5d} | {e:23.3f} | {c:25.3f} | {f:25.3f}")

# %%
if MODEL == "toy":  # what the empty prompt draws from the top of the schedule (the toy world's colour analysis)
    from dynvfx.toy import perception

    for t in inv.timesteps[:3].tolist():
        video = decode_latents(pipe, probes.reconstruct_from(pipe, inv, t))
        balls = ", ".join(f"a {o.colour} ball moving {o.motion}" for o in perception.detect_objects(video))
        print(f"from t = {t}, empty prompt: {balls or 'no ball'} on {perception.background_colour(video)}")

# %% [markdown]
# **What you should see:** with the empty prompt (circles) sampling back is far off from the top of the schedule
# through most of the injection window, and reaches the source only from the window's lower edge down; with the
# source caption (diamonds) it is close to the source from every $t$ (the table). From the top of the schedule the
# empty prompt lets the model draw another video (the lines under the table): from $t = 949$ one on a black
# background, whose latents are farther from the gray source's than zero is, hence the error above the RMS line.
# Fresh noise (dashed) does worse than the kept latent wherever the kept latent brings the source back.

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
# **What you should see:** from $t = 999$ with the empty prompt (circles) the error does not fall with `n`: it
# measures which video the sampler redraws more than how accurate the inversion is. From $t = 399$ (squares) it
# falls steadily with `n`, and the finer inversion schedule (triangles) sits below it at every `n` where both are measured: the paper's
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
# **What you should see:** top, the inverted latents decoded as if clean stay colour noise down to $t = 499$, with
# a faint ball at 299 and a clear one at 49. Middle, the model's $\hat x_0$ from them (with the empty prompt) is a
# flat frame at $t = 999$, a faint smudge where the ball is at 749, and the ball from 499 on; bottom, fresh forward
# noise hides the picture until the lowest $t$.

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
# **1 · Invert with the caption too (predict, then run).** DynVFX inverts with the empty prompt (the paper's
# choice) and samples the source branch with the source caption. Predict: if the inversion also uses the source
# caption, how close does sampling back from $t = 999$ with the caption come to the best the round trip does,
# sampling back from $t = 499$? Measure it with `ddim_invert(..., prompt=SOURCE_CAPTION, ...)` and
# `probes.reconstruction_error`, and compare with the caption used in the sampling only.

# %%
# Your turn. First your prediction: the latent RMSE from t = 999 with the caption in the inversion and the sampling.
my_prediction = ...
# TODO: ddim_invert(pipe, x_orig, prompt, NUM_STEPS, NUM_STEPS, progress=False) with the source caption, then
# probes.reconstruction_error(pipe, that_inversion, 999) (it samples with the inversion's prompt); compare with
# probes.reconstruction_error(pipe, inv, 999, prompt=SOURCE_CAPTION) and probes.reconstruction_error(pipe, inv, 499).
my_inversion = ...

# %% jupyter={"source_hidden": true} tags=["solution"]
#@title Solution to exercise 1 (double-click to show the code)
#@markdown Runs with the notebook and checks itself with an `assert`; run it to see its output.
inv_caption = ddim_invert(pipe, x_orig, SOURCE_CAPTION, NUM_STEPS, NUM_STEPS, progress=False)
both = probes.reconstruction_error(pipe, inv_caption, 999)  # sampled back with the inversion's prompt, the caption
sampling_only = probes.reconstruction_error(pipe, inv, 999, prompt=SOURCE_CAPTION)
best = probes.reconstruction_error(pipe, inv, 499)
print(f"from t = 999: caption in inversion and sampling {both:.3f}, in the sampling only {sampling_only:.3f}; "
      f"empty prompt from t = 499: {best:.3f}")
assert both < sampling_only  # one prompt both ways: the sampler retraces the inversion more closely

# %% [markdown]
# **2 · Zero terminal SNR, by hand.** Show that the fully inverted latent `inv.noise` (at $t = 999$) is exactly
# the model's noise estimate $\hat\epsilon$ at the step before, `inv.timesteps[1]`, with no $x_0$ part: compute
# $\hat\epsilon$ from `inv.latents[1]` and compare. What does that mean for anything that starts sampling at
# $t = 999$?

# %%
# Your turn. TODO: eps_hat from the kept latent inv.latents[1] at my_s1 (v from predict_v, as in the loop above),
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
# **3 · Predict, then run.** The table above compares the kept latent with fresh noise for the empty prompt. Take
# the middle kept timestep and the *source caption*: will sampling back from the kept latent there beat sampling
# back from $x_{orig}$ + fresh noise for every one of three noise seeds? Write down your guess, then measure it
# with `probes.reconstruction_error(..., prompt=SOURCE_CAPTION, noise="random", seed=...)`.

# %%
# Your turn. First your guess: True if the kept latent wins against all three seeds.
my_guess = ...
# TODO: probes.reconstruction_error(pipe, inv, my_t, prompt=SOURCE_CAPTION) and, per seed,
# probes.reconstruction_error(pipe, inv, my_t, prompt=SOURCE_CAPTION, noise="random", seed=seed).
my_t = int(inv.timesteps[NUM_STEPS // 2])
my_from_kept, my_with_fresh = ..., ...

# %% jupyter={"source_hidden": true} tags=["solution"]
#@title Solution to exercise 3 (double-click to show the code)
#@markdown Runs with the notebook and checks itself with an `assert`; run it to see its output.
t_mid = int(inv.timesteps[NUM_STEPS // 2])
from_kept = probes.reconstruction_error(pipe, inv, t_mid, prompt=SOURCE_CAPTION)
with_fresh = [probes.reconstruction_error(pipe, inv, t_mid, prompt=SOURCE_CAPTION, noise="random", seed=seed)
              for seed in range(3)]
print(f"t = {t_mid}: from inv.at(t) {from_kept:.3f}; from fresh noise {[round(e, 3) for e in with_fresh]}")
assert from_kept < min(with_fresh)  # the inverted latent keeps what fresh noise destroys

# %% [markdown]
# ## What to take away
#
# - `x_0`, `ε` and `v` are one rotation apart; a DDIM step re-mixes the first two at the next noise level.
# - With a zero-terminal-SNR schedule the latents at the top of the schedule hold little or none of the source, so
#   what comes back from there is decided by the prompt: with the empty prompt the sampler loses the ball or
#   redraws the scene, with the source caption and no guidance the kept latent leads back to the source, from
#   inside the injection window and even from $t = 999$.
# - Lower down the error falls with the step count, and a finer inversion schedule helps for free at sampling
#   time, which is why the paper inverts with 250 steps.
# - DynVFX keeps `inv.latents[i]`, the source at every sampling timestep: inside the injection window its source
#   branch runs on them with the source caption and no guidance, the setting that brings the source back here, so
#   its keys and values describe the source at exactly the noise level of the edit (chapters 4 and 5).
