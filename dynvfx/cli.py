"""Command line: ``python -m dynvfx generate ...`` and ``python -m dynvfx edit ...``.

Errors caused by the input (a missing video, an unknown model, a plan the planner can't make...) print one line
``dynvfx: error: ...`` and exit with status 2; outputs are written to temporary names and renamed at the end, so
a failed run leaves nothing half-written.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import shutil
import sys
import tempfile
import time
import warnings
from pathlib import Path

import torch
import yaml

from dynvfx.config import ATTENTION_MODES, DynVFXConfig, PRESETS
from dynvfx.cost import GPUS, estimate, model_shape
from dynvfx.edit import check_plan, prepare_source, run_edit, source_anchors
from dynvfx.errors import DynVFXError
from dynvfx.figures import mask_video
from dynvfx.paths import PROMPT_VOCABULARY_FILE, is_toy_model
from dynvfx.pipeline import MEMORY_MODES, cpu_threads, generate, load_pipeline, locate_model, locate_pretrained
from dynvfx.planning import BACKENDS, PlanningError, VFXPlan, plan_edit
from dynvfx.planning.hf_backend import hf_model_name
from dynvfx.planning.openai_backend import ENV_API_KEY
from dynvfx.planning.toy import parse_instruction
from dynvfx.segmentation import SEGMENTERS, get_segmenter
from dynvfx.toy.gate import source_problem
from dynvfx.toy.perception import sees_box
from dynvfx.toy.vocabulary import BOX_WORDS, OTHER_SHAPE_WORDS, names_box
from dynvfx.video import fitted_frame_count, load_video, write_video


#: What ``edit`` writes into its output folder, per mode (``plan``; ``auto`` and ``execute`` run the edit).
EDIT_OUTPUTS = {"plan": ("plan.json", "source_masks.mp4"),
                "run": ("result.mp4", "plan.json", "masks.mp4", "config.yaml")}


def _make_folder(folder: Path) -> None:
    """Create ``folder`` and its parents if missing (``make demo`` writes into outputs/ on a fresh checkout)."""
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise DynVFXError(f"cannot create the output folder {folder}: {e.strerror}") from None


def _check_creatable(folder: Path) -> None:
    """``folder`` exists and is writable, or its nearest existing parent is a writable folder (nothing created)."""
    existing = next(p for p in (folder, *folder.parents) if p.exists())
    if not existing.is_dir():
        raise DynVFXError(f"cannot create the output folder {folder}: {existing} is a file")
    if not os.access(existing, os.W_OK):
        raise DynVFXError(f"output folder is not writable: {existing}")


def _check_out_file(path: Path, overwrite: bool) -> None:
    if path.exists() and not overwrite:
        raise DynVFXError(f"{path} exists; pass --overwrite to replace it")
    if path.exists() and path.is_dir():
        raise DynVFXError(f"{path} is a folder, not a file")
    _check_creatable(path.parent)


def _check_out_folder(out: Path, names: list[str], overwrite: bool) -> None:
    """The edit's output folder: new, empty, or holding only what an earlier edit wrote (replaced with
    ``--overwrite``); never a file, and never a folder of other files, which the outputs would be mixed into."""
    if out.exists() and not out.is_dir():
        raise DynVFXError(f"--out {out} is a file; an edit writes a folder ({', '.join(names)}): give a folder path")
    if out.is_dir():
        foreign = sorted(p.name for p in out.iterdir() if not any(p.name in n for n in EDIT_OUTPUTS.values()))
        if foreign:
            shown = ", ".join(foreign[:3]) + (", ..." if len(foreign) > 3 else "")
            raise DynVFXError(f"--out {out} holds files dynvfx did not write ({shown}); give a new or empty "
                              "folder (the outputs are never mixed with other files)")
        clash = [n for n in names if (out / n).exists()]
        if clash and not overwrite:
            raise DynVFXError(f"{out} already holds {', '.join(clash)}; pass --overwrite to replace")
    _check_creatable(out)


def _toy_vocabulary(model: str) -> dict | None:
    """The ``prompt_vocabulary.json`` a closed-vocabulary (toy) model ships in its folder ``model``, or None."""
    vocab_file = Path(model) / PROMPT_VOCABULARY_FILE  # read before any model loads
    return json.loads(vocab_file.read_text()) if vocab_file.is_file() else None


def _check_toy_caption(model: str, caption: str) -> None:
    """A closed-vocabulary model (one that ships ``prompt_vocabulary.json`` in its folder ``model``) refuses
    captions naming no object it knows, or naming a shape it does not draw (e.g. "square" for a model whose only
    object is "ball"), or the box when it never learnt it."""
    vocab = _toy_vocabulary(model)
    if vocab is None:
        return
    words = set(caption.lower().replace(",", " ").split())
    if not words & set(vocab["objects"]) or words & OTHER_SHAPE_WORDS - set(vocab["objects"]):
        raise DynVFXError(f"this model knows no object in {caption!r}; it knows "
                          f"{', '.join(vocab['colours'])} {'/'.join(vocab['objects'])} "
                          f"(e.g. {vocab['example']!r})")
    if words & BOX_WORDS:
        _check_toy_box(vocab, repr(caption))


def _check_toy_box(vocab: dict, what: str) -> None:
    """A toy model whose vocabulary ``vocab`` lacks the box's words (the shipped one) refuses a caption, an
    instruction or a clip with the box (``what``) rather than draw words it never learnt."""
    if not BOX_WORDS & set(vocab.get("words", [])):
        raise DynVFXError(f"this model was never taught the box ({what}); the box fine-tune that learns it: "
                          "docs/toy-model.md")


@contextlib.contextmanager
def _threads(args):
    """Torch's CPU threads for this command (:func:`~dynvfx.pipeline.cpu_threads`), put back after it."""
    before = torch.get_num_threads()
    threads, note = cpu_threads(args.threads)
    if note:
        print(f"note: {note}", file=sys.stderr)
    torch.set_num_threads(threads)
    try:
        yield
    finally:
        torch.set_num_threads(before)


def cmd_generate(args) -> int:
    out = Path(args.out)
    _check_out_file(out, args.overwrite)
    model = locate_model(args.model)
    _check_toy_caption(model, args.caption)
    _quiet_libraries(args)
    with _threads(args):
        pipe = load_pipeline(model, memory=args.memory)
        t = time.perf_counter()
        frames = generate(pipe, args.caption, seed=args.seed, steps=args.steps, guidance=args.guidance)
    _make_folder(out.parent)
    write_video(out, frames, fps=args.fps)
    print(f"wrote {out} ({frames.shape[0]} frames, {frames.shape[3]}x{frames.shape[2]}, "
          f"{time.perf_counter() - t:.1f} s)")
    return 0


# ------------------------------------------------------------------------------------------- edit
def _load_config(args):
    cfg = DynVFXConfig.for_model(args.model)
    if args.config:
        try:
            cfg = DynVFXConfig.from_dict(cfg.to_dict() | (yaml.safe_load(Path(args.config).read_text()) or {}))
        except (OSError, ValueError, TypeError, yaml.YAMLError) as e:
            raise DynVFXError(f"bad config {args.config}: {str(e).splitlines()[0]}") from None
    changes = {k: v for k, v in (("attention_mode", args.attention), ("seed", args.seed)) if v is not None}
    return cfg.replace(**changes)


class _Staging:
    """Files are written into a hidden folder beside ``out`` and moved into ``out`` together at the end."""

    def __init__(self, out: Path):
        self.out = out
        _make_folder(out.parent)
        self.tmp = Path(tempfile.mkdtemp(prefix=f".{out.name}-tmp-", dir=out.parent))

    def path(self, name: str) -> Path:
        return self.tmp / name

    def commit(self) -> None:
        self.out.mkdir(exist_ok=True)
        for f in self.tmp.iterdir():
            os.replace(f, self.out / f.name)
        self.tmp.rmdir()

    def discard(self) -> None:
        shutil.rmtree(self.tmp, ignore_errors=True)


def _cache(args, kind: str) -> Path | None:
    """``--cache-dir``'s sub-folder for ``kind`` (plans / inversions); ``None`` means the library default."""
    if args.cache_dir is None:
        return None if kind == "plans" else Path.home() / ".cache" / "dynvfx" / "inversions"
    return Path(args.cache_dir) / kind


def _plan(args, frames):
    if args.mode == "execute":
        plan_path = Path(args.plan or Path(args.out) / "plan.json")
        if not plan_path.exists():
            raise DynVFXError(f"--mode execute needs a plan: {plan_path} not found (make one with --mode plan)")
        try:
            return VFXPlan.load(plan_path)
        except (ValueError, OSError) as e:
            raise DynVFXError(f"invalid plan: {e}") from None
    try:
        return plan_edit(frames, args.instruction, backend=args.planner, model=args.planner_model,
                         cache_dir=_cache(args, "plans"))
    except PlanningError as e:
        raise DynVFXError(str(e)) from None


def _quiet_libraries(args) -> None:
    """No loading/progress bars from diffusers, transformers or the hub unless ``--verbose``."""
    if getattr(args, "verbose", False):
        return
    import diffusers
    import huggingface_hub
    import transformers

    diffusers.utils.logging.disable_progress_bar()
    transformers.utils.logging.disable_progress_bar()
    huggingface_hub.utils.disable_progress_bars()


def _say(args, text: str) -> None:
    """One line per stage on stderr (none with ``--quiet``)."""
    if not args.quiet:
        print(f"dynvfx: {text}", file=sys.stderr, flush=True)


def _check_toy_source(args, model: str, frames) -> None:
    """The toy model ``model`` edits toy-world clips only (:mod:`dynvfx.toy.gate`), and clips with the box only
    if it learnt the box; ``--force`` runs it on other clips anyway, labelled."""
    problem = source_problem(frames)
    if problem is None:
        if sees_box(frames):
            _check_toy_box(_toy_vocabulary(model), f"{args.video} shows it")
        return
    if not args.force:
        raise DynVFXError(f"the toy model cannot edit {args.video}: {problem}. It knows only toy-world clips "
                          "(coloured balls on a plain background, e.g. data/examples/); for a real video use a real "
                          "model on a GPU, --model THUDM/CogVideoX-5b (see docs/gpu.md), or pass --force to run "
                          "the toy model anyway")
    print(f"warning: --force: the toy model runs on a video it was not made for ({problem}); expect no real edit",
          file=sys.stderr)


def _preflight_edit(args):
    """Every check that needs no model, before one loads and before anything is written: returns
    (model folder or hub id, config, frames, plan or None, segmenter)."""
    if args.mode != "execute" and not (args.instruction or "").strip():
        raise DynVFXError("the instruction is empty: say what to add, e.g. \"add a red ball moving right\"")
    _check_out_folder(Path(args.out), list(EDIT_OUTPUTS["plan" if args.mode == "plan" else "run"]), args.overwrite)
    _check_creatable(_cache(args, "inversions"))
    model = locate_model(args.model)
    config = _load_config(args)
    frames = load_video(args.video)[0]
    if is_toy_model(model):
        _check_toy_source(args, model, frames)
    plan = _plan(args, None) if args.mode == "execute" else None
    if plan is not None:
        check_plan(plan)
    if args.mode != "execute" and args.planner == "toy":
        try:
            parse_instruction(args.instruction)
        except ValueError as e:
            raise DynVFXError(str(e)) from None
        if is_toy_model(model) and names_box(args.instruction):
            _check_toy_box(_toy_vocabulary(model), repr(args.instruction))
    if args.mode != "execute" and args.planner == "openai":
        if not os.environ.get(ENV_API_KEY):
            raise DynVFXError(f"--planner openai needs {ENV_API_KEY} (any non-empty string for a local server), "
                              "or plan offline with --planner toy")
    try:
        segmenter = get_segmenter(args.segmenter)
    except (ValueError, ImportError, TypeError, OSError) as e:
        raise DynVFXError(f"bad segmenter {args.segmenter!r}: {str(e).splitlines()[0]}") from None
    hub_models = list(getattr(segmenter, "hub_models", []))
    if args.mode != "execute" and args.planner == "hf":
        hub_models.append(hf_model_name(args.planner_model))
    for name in hub_models:
        locate_pretrained(name)
    return model, config, frames, plan, segmenter


def cmd_edit(args) -> int:
    model, config, frames, plan, segmenter = _preflight_edit(args)
    out = Path(args.out)
    staging = _Staging(out)
    with _threads(args):
        return _edit(args, model, config, frames, plan, segmenter, out, staging)


def _edit(args, model, config, frames, plan, segmenter, out: Path, staging: "_Staging") -> int:
    """The edit itself, once every input has been checked: load, plan, run, write."""
    try:
        _quiet_libraries(args)
        _say(args, f"loading {args.model} (memory {args.memory})")
        pipe = load_pipeline(model, memory=args.memory)
        frames, note = prepare_source(pipe, frames)
        if note:
            print(f"note: {note}", file=sys.stderr)
        t0 = time.perf_counter()
        if plan is None:
            _say(args, f"planning with the {args.planner} planner")
            plan = _plan(args, frames)
        t_plan = time.perf_counter() - t0
        plan.save(staging.path("plan.json"))
        if args.mode == "plan":
            src_mask = source_anchors(pipe, frames, plan.objects_orig, segmenter, config).mask
            write_video(staging.path("source_masks.mp4"), mask_video(frames, src_mask))
            staging.commit()
            print(f"wrote {out}/plan.json and source_masks.mp4 ({t_plan:.1f} s); review, then run with --mode execute")
            return 0
        _say(args, f"encoding and inverting the source ({config.inversion_steps} steps)")
        n = len(config.strengths)
        step_line = (lambda k, i, t, x: _say(args, f"refinement {k + 1}/{n}") if i == 0 else None)
        result = run_edit(pipe, frames, plan, segmenter, config, cache_dir=_cache(args, "inversions"),
                          callback=None if args.quiet else step_line, progress=args.verbose)
        _say(args, "writing the outputs")
        t0 = time.perf_counter()
        write_video(staging.path("result.mp4"), result.frames)
        write_video(staging.path("masks.mp4"), mask_video(frames, result.source_mask, result.edit_mask))
        record = {"video": str(Path(args.video).resolve()), "instruction": args.instruction, "model": args.model,
                  "planner": args.planner if args.mode != "execute" else "plan file", "segmenter": args.segmenter,
                  **({"forced": True} if args.force else {}),
                  "config": config.to_dict(), "seconds": {"plan": round(t_plan, 2),
                  **{k: round(v, 2) for k, v in result.seconds.items()}}}
        record["seconds"]["write"] = round(time.perf_counter() - t0, 2)
        staging.path("config.yaml").write_text(yaml.safe_dump(record, sort_keys=False))
        staging.commit()
        found = sum(it.found for it in result.refinement.iterations)
        total = sum(record["seconds"].values())
        print(f"wrote {out}/result.mp4 ({result.frames.shape[0]} frames; O_edit found in {found}/"
              f"{len(result.refinement.iterations)} iterations; {total:.1f} s: "
              + ", ".join(f"{k} {v:.1f}" for k, v in record["seconds"].items()) + ")")
        return 0
    finally:
        if staging.tmp.exists():
            staging.discard()


def cmd_estimate(args) -> int:
    frames = load_video(args.video)[0]
    shape = model_shape(args.model)
    n = fitted_frame_count(frames.shape[0], shape.frames, shape.temporal_compression)
    print(f"video: {frames.shape[0]} frames of {frames.shape[3]}x{frames.shape[2]}")
    print(estimate(args.model, preset=args.preset, gpu=args.gpu, memory=args.memory, shape=shape,
                   frames=n).table())
    return 0


def _at_least(low: float, cast=float):
    """An argparse type: a number ``>= low`` (argparse turns the ValueError into its one-line usage error)."""
    def parse(text: str):
        value = cast(text)
        if value < low:
            raise argparse.ArgumentTypeError(f"must be at least {low}, got {text}")
        return value
    return parse


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m dynvfx", description="DynVFX: add dynamic content to a video.")
    sub = p.add_subparsers(dest="command", required=True)

    g = sub.add_parser("generate", help="text-to-video with the base model alone")
    g.add_argument("caption")
    g.add_argument("--model", default="toy", help="'toy', a saved pipeline folder, or a CogVideoX hub id")
    g.add_argument("--out", required=True, help="output .mp4")
    g.add_argument("--seed", type=int, default=0)
    g.add_argument("--steps", type=_at_least(1, int), default=50)
    g.add_argument("--guidance", type=_at_least(0.0), default=None,
                   help="default: the model's preset (toy 2.5, else 6)")
    g.add_argument("--fps", type=_at_least(0.1), default=8.0)
    g.add_argument("--overwrite", action="store_true")
    g.add_argument("--memory", choices=MEMORY_MODES, default="auto", help="where the weights live (GPU)")
    g.add_argument("--threads", type=_at_least(1, int), default=None,
                   help="torch CPU threads (default: torch's, less the cores other processes keep busy)")
    g.add_argument("--verbose", action="store_true", help="show the libraries' progress bars")
    g.set_defaults(func=cmd_generate)

    e = sub.add_parser("edit", help="add new content to a video from an instruction")
    e.add_argument("video", help="an mp4 or a folder of PNG/JPG frames")
    e.add_argument("instruction", nargs="?", default="", help="P_VFX, e.g. 'add a red ball moving right'")
    e.add_argument("--model", default="toy")
    e.add_argument("--out", required=True, help="output folder")
    e.add_argument("--mode", choices=("auto", "plan", "execute"), default="auto",
                   help="auto: plan and run; plan: write plan.json for review; execute: run a reviewed plan")
    e.add_argument("--plan", help="plan file for --mode execute (default OUT/plan.json)")
    e.add_argument("--planner", default="toy", choices=BACKENDS)
    e.add_argument("--planner-model", default=None, help="the planner's model (openai/hf)")
    e.add_argument("--segmenter", default="toy", help=" | ".join(SEGMENTERS))
    e.add_argument("--attention", choices=ATTENTION_MODES, default=None)
    e.add_argument("--config", help="YAML with DynVFXConfig fields to override")
    e.add_argument("--seed", type=int, default=None)
    e.add_argument("--cache-dir", default=None,
                   help="cache root: DIR/inversions and DIR/plans (default ~/.cache/dynvfx, plans also $DYNVFX_CACHE_DIR)")
    e.add_argument("--overwrite", action="store_true", help="replace the outputs of an earlier edit in --out")
    e.add_argument("--force", action="store_true",
                   help="run the toy model on a video that is not a toy-world clip (it is refused otherwise)")
    e.add_argument("--memory", choices=MEMORY_MODES, default="auto",
                   help="where the weights live on a GPU: full, lean, offload, sequential, or auto by free memory")
    e.add_argument("--threads", type=_at_least(1, int), default=None,
                   help="torch CPU threads (default: torch's, less the cores other processes keep busy)")
    e.add_argument("--quiet", action="store_true", help="no stage lines")
    e.add_argument("--verbose", action="store_true", help="the libraries' progress bars instead of stage lines")
    e.set_defaults(func=cmd_edit)

    s = sub.add_parser("estimate", help="estimated seconds and GPU memory of an edit, without loading a model")
    s.add_argument("video")
    s.add_argument("--model", default="THUDM/CogVideoX-5b")
    s.add_argument("--preset", default="paper", choices=PRESETS)
    s.add_argument("--gpu", default="h100", choices=tuple(GPUS))
    s.add_argument("--memory", choices=MEMORY_MODES, default="auto")
    s.set_defaults(func=cmd_estimate)
    return p


def main(argv=None) -> int:
    args = build_parser().parse_args(argv)
    fmt = warnings.formatwarning
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("default")
            warnings.formatwarning = lambda msg, cat, *a, **k: f"warning: {msg}\n"
            return args.func(args)
    except DynVFXError as e:
        print(f"dynvfx: error: {e}", file=sys.stderr)
        return 2
    finally:
        warnings.formatwarning = fmt
