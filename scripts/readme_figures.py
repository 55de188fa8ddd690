"""Make the README's pictures from real runs of the toy model: ``python scripts/readme_figures.py``.

- ``docs/toy_edit.png``: source / result / masks of the README's main job (the `make demo` edit).
- ``docs/toy_generate.png``: the base model alone on a few captions (one row per caption).
"""

import json

from dynvfx.config import DynVFXConfig
from dynvfx.edit import prepare_source, run_edit
from dynvfx.figures import mask_video, save_png, strip
from dynvfx.paths import DOCS_DIR, EXAMPLES_DIR
from dynvfx.pipeline import generate, load_pipeline
from dynvfx.planning import plan_edit
from dynvfx.segmentation import get_segmenter

DOCS = DOCS_DIR
EXAMPLE = "green_ball_left"  # the `make demo` edit: its clip and the instruction in its .json
CAPTIONS = [
    "a red ball moves right on a gray background",
    "a yellow ball moves down on a black background",
    "a blue ball bounces on a white background",
    "a green ball moves left and a red ball moves up on a gray background",
]


def main() -> None:
    pipe = load_pipeline("toy")
    frames, _ = prepare_source(pipe, EXAMPLES_DIR / f"{EXAMPLE}.mp4")
    instruction = json.loads((EXAMPLES_DIR / f"{EXAMPLE}.json").read_text())["instruction"]
    plan = plan_edit(frames, instruction, backend="toy")
    res = run_edit(pipe, frames, plan, get_segmenter("toy"), DynVFXConfig.toy(), progress=False)
    save_png(strip([frames, res.frames, mask_video(frames, res.source_mask, res.edit_mask)], every=2),
             DOCS / "toy_edit.png")
    save_png(strip([generate(pipe, c, seed=0) for c in CAPTIONS], every=2), DOCS / "toy_generate.png")
    print("wrote", DOCS / "toy_edit.png", DOCS / "toy_generate.png")


if __name__ == "__main__":
    main()
