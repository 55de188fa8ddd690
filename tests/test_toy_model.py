"""The shipped toy model: stock CogVideoX classes, loaded by one call, and it draws what it is asked."""

import dataclasses
import json
from pathlib import Path

import pytest
import torch

from diffusers import AutoencoderKLCogVideoX, CogVideoXDDIMScheduler, CogVideoXTransformer3DModel
from transformers import T5EncoderModel

from dynvfx.paths import TOY_MODEL_DIR
from dynvfx.pipeline import generate, video_spec
from dynvfx.toy import judge, world


def test_toy_pipeline_is_made_of_cogvideox_classes(toy_pipe):
    assert isinstance(toy_pipe.transformer, CogVideoXTransformer3DModel)
    assert isinstance(toy_pipe.vae, AutoencoderKLCogVideoX)
    assert isinstance(toy_pipe.text_encoder, T5EncoderModel)
    assert isinstance(toy_pipe.scheduler, CogVideoXDDIMScheduler)
    assert toy_pipe.transformer.config.use_rotary_positional_embeddings
    assert toy_pipe.scheduler.config.prediction_type == "v_prediction"
    spec = video_spec(toy_pipe)
    assert (spec.num_frames, spec.height, spec.width) == (world.FRAMES, world.SIZE, world.SIZE)
    size = sum(p.stat().st_size for p in TOY_MODEL_DIR.rglob("*") if p.is_file())
    assert size < 30 * 2**20
    record = json.loads((TOY_MODEL_DIR / "training.json").read_text())
    assert record["steps"] > 0 and record["seconds"]["dit"] > 0


def test_generated_videos_show_the_caption(toy_pipe):
    """Eight one-ball captions whose combinations were seen in training (the quality benchmark's ``seen_cases``):
    in most, the strict judge finds the background and the one ball of the colour (noise passes neither;
    docs/toy-model.md gives the quality benchmark's shares on 48 such captions)."""
    from dynvfx.lab.quality_bench import seen_cases

    singles, _ = seen_cases(8)
    assert not any((o.colour, o.motion, s.background) in world.HELD_OUT for s in singles for o in s.objects)
    judgements = [judge.judge_scene(generate(toy_pipe, s.caption, seed=i), s) for i, s in enumerate(singles)]
    assert sum(j.background_ok and j.present[0] for j in judgements) >= 5, judgements


def test_toy_models_get_the_toy_preset_and_generate_uses_its_guidance(toy_pipe, tmp_path, monkeypatch):
    """The toy model, and any folder with the toy world's prompt vocabulary (a training run's output), get the toy
    preset; ``generate`` samples with that preset's guidance unless told otherwise; other models get the paper's."""
    from dynvfx.config import DynVFXConfig
    from dynvfx.pipeline import preset_guidance

    toy = DynVFXConfig.toy()
    assert toy.guidance_scale != DynVFXConfig().guidance_scale == 6.0
    (tmp_path / "prompt_vocabulary.json").write_text((TOY_MODEL_DIR / "prompt_vocabulary.json").read_text())
    assert DynVFXConfig.for_model(str(tmp_path)) == toy == DynVFXConfig.for_model("toy")
    assert DynVFXConfig.for_model("THUDM/CogVideoX-5b") == DynVFXConfig()
    monkeypatch.chdir(tmp_path)  # a pipeline built in memory has no name: not the folder it happens to run in
    assert DynVFXConfig.for_model("") == DynVFXConfig()
    assert preset_guidance(toy_pipe) == toy.guidance_scale
    caption = "a red ball moves left on a black background"
    default, preset, paper = (generate(toy_pipe, caption, steps=3, guidance=g) for g in (None, toy.guidance_scale, 6.0))
    assert torch.equal(default, preset) and not torch.allclose(default, paper)


class _Conditioning(torch.nn.Module):
    """The shipped text encoder made order-free ("bag": it reads the caption's token ids sorted, so any two captions
    with the same words get the same states) or given positions ("position": a code of each token's index added)."""

    def __init__(self, inner, mode: str):
        super().__init__()
        self.inner, self.mode = inner, mode

    @property
    def dtype(self):
        return self.inner.dtype

    def forward(self, ids, *args, **kwargs):
        if self.mode == "bag":
            return self.inner(ids.sort(dim=1).values)
        h = self.inner(ids)[0]  # [B, L, D]
        pos = torch.arange(h.shape[1], dtype=h.dtype)[:, None] * torch.linspace(0.1, 1.0, h.shape[2])
        return (h + torch.sin(pos),)


def test_binding_probe_scores_zero_for_a_bag_of_words_and_not_for_positions(toy_pipe, monkeypatch):
    """The word-sensitivity benchmark's binding column (the two balls' motions exchanged in the caption) must be 0
    for conditioning that only sees the bag of words (its negative control) and above 0 once token positions
    reach the transformer, while the colour word is heard either way; the shipped model hears it."""
    import numpy as np

    from dynvfx.lab.words_bench import binding_scene, counterfactual, latent, ratios

    rng = np.random.default_rng(1)
    scene = binding_scene(rng)
    other = counterfactual(scene, rng, "binding")
    assert sorted(other.caption.split()) == sorted(scene.caption.split()) and other.caption != scene.caption
    assert [o.motion for o in other.objects] == [o.motion for o in scene.objects][::-1]
    single = world.sample_scene(rng, n_objects=1, held_out="exclude")
    with pytest.raises(ValueError, match="move differently"):
        counterfactual(world.Scene("gray", (single.objects[0], single.objects[0])), rng, "binding")
    x0, x0_single = latent(toy_pipe, scene), latent(toy_pipe, single)
    recolour = counterfactual(single, rng, "colour")
    measured = {}
    for mode in ("bag", "position", "shipped"):
        if mode != "shipped":
            monkeypatch.setattr(toy_pipe, "text_encoder", _Conditioning(toy_pipe.text_encoder, mode))
        measured[mode] = (ratios(toy_pipe, scene, x0, other, seed=0), ratios(toy_pipe, single, x0_single, recolour, 0))
        monkeypatch.undo()
    (bag_binding, bag_colour), (pos_binding, pos_colour) = measured["bag"], measured["position"]
    assert max(bag_binding) < 1e-4 and bag_colour[0] > 0.05
    assert pos_binding[0] > 0.01 and pos_colour[0] > 0.05
    # the shipped model hears the binding at high noise (a text encoder that passes a bag of words scores 0)
    assert measured["shipped"][0][0] > 0.1


def test_edit_benchmark_ranges_join_to_the_whole_run(toy_pipe, tmp_path):
    """Pairs edited in two ranges (``--first``), saved and joined, or in two processes side by side
    (``--processes``), score exactly as one run over all of them."""
    from dynvfx.config import DynVFXConfig
    from dynvfx.lab.edit_bench import EditRun, edit_benchmark, edit_benchmark_parallel, merge_runs
    from dynvfx.lab.reports import edit_report

    config = DynVFXConfig.toy().replace(num_inference_steps=3, inversion_steps=3, strengths=(0.7,))
    names, quiet = ["authors"], (lambda line: None)
    whole = edit_benchmark(toy_pipe, 2, names, config, log=quiet)
    head, tail = edit_benchmark(toy_pipe, 1, names, config, log=quiet), \
        edit_benchmark(toy_pipe, 2, names, config, log=quiet, first=1)
    assert (head.first, len(head.ceiling), tail.first, len(tail.ceiling)) == (0, 1, 1, 1)
    head.save(tmp_path / "head.json"), tail.save(tmp_path / "tail.json")
    joined = merge_runs([EditRun.load(tmp_path / "tail.json"), EditRun.load(tmp_path / "head.json")])
    assert joined.results == whole.results and joined.ceiling == whole.ceiling and joined.config == config
    def rows(run):  # the table's rows without the seconds column
        return [line.rsplit("|", 2)[0] for line in edit_report(run).splitlines() if line.startswith("| ")]

    assert rows(joined) == rows(whole) and len(rows(whole)) == 2
    assert "pairs 2 to 2" in edit_report(tail)
    assert edit_report(joined).endswith("over the 2 joined runs") and "joined" not in edit_report(whole)
    side_by_side = edit_benchmark_parallel("toy", 2, names, config, processes=2, threads=torch.get_num_threads())
    assert side_by_side.joined == 2 and rows(side_by_side) == rows(whole)
    with pytest.raises(ValueError, match="not consecutive"):
        merge_runs([head, head])
    with pytest.raises(ValueError, match="differ"):
        merge_runs([head, dataclasses.replace(tail, config=config.replace(guidance_scale=6.0))])
    both = dataclasses.replace(head, results=head.results | {"other": head.results["authors"]},
                               seconds=head.seconds | {"other": head.seconds["authors"]})
    assert list(merge_runs([both, tail]).results) == ["authors"]  # joined on the variants both runs have
    with pytest.raises(ValueError, match="share no variant"):
        merge_runs([dataclasses.replace(both, results={"other": both.results["other"]}), tail])


_POOL_OWNER = '''
import concurrent.futures, multiprocessing, os, sys, time
from dynvfx.lab.pool import worker_pool

if __name__ == "__main__":  # the benchmark's pool, or (the control) a plain one
    pool = worker_pool(1) if sys.argv[1] == "follow" else concurrent.futures.ProcessPoolExecutor(
        1, mp_context=multiprocessing.get_context("spawn"))
    print(pool.submit(os.getpid).result(), flush=True)
    pool.submit(time.sleep, 120)  # a long range of pairs
    time.sleep(120)
'''


def _running(pid: int) -> bool:
    """Is ``pid`` a live process (not gone, not a zombie waiting for its new parent to reap it)?"""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
    except FileNotFoundError:
        return False


@pytest.mark.skipif(not Path("/proc/self/stat").exists(), reason="reads /proc (Linux)")
@pytest.mark.parametrize("follow", [True, False])
def test_benchmark_workers_end_when_their_parent_is_killed(tmp_path, follow):
    """``edit_benchmark_parallel``'s pool (:func:`worker_pool`): a parent killed by a signal skips the pool's
    shutdown, yet its worker ends (:func:`follow_parent`); in a plain pool (the control) it edits on as an orphan."""
    import os
    import signal
    import subprocess
    import sys
    import time

    script = tmp_path / "owner.py"
    script.write_text(_POOL_OWNER)
    owner = subprocess.Popen([sys.executable, str(script), "follow" if follow else "plain"], stdout=subprocess.PIPE,
                             text=True)
    worker = int(owner.stdout.readline())
    assert _running(worker)
    owner.kill(), owner.wait()
    for _ in range(100 if follow else 30):  # up to 10 s to go (the watcher looks every second); the control 3 s
        if not _running(worker):
            break
        time.sleep(0.1)
    alive = _running(worker)
    if alive:
        os.kill(worker, signal.SIGKILL)
    assert alive is not follow
