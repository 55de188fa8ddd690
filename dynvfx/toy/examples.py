"""The toy source videos shipped in ``data/examples/`` (``python -m dynvfx.toy.examples`` rewrites them).

Each example is ``NAME.mp4`` (17 frames, 48x48, 8 fps) plus ``NAME.json``: the scene (so the renderer's ground
truth can be recomputed), its caption and an edit instruction to try.
"""

from __future__ import annotations

import json
from pathlib import Path

import torch

from dynvfx.paths import EXAMPLES_DIR
from dynvfx.toy import world

#: name -> (seed, source objects, background, instruction)
EXAMPLES = {
    "blue_ball_down": (11, [("blue", "ball", "down")], "gray", "add a red ball moving right"),
    "green_ball_left": (12, [("green", "ball", "left")], "black", "add a yellow ball that bounces"),
    "yellow_ball_up": (13, [("yellow", "ball", "up")], "white", "add a blue ball moving left"),
    "red_ball_bounce": (14, [("red", "ball", "bounce")], "gray", "add a green ball moving down"),
    "two_objects": (15, [("red", "ball", "right"), ("green", "ball", "down")], "black",
                    "add a yellow ball moving up"),
}


def example_scene(name: str) -> world.Scene:
    seed, triples, background, _ = EXAMPLES[name]
    return world.sample_scene(seed, triples=triples, background=background)


def scene_frames(scene: world.Scene) -> torch.Tensor:
    """A scene rendered directly: ``[F, 3, H, W]`` float32 in [0, 1] (no video compression)."""
    video, _ = world.render(scene)
    return torch.from_numpy(video).permute(0, 3, 1, 2).contiguous()


def example_frames(name: str) -> torch.Tensor:
    """The example rendered directly: ``[F, 3, H, W]`` in [0, 1] (no video compression)."""
    return scene_frames(example_scene(name))


def write_examples(folder: Path = EXAMPLES_DIR) -> list[Path]:
    from dynvfx.video import write_video

    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for name, (_, _, _, instruction) in EXAMPLES.items():
        scene = example_scene(name)
        paths.append(write_video(folder / f"{name}.mp4", example_frames(name), fps=8.0))
        meta = json.loads(scene.to_json()) | {"instruction": instruction}
        (folder / f"{name}.json").write_text(json.dumps(meta, indent=2))
    return paths


if __name__ == "__main__":
    for p in write_examples():
        print(p)
