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
# # 3 · The VFX assistant: planning the edit with a VLM
#
# [![Open In Colab](https://colab.research.google.com/assets/colab-badge.svg)](https://colab.research.google.com/github/dynvfx-course/dynvfx/blob/main/notebooks/03_vlm_planning.ipynb)
#
# **What you will learn.** A user writes "add a puppy running across the lawn". The diffusion model needs more:
# a caption of the *whole* edited video, and the names of the objects to segment. DynVFX asks a vision-language
# model (VLM), acting as a "VFX assistant", to produce them from a few key frames. You will see
#
# - the two questions it is asked and the word limits that keep its answers inside the text encoder's window,
# - the plan schema that the rest of the method consumes (and that you can review and edit by hand),
# - the offline, rule-based toy planner, and the chat protocol run against a scripted stand-in VLM, including how
#   a malformed reply is answered,
# - optional cells for an OpenAI-compatible endpoint and for a local Hugging Face VLM, skipped automatically
#   (with the reason printed) when there is no API key or no GPU.
#
# **Run time.** About 10 s on a CPU (no diffusion model is loaded). The optional cells: a few seconds to a
# minute per plan over an API; with the default local VLM (Qwen2.5-VL-3B, ~7.5 GB in float16) about a minute per
# plan on a free Colab T4 GPU, the first run also downloading the weights.

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
# ## Choose the video and the planners
#
# Planning loads no diffusion model, but `MODEL` still decides which video we plan for: a toy example for the toy
# model (whose closed vocabulary the toy planner writes in), a real clip for CogVideoX (which needs a GPU: ≈ 12.5 GB
# for 2B, ≈ 20.7 GB for 5B at inference, more for DynVFX's source branch). The optional cells use `OPENAI_MODEL`
# (any vision model behind an OpenAI-compatible endpoint) and `HF_MODEL` (a local transformers VLM).

# %%
MODEL = "toy"  # on a GPU: "THUDM/CogVideoX-2b" or "THUDM/CogVideoX-5b" (plans for a real clip)
OPENAI_MODEL = None  # None = $DYNVFX_OPENAI_MODEL or "gpt-4o"; set OPENAI_BASE_URL for a local server
HF_MODEL = None  # None = $DYNVFX_HF_MODEL or "Qwen/Qwen2.5-VL-3B-Instruct"

from dynvfx import figures, notebook
from dynvfx.planning import demo

notebook.setup_notebook()
MODEL, _, _ = notebook.resolve_choices(MODEL)

# %%
from dynvfx.toy.examples import EXAMPLES, example_frames
from dynvfx.video import load_video

if MODEL != "toy" and notebook.REAL_VIDEO.exists():  # or load your own clip here
    frames, instruction = load_video(notebook.REAL_VIDEO)[0], notebook.REAL_INSTRUCTION
else:
    frames, instruction = example_frames("two_objects"), EXAMPLES["two_objects"][3]
print(f"{tuple(frames.shape)} frames; instruction: {instruction!r}")

# %% [markdown]
# ## What the assistant is asked
#
# The VLM sees a few key frames (first, middle and last by default) and answers two questions in one chat:
#
# - **(a)** caption the video as it is, talk the edit through with an imagined VFX artist (where the new content
#   appears, how big, how it moves, how it meets the scene), then write the **composited caption** `P_comp`;
# - **(b)** name the prominent source objects `O_orig` and the new objects `O_edit`, as short noun phrases a
#   text-prompted segmenter can find.
#
# Each answer must be one JSON object. CogVideoX's T5 encoder reads at most 226 tokens, hence the word limits.

# %%
from dynvfx.planning import prompts, select_keyframes

keyframes = select_keyframes(len(frames))
print("SYSTEM:", prompts.SYSTEM_PROMPT, "\n")
print("QUESTION (a):", prompts.scene_question(instruction, keyframes, len(frames)), "\n")
print("QUESTION (b):", prompts.objects_question())

# %%
# NBVAL_CHECK_OUTPUT
from dynvfx.planning import MAX_CAPTION_WORDS, MAX_OBJECT_WORDS

print(f"key frames shown: {keyframes} of {len(frames)}")
print(f"word limits: captions {MAX_CAPTION_WORDS}, object phrases {MAX_OBJECT_WORDS}, "
      f"conversation {prompts.MIN_TURNS}-{prompts.MAX_TURNS} turns of at most {prompts.MAX_TURN_WORDS} words, "
      f"1-{prompts.MAX_OBJECTS} objects per list")

# %%
from dynvfx.planning import frames_to_images

images = frames_to_images(frames, keyframes, max_side=256)
figures.video_grid({"key frames": frames[keyframes]}, frames=list(range(len(keyframes))),
                   labels=[f"frame {k}" for k in keyframes], size=2.0);

# %% [markdown]
# ## The plan schema
#
# Whatever the planner, the method receives a `VFXPlan`. It is plain JSON: save it, read it, correct it, and run
# the edit from it (`dynvfx edit --mode execute --plan plan.json`). The method itself uses three fields:
# `composited_caption` (the prompt of every refinement pass), `objects_orig` (segmented once in the source; their
# tokens become dense anchors) and `objects_edit` (segmented in every pass to mask the residual).

# %%
# NBVAL_CHECK_OUTPUT
from dynvfx.planning import VFXPlan

schema = VFXPlan.model_json_schema()
for name, field in schema["properties"].items():
    required = "required" if name in schema["required"] else "optional"
    print(f"{name:19} {field.get('type', '?'):7} {required:9} {field.get('description', '')}")

# %% [markdown]
# ## The toy planner (offline)
#
# For the toy world a rule-based planner stands in for the VLM: it finds the background, the objects and their
# motions with colour analysis, reads the instruction word by word, and writes captions in the toy
# model's own grammar. Its plan records a short "conversation" explaining itself.

# %%
# NBVAL_CHECK_OUTPUT
from dynvfx.planning import PlanningError, plan_edit

if MODEL == "toy":
    plan = plan_edit(frames, instruction, backend="toy")
    print(plan.model_dump_json(indent=2))

# %% [markdown]
# The same planner on every shipped example, and an instruction it cannot follow (it can only *add* objects):

# %%
# NBVAL_CHECK_OUTPUT
for name, (_, _, _, example_instruction) in EXAMPLES.items():
    p = plan_edit(example_frames(name), example_instruction, backend="toy")
    print(f"{name}: {example_instruction!r}\n  P_comp: {p.composited_caption}\n"
          f"  O_orig: {p.objects_orig}  O_edit: {p.objects_edit}")
try:
    plan_edit(example_frames("blue_ball_down"), "remove the blue ball", backend="toy")
except PlanningError as err:
    print("refused:", err)

# %% [markdown]
# ## The chat protocol, against a scripted VLM
#
# Real backends only differ in how they send a chat and get text back: each is a function
# `ask(messages, reply_model) -> str`. `run_dialogue` drives the two questions, digs the JSON out of each reply
# (models like to wrap it in prose or code fences), validates it, and answers an unusable reply with what was
# wrong. Here a scripted stand-in answers: first with a caption that is far too long, then properly.

# %%
# NBVAL_CHECK_OUTPUT
import json

from dynvfx.planning.dialogue import run_dialogue

too_long = " ".join(["very"] * 130) + " long caption"
scene = {"source_caption": "a red ball and a green ball move on black",
         "conversation": [{"speaker": "assistant", "text": "A yellow ball rises from the bottom edge."},
                          {"speaker": "artist", "text": "Keep it small and clear of the green ball."}],
         "composited_caption": "a yellow ball moves up beside a red ball and a green ball on black"}
chat = demo.ScriptedChat([
    "Sure! " + json.dumps(scene | {"composited_caption": too_long}),  # rejected: over the word limit
    "```json\n" + json.dumps(scene) + "\n```",  # accepted: the JSON is found inside the code fence
    json.dumps({"objects_orig": ["red ball", "green ball"], "objects_edit": ["yellow ball"]}),
])
scripted = run_dialogue(chat, images, "add a yellow ball moving up", keyframes, len(frames))
print(f"the stand-in was asked {len(chat.sent)} times; the plan:")
print(scripted.model_dump_json(indent=2, include={"composited_caption", "objects_orig", "objects_edit"}))

# %% [markdown]
# The second request, as the model received it (the refused answer and the correction request are part of it):

# %%
print(demo.transcript(chat.sent[1]))

# %% [markdown]
# ## Optional: an OpenAI-compatible VLM
#
# Set `OPENAI_API_KEY` (and `OPENAI_BASE_URL` for a local server such as vLLM, Ollama or LM Studio). Plans are
# cached on disk by (frames, instruction, model), so re-running this cell costs nothing. Skipped without a key.

# %%
import os

if os.environ.get("OPENAI_API_KEY"):
    vlm_plan = demo.try_plan(frames, instruction, "openai", OPENAI_MODEL)
else:
    print("skipped: no OPENAI_API_KEY in the environment (set it, and OPENAI_BASE_URL for a local server)")

# %% [markdown]
# ## Optional: a local Hugging Face VLM
#
# Runs a transformers vision-language model on this machine: by default Qwen2.5-VL-3B-Instruct, ~7.5 GB in
# float16, which fits a free Colab T4. Skipped without a GPU (on a CPU it would need ~15 GB of RAM and minutes per
# plan; set `RUN_HF_ON_CPU = True` to try anyway).

# %%
import torch

RUN_HF_ON_CPU = False
if torch.cuda.is_available() or RUN_HF_ON_CPU:
    hf_plan = demo.try_plan(frames, instruction, "hf", HF_MODEL)
else:
    print("skipped: no GPU (a local VLM of ~3-4 B parameters wants ~8 GB of GPU memory)")

# %% [markdown]
# ## Optional: a real clip
#
# What a VLM would see for a real video (if the course's shared clips are present): its key frames, shrunk to
# the size sent to the model. Plug `real_frames` into the two cells above to plan an edit for it.

# %%
if notebook.REAL_VIDEO.exists():
    real_frames = load_video(notebook.REAL_VIDEO)[0]
    real_keys = select_keyframes(len(real_frames))
    figures.video_grid({"key frames": real_frames[real_keys]}, frames=list(range(len(real_keys))),
                       labels=[f"frame {k}" for k in real_keys], size=2.4)
    print(f"{notebook.REAL_VIDEO.name}: {tuple(real_frames.shape)}; e.g. {notebook.REAL_INSTRUCTION!r}")
else:
    print(f"skipped: {notebook.REAL_VIDEO} is not here (it ships beside the repository, not with it)")

# %% [markdown]
# ## Review and edit a plan by hand
#
# Plans are meant to be read before the expensive part runs. Change what you disagree with and save it.

# %%
# NBVAL_CHECK_OUTPUT
import tempfile
from pathlib import Path

reviewed = scripted.model_copy(update={"objects_orig": ["red ball", "green ball", "black background"]})
with tempfile.TemporaryDirectory() as folder:
    path = reviewed.save(Path(folder) / "plan.json")
    print("round trip equal:", VFXPlan.load(path) == reviewed, "| O_orig now:", VFXPlan.load(path).objects_orig)

# %% [markdown]
# ## What to take away
#
# - The VLM turns a short instruction into a full caption of the edited scene plus the object names the method
#   needs; the conversation step makes it think about placement, size, motion and interaction first.
# - Everything downstream is driven by a small, reviewable JSON plan.
# - Next, chapter 4 uses `O_orig` to choose the anchors.
