"""Plans kept on disk, so asking again about the same frames and instruction costs nothing.

A plan is filed under a hash of what decides it: the key frames' pixels (as the uint8 the planner sees),
their indices, the instruction, the backend and the model. Files are written to a temporary name in the
same folder and renamed into place, so a crash never leaves half a plan under a real name.
"""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
from pathlib import Path

from pydantic import ValidationError

from .keyframes import frames_to_uint8
from .schema import VFXPlan

ENV_CACHE_DIR = "DYNVFX_CACHE_DIR"


def default_cache_dir() -> Path:
    """``$DYNVFX_CACHE_DIR``, else ``~/.cache/dynvfx/plans``."""
    env = os.environ.get(ENV_CACHE_DIR)
    return Path(env) if env else Path.home() / ".cache" / "dynvfx" / "plans"


def plan_key(frames, keyframes: list[int], instruction: str, backend: str, model: str) -> str:
    """Hex SHA-256 naming the plan of ``frames[keyframes]`` (``[F, 3, H, W]`` float in [0, 1])."""
    pixels = frames_to_uint8(frames, keyframes)
    h = hashlib.sha256()
    h.update(json.dumps([list(pixels.shape), list(keyframes), instruction, backend, model]).encode())
    h.update(pixels.tobytes())
    return h.hexdigest()


def plan_path(cache_dir: str | Path, key: str) -> Path:
    """Where the plan with this key lives."""
    return Path(cache_dir) / f"plan-{key[:32]}.json"


def load_plan(cache_dir: str | Path, key: str) -> VFXPlan | None:
    """The cached plan, or ``None`` if there is none or the file cannot be read as a plan."""
    path = plan_path(cache_dir, key)
    try:
        return VFXPlan.model_validate_json(path.read_text())
    except (OSError, ValidationError, ValueError):
        return None


def store_plan(cache_dir: str | Path, key: str, plan: VFXPlan) -> Path:
    """Write ``plan`` atomically (temporary file, flush to disk, rename); returns its path."""
    path = plan_path(cache_dir, key)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".plan-", suffix=".tmp")
    try:
        with os.fdopen(fd, "w") as f:
            f.write(plan.model_dump_json(indent=2))
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path
