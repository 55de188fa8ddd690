"""The demo edit under torch's thread settings, quiet and beside a busy core: ``python benchmarks/threads.py
[--save JSON]``.

Torch's CPU threads wait for each other by spinning; when one of them shares a core with another busy process, the
whole run slows down several times. Four settings, each a fresh ``python -m dynvfx edit`` of ``make demo``'s edit
(its own inversion cache):

- ``all cores``: torch's default, one thread per core (``--threads`` = the core count);
- ``passive``: the same, with ``OMP_WAIT_POLICY=PASSIVE`` (idle threads sleep instead of spinning);
- ``one thread``: ``--threads 1``;
- ``dynvfx's choice``: no ``--threads``: torch's default less the cores other processes keep busy
  (:func:`dynvfx.pipeline.cpu_threads`).

Each runs once on a quiet machine and once beside a busy loop on one core. Prints seconds and their ratios to the
quiet run with all cores (one run each: the machine's noise is in them).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from dynvfx.paths import EXAMPLES_DIR

EDIT = [sys.executable, "-m", "dynvfx", "edit", str(EXAMPLES_DIR / "green_ball_left.mp4"),
        "add a yellow ball that bounces", "--quiet", "--overwrite"]
CORES = str(os.cpu_count() or 1)
SETTINGS = {
    "all cores": (["--threads", CORES], {}),
    "passive": (["--threads", CORES], {"OMP_WAIT_POLICY": "PASSIVE"}),
    "one thread": (["--threads", "1"], {}),
    "dynvfx's choice": ([], {}),
}


def edit_seconds(options: list[str], env: dict, work: Path) -> float:
    """Wall-clock seconds of one demo edit (fresh inversion cache and output folder)."""
    out, cache = tempfile.mkdtemp(dir=work), tempfile.mkdtemp(dir=work)
    base = {k: v for k, v in os.environ.items() if k not in ("OMP_WAIT_POLICY", "OMP_NUM_THREADS")}
    start = time.perf_counter()
    subprocess.run(EDIT + options + ["--out", out, "--cache-dir", cache], env=base | env, check=True,
                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    return time.perf_counter() - start


def _processor() -> str:
    """The CPU's model name (Linux), else what ``platform`` knows."""
    info = Path("/proc/cpuinfo")
    names = [ln.split(":", 1)[1].strip() for ln in info.read_text().splitlines()
             if ln.startswith("model name")] if info.exists() else []
    return names[0] if names else platform.processor() or platform.machine()


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--save", metavar="JSON", help="also write the seconds and the machine")
    args = p.parse_args()
    seconds = {}
    with tempfile.TemporaryDirectory() as tmp:
        for load in ("quiet", "one core busy"):
            busy = subprocess.Popen([sys.executable, "-c", "while True: pass"]) if load != "quiet" else None
            try:
                for name, (options, env) in SETTINGS.items():
                    seconds[f"{load}, {name}"] = edit_seconds(options, env, Path(tmp))
                    print(f"{load:>14}, {name:<16} {seconds[f'{load}, {name}']:6.1f} s", flush=True)
            finally:
                if busy:
                    busy.kill()
    base = seconds["quiet, all cores"]
    print("\nratio to the quiet run on all cores:")
    for key, value in seconds.items():
        print(f"  {key:<32} {value / base:5.2f}x")
    if args.save:
        machine = {"cores": os.cpu_count(), "processor": _processor()}
        Path(args.save).write_text(json.dumps({"seconds": seconds, "machine": machine}, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
