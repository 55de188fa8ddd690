"""The demo edit with torch's threads, quiet and with another core busy: ``python benchmarks/threads.py [--save JSON]``.

On a machine with few cores, OpenMP threads that spin while they wait for each other collapse when another process
takes a core. Three settings, each a fresh process running ``make demo``'s edit (its own inversion cache):

- ``spin``: torch's default wait policy (torch imported before dynvfx, so dynvfx's default does not apply);
- ``passive``: dynvfx's default (``OMP_WAIT_POLICY=PASSIVE``, set when dynvfx is imported first);
- ``one thread``: ``OMP_NUM_THREADS=1``.

Each runs once on a quiet machine and once beside a busy loop on one core. Prints seconds and ratios to the quiet
passive run (one run each: a machine's noise is in them).
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

EDIT = ["edit", str(EXAMPLES_DIR / "green_ball_left.mp4"), "add a yellow ball that bounces", "--quiet", "--overwrite"]
SETTINGS = {
    "spin": ([sys.executable, "-c", "import sys, torch; from dynvfx.cli import main; sys.exit(main(sys.argv[1:]))"], {}),
    "passive": ([sys.executable, "-m", "dynvfx"], {}),
    "one thread": ([sys.executable, "-m", "dynvfx"], {"OMP_NUM_THREADS": "1"}),
}


def edit_seconds(command: list[str], env: dict, work: Path) -> float:
    """Wall-clock seconds of one demo edit (fresh inversion cache and output folder)."""
    out, cache = tempfile.mkdtemp(dir=work), tempfile.mkdtemp(dir=work)
    base = {k: v for k, v in os.environ.items() if k not in ("OMP_WAIT_POLICY", "OMP_NUM_THREADS")}
    start = time.perf_counter()
    subprocess.run(command + EDIT + ["--out", out, "--cache-dir", cache], env=base | env, check=True,
                   stdout=subprocess.DEVNULL)
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
                for name, (command, env) in SETTINGS.items():
                    seconds[f"{load}, {name}"] = edit_seconds(command, env, Path(tmp))
                    print(f"{load:>14}, {name:<11} {seconds[f'{load}, {name}']:6.1f} s", flush=True)
            finally:
                if busy:
                    busy.kill()
    base = seconds["quiet, passive"]
    print("\nratio to the quiet passive run:")
    for key, value in seconds.items():
        print(f"  {key:<28} {value / base:5.2f}x")
    if args.save:
        machine = {"cores": os.cpu_count(), "processor": _processor()}
        Path(args.save).write_text(json.dumps({"seconds": seconds, "machine": machine}, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
