"""Train the toy model again the way the shipped weights were trained: ``python scripts/train_recipe.py [--dry-run]``.

``data/models/toy/training.json`` records every stage behind the shipped weights (each fine-tune keeps the record
of the pipeline it started from under ``init_from``). This script replays that chain with ``python -m
dynvfx.lab.train``: stage 1 from scratch, each later stage a fine-tune (``--init-from``) of the one before, with
the settings its record holds, into ``DIR/stage<k>/``. Run it again to resume: finished stages are skipped and the
stage in progress continues from its checkpoint. A stage recorded on a GPU needs one; on a CPU the script stops
before it and says so. Stage 1 was trained on an earlier version of the toy world, so a replay follows the recipe
but does not give the same weights.

    python scripts/train_recipe.py --dry-run            # the stages, their commands and how long each took
    python scripts/train_recipe.py                      # run them (days of CPU; the last stages want a GPU)
    python scripts/train_recipe.py --stages 5-9         # some of them (the one before must be done)
    python scripts/train_recipe.py --set steps=2 ...    # any setting overridden in every stage (quick checks)
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
from pathlib import Path

from dynvfx.paths import TOY_MODEL_DIR

#: Settings of the record that are not options of the training command.
NOT_OPTIONS = {"warm_start", "device"}
DEFAULT_DIR = Path(os.environ.get("DYNVFX_TRAIN_DIR", Path.home() / ".cache" / "dynvfx")) / "recipe"
DEFAULT_RECORD = TOY_MODEL_DIR / "training.json"


def stages(record: dict) -> list[dict]:
    """The chain of a ``training.json`` record, first stage first."""
    chain = []
    while isinstance(record, dict):
        chain.append(record)
        record = record.get("init_from")
    return chain[::-1]


def on_gpu(stage: dict) -> bool:
    return stage["settings"].get("device", "cpu").startswith("cuda")


def command(stage: dict, folder: Path, previous: Path | None, overrides: dict) -> list[str]:
    """The ``python -m dynvfx.lab.train`` command of one stage, writing ``folder/out`` (work in ``folder/work``)."""
    settings = stage["settings"] | overrides
    cmd = [sys.executable, "-m", "dynvfx.lab.train", "--workdir", str(folder / "work"), "--out", str(folder / "out"),
           "--device", str(settings.get("device", "cpu"))]
    for key, value in settings.items():
        if key not in NOT_OPTIONS and value is not None and value is not False:
            cmd += [f"--{key.replace('_', '-')}"] + ([] if value is True else [str(value)])
    if stage["steps"] < stage["settings"]["steps"] and "steps" not in overrides:
        cmd += ["--stop-at", str(stage["steps"])]  # the run was stopped inside its schedule
    return cmd + (["--init-from", str(previous)] if previous else [])


def _cuda() -> bool:
    import torch

    return torch.cuda.is_available()


def minutes(stage: dict) -> float:
    return sum(stage.get("seconds", {}).values()) / 60


def _value(text: str):
    """A ``--set`` value: a number or true/false as JSON reads it, else the text itself."""
    try:
        return json.loads(text)
    except json.JSONDecodeError:
        return text


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--dir", type=Path, default=DEFAULT_DIR, help=f"where the stages go (default {DEFAULT_DIR})")
    p.add_argument("--record", type=Path, default=DEFAULT_RECORD, help="the recipe to replay")
    p.add_argument("--stages", default=None, help="e.g. 5-9 or 3 (default: all)")
    p.add_argument("--set", nargs="+", default=[], metavar="KEY=VALUE", help="override a setting in every stage")
    p.add_argument("--dry-run", action="store_true", help="print the stages and their commands, run nothing")
    args = p.parse_args(argv)
    chain = stages(json.loads(args.record.read_text()))
    overrides = {k.replace("-", "_"): _value(v) for k, _, v in (item.partition("=") for item in args.set)}
    first, _, last = (args.stages or f"1-{len(chain)}").partition("-")
    chosen = range(int(first), int(last or first) + 1)
    previous = None  # the model the next stage starts from
    for k, stage in enumerate(chain, start=1):
        folder, start = args.dir / f"stage{k}", previous
        previous = folder / "out"
        if k not in chosen:
            continue
        cmd = command(stage, folder, start, overrides)
        gpu = cmd[cmd.index("--device") + 1].startswith("cuda")
        print(f"stage {k}/{len(chain)} ({'GPU' if gpu else 'CPU'}; {minutes(stage):.0f} min when recorded, on "
              f"{stage.get('device') or 'cpu'}):\n  " + " ".join(cmd[1:]), flush=True)
        if args.dry_run:
            continue
        done = folder / "out" / "training.json"
        if done.exists() and json.loads(done.read_text())["steps"] >= overrides.get("steps", stage["steps"]):
            print("  done already", flush=True)
            continue
        if gpu and not _cuda():
            print(f"stage {k} was trained on a GPU ({stage.get('device')}, batch {stage['settings']['batch']}) and "
                  f"this machine has none: run `python scripts/train_recipe.py --dir {args.dir} --stages "
                  f"{k}-{len(chain)}` on a GPU machine, with the stages before it in {args.dir}", file=sys.stderr)
            return 1
        if start is not None and not (start / "model_index.json").exists():
            print(f"stage {k} starts from stage {k - 1}'s model, which is not in {start}", file=sys.stderr)
            return 1
        subprocess.run(cmd, check=True)
    if not args.dry_run:
        print(f"the last stage's model: {previous}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
