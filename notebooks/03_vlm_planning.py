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
# # 3 · The VFX assistant: planning the edit with a VLM
#
# [![Open In Colab](https://colab.research.google.com/assets/colab-badge.svg)](https://colab.research.google.com/github/dynvfx-course/dynvfx/blob/main/notebooks/03_vlm_planning.ipynb)
#
# **What you will learn.** A user writes "add a puppy running across the lawn". The diffusion model needs more:
# a caption of the *whole* edited video, and the names of the objects to segment. DynVFX asks a vision-language
# model (VLM), acting as a "VFX assistant", to produce them from a few key frames (the first stage of the paper's
# method overview, Fig. 2). You will see
#
# - what the plan does to an edit: the same toy edits with the planner's caption, with the raw instruction and with
#   the new ball alone in the model's own words,
# - the two questions it is asked and the word limits that keep its answers inside the text encoder's window,
# - the plan schema that the rest of the method consumes (and that you can review and edit by hand),
# - the offline, rule-based toy planner, and the chat protocol run against a scripted stand-in VLM, including how
#   a malformed reply is answered,
# - optional cells for an OpenAI-compatible endpoint and for a local Hugging Face VLM, skipped automatically
#   (with the reason printed) when there is no API key or no GPU,
# - and three exercises (predict the toy planner's plan, a VLM that needs correcting, a check that the plan's
#   objects can be found).
#
# **Run time.** 1 min 9 s on one CPU thread with the toy model (measured by `notebooks/build.py`).
# Only the first section runs a diffusion model (the toy one: twelve short edits). The optional cells: a few seconds to a minute per plan over an API; with the
# default local VLM (Qwen2.5-VL-3B, ~7.5 GB in float16) about a minute per plan on a free Colab T4 GPU, the first run
# also downloading the weights.

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
# ## Choose the video, the model and the planners
#
# Planning itself needs no diffusion model, but `MODEL` decides which video we plan for when `VIDEO = None`: a toy
# example for the toy model (whose closed vocabulary the toy planner writes in), the course's taxi clip for
# CogVideoX (which needs a GPU; `docs/gpu.md` says which GPU runs which model).
# `VIDEO` may name a shipped toy clip, e.g. `"green_ball_left"` (one the toy planner can read; found from any folder,
# Colab's too), or be any path, e.g. `"../../shared/data/videos/taxi.mp4"` (for a real VLM). The optional cells use `OPENAI_MODEL` (any vision model
# behind an OpenAI-compatible endpoint) and `HF_MODEL` (a local transformers VLM).

# %%
VIDEO = None  # None: the toy example (toy model) or the taxi clip (CogVideoX); a shipped clip's name; or a path
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

# the clip as it is (planning needs no model, so nothing is resized) and its instruction
frames, instruction = notebook.source_video(None, MODEL, example="green_ball_left", video=VIDEO)
print(f"{tuple(frames.shape)} frames; instruction: {instruction!r}")
notebook.print_cost(MODEL)  # with CogVideoX: what the edit of this plan will cost (chapters 4 and 5)

# %% [markdown]
# ## The plan at work: the same edit with and without it
#
# First what the plan is for. Below, pairs of the toy edit benchmark (`dynvfx.lab.edit_bench.make_pairs`: a
# one-ball source, a new ball to add) with the instruction reworded as a user might write it, "add a yellow
# sphere rising": the wording is **chosen**, with words the toy model never saw in a caption. Each pair is edited
# three times with the toy model, the same `O_orig` and `O_edit`, and three prompts: the planner's `P_comp`, the
# raw instruction, and the new ball alone in the model's own words ("a yellow ball moves up"), which shows what
# `P_comp`'s description of the source adds. The benchmark's strict judge says whether the output shows the source ball as before plus the new
# ball moving as asked. (The toy model whatever `MODEL` is, with 20 steps and the classroom preset's three
# refinement passes, to keep this near a minute; `N_PAIRS` sets how many pairs.)

# %%
import tempfile
import warnings

from dynvfx.config import DynVFXConfig
from dynvfx.edit import edit_variant
from dynvfx.lab import edit_bench
from dynvfx.planning import plan_edit
from dynvfx.segmentation import get_segmenter
from dynvfx.toy import world
from dynvfx.toy.examples import scene_frames

N_PAIRS = 4  # benchmark pairs, each edited three times (about 4 s per edit on one CPU thread)
USER_WORDS = {"up": "rising", "down": "falling", "left": "rolling leftwards", "right": "rolling rightwards",
              "bounce": "bouncing"}  # how the instruction names each motion: no toy caption has these words
toy_pipe, toy_seg = notebook.load_model("toy"), get_segmenter("toy")
toy_config = DynVFXConfig.toy().replace(num_inference_steps=20, inversion_steps=20,
                                        strengths=DynVFXConfig.classroom().strengths)
edits = []  # per pair: (source, plan, {prompt: (output, scores)})
with tempfile.TemporaryDirectory() as cache, warnings.catch_warnings():
    warnings.simplefilter("ignore")  # "O_edit was never found": the table below shows it
    for scene, new, _ in edit_bench.make_pairs(N_PAIRS):
        source, user_instruction = scene_frames(scene), f"add a {new[0]} sphere {USER_WORDS[new[2]]}"
        plan = plan_edit(source, user_instruction, backend="toy")
        own_words = f"a {new[0]} ball {world.motion_phrase(new[2])}"  # the new ball alone, in caption words
        runs = {}
        for prompt, caption in (("P_comp", plan.composited_caption), ("raw instruction", user_instruction),
                                ("own words", own_words)):
            out = edit_variant(toy_pipe, source, plan.model_copy(update={"composited_caption": caption}), toy_seg,
                               toy_config, {}, cache)
            runs[prompt] = out, edit_bench.evaluate(out.frames, source, scene, new, out.mask, toy_seg,
                                                    coverage=out.coverage)
        edits.append((source, plan, runs))

# %%
print(f"{'instruction':36} | prompt          | judged right | O_edit found per pass (share of frames)")
for source, plan, runs in edits:
    for prompt, (out, scores) in runs.items():
        found = " ".join(f"{c:.2f}" for c in out.coverage)
        print(f"{plan.instruction if prompt == 'P_comp' else '':36} | {prompt:15} | {str(scores['success']):12} | "
              f"{found}")
for prompt in ("P_comp", "raw instruction", "own words"):
    right = sum(runs[prompt][1]["success"] for _, _, runs in edits)
    print(f"judged right with {prompt}: {right} of {len(edits)}")

# %%
source, plan, runs = edits[0]
print("P_comp as the toy model reads it: ", toy_pipe.tokenizer.tokenize(plan.composited_caption))
print("the instruction as it reads it:   ", toy_pipe.tokenizer.tokenize(plan.instruction))
figures.video_grid({"source": source, "with P_comp": runs["P_comp"][0].frames,
                    "with the raw instruction": runs["raw instruction"][0].frames,
                    "in the model's own words": runs["own words"][0].frames},
                   title=f"the first pair: {plan.instruction!r}");

# %% [markdown]
# **What you should see:** with `P_comp`, and with the new ball in the model's own words, a yellow ball rises
# beside the blue one; with the raw instruction, whose "sphere" and "rising" the toy model reads letter by letter
# (the tokens above), no yellow ball is found in any pass and the output is the source unchanged. Over the pairs
# (the table's last lines) `P_comp` is judged right most often, the model's own words on one pair fewer, the raw
# instruction never: the model's words do most of the work, and describing the source as well helps it a little.

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
# **What you should see:** the three key frames (0, 8 and 16 of 17) of the `green_ball_left` clip: a green ball on
# black, further left in each frame. These three pictures are all the planner sees of the video, so motion has to
# be read from where the ball is in them.

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
    try:
        plan = plan_edit(frames, instruction, backend="toy")
        print(plan.model_dump_json(indent=2))
    except PlanningError as err:  # e.g. a VIDEO that is not a toy-world clip
        print("the toy planner cannot plan for this clip:", err)

# %% [markdown]
# The same planner on every shipped example, and an instruction it cannot follow (it can only *add* objects). A
# plan the toy model is unlikely to carry out comes with a caveat (the planner raises it as a warning, printed
# here):

# %%
# NBVAL_CHECK_OUTPUT
import warnings

for name, (_, _, _, example_instruction) in EXAMPLES.items():
    with warnings.catch_warnings(record=True) as caveats:
        warnings.simplefilter("always")
        p = plan_edit(example_frames(name), example_instruction, backend="toy")
    print(f"{name}: {example_instruction!r}\n  P_comp: {p.composited_caption}\n"
          f"  O_orig: {p.objects_orig}  O_edit: {p.objects_edit}")
    for caveat in caveats:
        print(f"  caveat: {caveat.message}")
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
scene = {"source_caption": "a green ball moves left on black",
         "conversation": [{"speaker": "assistant", "text": "A yellow ball rises from the bottom edge."},
                          {"speaker": "artist", "text": "Keep it small and clear of the green ball."}],
         "composited_caption": "a yellow ball moves up beside a green ball moving left on black"}
chat = demo.ScriptedChat([
    "Sure! " + json.dumps(scene | {"composited_caption": too_long}),  # rejected: over the word limit
    "```json\n" + json.dumps(scene) + "\n```",  # accepted: the JSON is found inside the code fence
    json.dumps({"objects_orig": ["green ball"], "objects_edit": ["yellow ball"]}),
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
    print(f"skipped: {notebook.REAL_VIDEO} is not here (it ships beside the repository, not with it); to plan for "
          "your own clip, set VIDEO to its path in the switch cell (on Colab, upload it in the Files panel first)")

# %% [markdown]
# **What you should see:** three frames (0, 24, 48) of the taxi clip, filmed from the back seat: the driver's
# hands and the dashboard dark in the foreground, the street with cars and a bus through the windscreen. A VLM
# has to place "a huge dinosaur walking down the street between the cars" in this scene from such frames.

# %% [markdown]
# ## Review and edit a plan by hand
#
# Plans are meant to be read before the expensive part runs. Change what you disagree with and save it.

# %%
# NBVAL_CHECK_OUTPUT
import tempfile
from pathlib import Path

reviewed = scripted.model_copy(update={"objects_orig": ["green ball", "black background"]})
with tempfile.TemporaryDirectory() as folder:
    path = reviewed.save(Path(folder) / "plan.json")
    print("round trip equal:", VFXPlan.load(path) == reviewed, "| O_orig now:", VFXPlan.load(path).objects_orig)

# %% [markdown]
# ## Exercises
#
# Each exercise has a cell for you to work in (fill in what `...` stands for; as it is, it runs and does
# nothing) and, below it, its solution, collapsed in Jupyter and in Colab (double-click to read it). The
# solutions run with the notebook and check themselves with an `assert`; their output is not stored, so you
# see it only when you run them.
#
# **1 · Predict the plan (predict, then run).** The example `red_ball_bounce` shows a red ball bouncing on gray.
# The instruction "add a blue ball" says no motion: write down the toy planner's `P_comp`, `O_orig` and `O_edit`
# (which motion will it pick, and why?), then run it.

# %%
# Your turn. Write your guess down before you run the planner.
my_caption = ...  # P_comp
my_objects_orig, my_objects_edit = ..., ...
# TODO: then plan_edit(example_frames("red_ball_bounce"), "add a blue ball", backend="toy")

# %% jupyter={"source_hidden": true} tags=["solution"]
#@title Solution to exercise 1 (double-click to show the code)
#@markdown Runs with the notebook and checks itself with an `assert`; run it to see its output.
guess = plan_edit(example_frames("red_ball_bounce"), "add a blue ball", backend="toy")
print(guess.composited_caption, "|", guess.objects_orig, "|", guess.objects_edit)
print(guess.conversation[2].text)  # why that motion: the first of DEFAULT_MOTIONS that no source object has
assert guess.composited_caption == "a red ball bounces and a blue ball moves right on a gray background"
assert (guess.objects_orig, guess.objects_edit) == (["red ball"], ["blue ball"])

# %% [markdown]
# **2 · A VLM that needs correcting (implement a variant).** Script a stand-in whose *object* answer is first
# unusable — a new-object phrase longer than the limit of `MAX_OBJECT_WORDS` words — and then fine. Predict how
# many requests the protocol sends in all, and what the correction request says; run `run_dialogue` with it.

# %%
# Your turn. First your prediction: how many requests in all, and what does the correction request say?
my_requests = ...
# TODO: a demo.ScriptedChat with three replies (json.dumps of a scene answer like `scene`, then an object answer
# whose objects_edit phrase is too long, then a good one); run_dialogue(chat, images, instruction, keyframes,
# len(frames)); read the last request with demo.transcript(chat.sent[-1]).
my_chat = ...

# %% jupyter={"source_hidden": true} tags=["solution"]
#@title Solution to exercise 2 (double-click to show the code)
#@markdown Runs with the notebook and checks itself with an `assert`; run it to see its output.
wordy = {"objects_orig": ["green ball"], "objects_edit": ["the small bright yellow ball rising from below"]}
chat2 = demo.ScriptedChat([json.dumps(scene), json.dumps(wordy),
                           json.dumps({"objects_orig": ["green ball"], "objects_edit": ["yellow ball"]})])
fixed = run_dialogue(chat2, images, "add a yellow ball moving up", keyframes, len(frames))
correction = next(line for line in demo.transcript(chat2.sent[-1], width=1000).splitlines()
                  if line.startswith("That reply"))
print(f"{len(chat2.sent)} requests; the correction: {correction}")
assert len(chat2.sent) == 3 and fixed.objects_edit == ["yellow ball"]
assert f"the limit is {MAX_OBJECT_WORDS}" in correction

# %% [markdown]
# **3 · Can the plan's objects be found? (a check).** The method segments `O_orig` in the source (chapter 4) and
# `O_edit` in every refinement pass (chapter 5): a phrase the segmenter cannot find silently removes the anchors or
# the residual. Write a check that gives the share of a plan's `O_orig` phrases the toy segmenter finds in at
# least one key frame; it should be 1 for the toy plan of the `two_objects` clip, and 0 for a plan that asks for a
# "purple ball".

# %%
# Your turn. TODO: the toy segmenter (dynvfx.segmentation.get_segmenter("toy")) on the key frames of the
# two_objects clip (select_keyframes); .segment(frames, phrases).found() says, per phrase and key frame, whether it
# was found.
def my_found_share(phrases):
    """Share of the phrases found in at least one key frame of the two_objects clip."""
    ...

# %% jupyter={"source_hidden": true} tags=["solution"]
#@title Solution to exercise 3 (double-click to show the code)
#@markdown Runs with the notebook and checks itself with an `assert`; run it to see its output.
from dynvfx.segmentation import get_segmenter

toy_seg, clip = get_segmenter("toy"), example_frames("two_objects")
clip_keys = select_keyframes(len(clip))


def found_share(phrases):
    """Share of the phrases found in at least one key frame of the two_objects clip."""
    return toy_seg.segment(clip[clip_keys], phrases).found().any(1).float().mean().item()


good = plan_edit(clip, EXAMPLES["two_objects"][3], backend="toy")
print(f"toy plan: {found_share(good.objects_orig):.0%} of O_orig found; 'purple ball': {found_share(['purple ball']):.0%}")
assert found_share(good.objects_orig) == 1.0 and found_share(["purple ball"]) == 0.0

# %% [markdown]
# ## What to take away
#
# - The VLM turns a short instruction into a full caption of the edited scene plus the object names the method
#   needs; the conversation step makes it think about placement, size, motion and interaction first. In the toy
#   edits above, the raw instruction as the prompt added nothing: the plan's caption is what the model can follow
#   (the new ball in the model's words alone does almost as well; the source's description adds a little).
# - Everything downstream is driven by a small, reviewable JSON plan; a phrase the segmenter cannot find is worth
#   catching here, before the expensive part runs.
# - The toy planner is a stand-in: it reads colours and motions and writes the toy model's grammar. With a real VLM
#   the captions carry what the paper's results need (placement, scale, interaction); see the
#   [project page's results](https://dynvfx.github.io/) and where the text-to-video model still fails to follow
#   them (the paper's Fig. 8, [limitations](https://dynvfx.github.io/sm/index.html#Limitations)).
# - Next, chapter 4 uses `O_orig` to choose the anchors.
