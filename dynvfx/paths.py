"""Where things live: the one place that computes the repository root and the folders under it.

The course runs from a checkout (``pip install -e .``), so the data ship beside the package, not inside it.
"""

from __future__ import annotations

from pathlib import Path

from dynvfx.errors import DynVFXError

#: The checkout that holds ``dynvfx/``, ``data/``, ``notebooks/`` and ``benchmarks/``.
REPO_ROOT = Path(__file__).resolve().parents[1]
DATA_DIR = REPO_ROOT / "data"
#: The toy source videos (``NAME.mp4`` + ``NAME.json``, see :mod:`dynvfx.toy.examples`).
EXAMPLES_DIR = DATA_DIR / "examples"
#: The shipped toy model (what ``load_pipeline("toy")`` loads).
TOY_MODEL_DIR = DATA_DIR / "models" / "toy"
#: The file beside a saved toy pipeline that marks it as a toy-world model (its closed prompt vocabulary).
PROMPT_VOCABULARY_FILE = "prompt_vocabulary.json"
DOCS_DIR = REPO_ROOT / "docs"
#: Real clips for the optional cells and tests (beside the repository on the course machines, not on Colab).
SHARED_VIDEOS = REPO_ROOT.parent / "shared" / "data" / "videos"


def is_toy_model(folder: str | Path) -> bool:
    """Is ``folder`` a saved toy-world pipeline (it ships :data:`PROMPT_VOCABULARY_FILE`)? ``""`` is no folder."""
    return bool(str(folder)) and (Path(folder) / PROMPT_VOCABULARY_FILE).is_file()


KNOWN_HUB_IDS = ("THUDM/CogVideoX-5b", "THUDM/CogVideoX-2b")


def resolve_model(name: str) -> str:
    """``"toy"`` -> the shipped toy model's folder; a folder or a hub id pass through."""
    if name == "toy":
        if not (TOY_MODEL_DIR / "model_index.json").exists():
            raise DynVFXError(f"the toy model is missing from {TOY_MODEL_DIR}; train it with "
                              "`python -m dynvfx.lab.train`")
        return str(TOY_MODEL_DIR)
    if Path(name).is_dir():
        if not (Path(name) / "model_index.json").exists():
            raise DynVFXError(f"{name} is a folder but not a saved pipeline (no model_index.json)")
        return name
    if name.count("/") == 1 and not Path(name).exists():
        return name  # a hub id
    raise DynVFXError(f"unknown model {name!r}: use 'toy', a folder saved with save_pretrained, "
                      f"or a CogVideoX hub id such as {', '.join(KNOWN_HUB_IDS)}")
