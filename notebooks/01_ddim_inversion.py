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
# # 1 · DDIM inversion with a v-prediction model
#
# [![Open In Colab](https://colab.research.google.com/assets/colab-badge.svg)](https://colab.research.google.com/github/dynvfx-course/dynvfx/blob/main/notebooks/01_ddim_inversion.ipynb)
#
# **What you will learn.** DynVFX never edits pixels directly: it runs the source video through the diffusion
# model *beside* the edit, at the same noise level, so the edit can read the source's keys and values. For that it
# needs the source at every timestep of the sampler, which DDIM inversion provides. You will
#
# - derive the v-prediction formulas CogVideoX uses and check them numerically,
# - invert a video and sample it back,
# - measure how the reconstruction error falls with the number of steps (plot),
# - look at the noisy latents along the way, decoded.
#
# **Run time.** About 30 s on a 2-core CPU with the toy model (20 sampling steps; the error curve goes up to 50);
# a few seconds on a GPU with the toy model. With CogVideoX-5B on an A100 one 50-step inversion plus reconstruction
# takes a few minutes, and the error curve, which repeats them, about 15 min (estimates).

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
# `"THUDM/CogVideoX-5b"` (≈ 20.7 GB); `CPU_OFFLOAD = True` needs much less GPU memory but is slower. This chapter
# runs the model alone (no source branch), so those figures apply as they are. Without a GPU the cell falls back to
# the toy model.

# %%
MODEL = "toy"  # on a GPU: "THUDM/CogVideoX-2b" or "THUDM/CogVideoX-5b"
CPU_OFFLOAD = False  # True for GPUs with less than ~24 GB

from dynvfx import figures, notebook, probes

notebook.setup_notebook()
MODEL, _, _ = notebook.resolve_choices(MODEL)
NUM_STEPS = 20 if MODEL == "toy" else 50  # sampling steps (the paper: 50)
CURVE_STEPS = (2, 5, 10, 20, 50) if MODEL == "toy" else (5, 10, 25)  # for the error curve

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
# $\hat\epsilon$, the model's own estimate of the noise in the video.

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
frames, _ = notebook.source_video(pipe, MODEL)

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
from dynvfx.inversion import ddim_invert, reconstruct

x_orig = encode_video(pipe, frames)
inv = ddim_invert(pipe, x_orig, prompt="", num_steps=NUM_STEPS, inversion_steps=NUM_STEPS, progress=False)

# %%
# NBVAL_CHECK_OUTPUT
print(f"frames {tuple(frames.shape)} -> x_orig {tuple(x_orig.shape)}  ([1, F', C, h, w])")
print(f"kept latents {tuple(inv.latents.shape)} ([T, 1, F', C, h, w]) at timesteps {inv.timesteps[:3].tolist()} "
      f"... {inv.timesteps[-1].item()}")

# %% [markdown]
# Sampling back from the inverted noise with the same (empty) prompt and no guidance should give the source
# again. Two things limit it: the inversion error above, and the autoencoder, whose own round trip
# `decode(encode(frames))` is the best any latent method can do.

# %%
from dynvfx.pipeline import decode_latents

x_rec, frames_rec, rmse = reconstruct(pipe, inv, progress=False)
frames_vae = decode_latents(pipe, x_orig)
noise = inv.noise.flatten()
corr = torch.corrcoef(torch.stack([noise, x_orig.flatten()]))[0, 1].item()
print(f"latent RMSE(x_rec, x_orig) = {rmse:.3f}  (RMS of x_orig itself: {x_orig.pow(2).mean().sqrt():.3f})")
print(f"inverted noise: mean {noise.mean():.3f}, std {noise.std():.3f}, correlation with x_orig {corr:.3f}")
figures.video_grid({"source": frames, "decode(x_orig)": frames_vae, "from inverted noise": frames_rec});

# %%
figures.show_videos({"source": frames, "autoencoder only": frames_vae, "reconstruction": frames_rec})

# %% [markdown]
# ## Reconstruction error versus number of steps
#
# Each point inverts with `n` steps and samples back with `n` steps. The second curve inverts on a 5× finer
# schedule (as the paper does, 250 for 50) but still samples with `n`. The error is measured on the latents,
# so the autoencoder plays no part. With a well-trained model both curves fall steadily as `n` grows and the
# finer schedule sits below; a half-trained toy model can be erratic, since its predictions of `v` at neighbouring
# timesteps do not yet agree.

# %%
import matplotlib.pyplot as plt

from dynvfx.inversion import inversion_error_curve

same = inversion_error_curve(pipe, x_orig, CURVE_STEPS)
fine = inversion_error_curve(pipe, x_orig, [n for n in CURVE_STEPS if n <= 20], fine=5)
fig, ax = plt.subplots(figsize=(5, 3.4))
ax.loglog(*zip(*same), "o-", label="inversion steps = sampling steps")
ax.loglog(*zip(*fine), "s--", label="inversion on a 5x finer schedule")
ax.set_xticks(CURVE_STEPS, [str(n) for n in CURVE_STEPS]), ax.minorticks_off()
ax.set_xlabel("sampling steps n"), ax.set_ylabel("latent RMSE(x_rec, x_orig)"), ax.legend(fontsize=8)
ax.set_title("DDIM inversion: reconstruction error"), fig.tight_layout()
print("same schedule:", [(n, round(e, 3)) for n, e in same])
print("5x finer     :", [(n, round(e, 3)) for n, e in fine])

# %% [markdown]
# ## The noisy latents, decoded
#
# What does the source branch of DynVFX see at each step? Below, for a few of the kept timesteps: the inverted
# latent $x_t$ decoded as if it were clean, the model's clean estimate $\hat x_0$ from it, and — for contrast — the
# source noised to the same level with fresh random noise, which is where SDEdit (and each refinement pass of
# DynVFX) starts. The inverted latent carries more of the source at high noise than random noise does, and
# $\hat x_0$ shows how early the model "knows" the video.

# %%
indices = figures.pick_frames(len(inv.timesteps), 5)  # indices into the kept timesteps
views = probes.noisy_views(pipe, inv, indices)
frame = spec.num_frames // 2
rows = {name: torch.stack([video[frame] for video in by_t.values()]) for name, by_t in views.items()}
figures.video_grid(rows, frames=list(range(len(indices))), labels=[f"t = {t}" for t in views["inverted x_t"]],
                   title=f"frame {frame}, from noisy (left) to clean (right)");

# %%
from dynvfx import widgets

widgets.timestep_viewer(views)

# %% [markdown]
# ## What to take away
#
# - `x_0`, `ε` and `v` are one rotation apart; a DDIM step re-mixes the first two at the next noise level.
# - Inversion is approximate: its error falls with the step count, and a finer inversion schedule helps for free
#   at sampling time, which is why the paper inverts with 250 steps.
# - DynVFX keeps `inv.latents[i]`, the source at every sampling timestep: in chapters 4 and 5 the source branch
#   runs on them, so its keys and values describe the source at exactly the noise level of the edit.
