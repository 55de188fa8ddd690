"""The training script runs end to end for a few steps, exports a loadable pipeline, and resumes."""

import json

import pytest
import torch

from dynvfx.toy import train


def test_train_few_steps_export_and_resume(tmp_path):
    work, out = tmp_path / "work", tmp_path / "model"
    common = ["--workdir", str(work), "--out", str(out), "--vae-steps", "2", "--vae-batch", "2", "--videos", "6",
              "--batch", "2", "--checkpoint-every", "1", "--threads", "1"]
    assert train.main(common + ["--steps", "2"]) == 0
    record = json.loads((out / "training.json").read_text())
    assert record["steps"] == 2 and set(record["seconds"]) == {"vae", "latents", "dit"}
    vocabulary = json.loads((out / "prompt_vocabulary.json").read_text())
    assert vocabulary["objects"] == ["ball"]  # captions name one object noun; the tokenizer keeps the old shapes
    assert {"ball", "square", "triangle"} <= set(vocabulary["words"])
    configs = "".join(f.read_text() for f in out.rglob("*.json"))
    assert str(tmp_path) not in configs  # no path of the training machine is shipped
    first = torch.load(work / "dit.pt", weights_only=False)["model"]
    assert train.main(common + ["--steps", "4"]) == 0  # resumes at step 2, not from scratch
    state = json.loads((work / "state.json").read_text())
    assert state["dit_step"] == 4
    second = torch.load(work / "dit.pt", weights_only=False)["model"]
    changed = [k for k in first if not torch.equal(first[k], second[k])]
    assert changed, "two more steps changed the weights"

    # the checkpoint is lost (a new machine): continue from the exported pipeline
    import shutil

    shutil.rmtree(work)
    assert train.main(common + ["--steps", "5", "--warm-start"]) == 0
    assert json.loads((out / "training.json").read_text())["steps"] == 5

    from dynvfx.pipeline import generate, load_pipeline

    pipe = load_pipeline(str(out))
    frames = generate(pipe, "a red ball moves right on a gray background", steps=2)
    assert frames.shape == (17, 3, 48, 48)


def test_high_noise_share_draws_that_share_of_the_batch_from_the_noisy_steps():
    """--high-noise-share puts that share of each batch on timesteps >= --high-noise-from (the rest uniform)."""
    seen = []

    class Spy(torch.nn.Module):
        def forward(self, hidden_states, encoder_hidden_states, timestep, image_rotary_emb, return_dict):
            seen.append(timestep.clone())
            return (torch.zeros_like(hidden_states),)

    nets = torch.nn.ModuleDict({"transformer": Spy(), "text_encoder": torch.nn.Embedding(8, 4)})
    nets["text_encoder"].forward = lambda ids: (torch.zeros(ids.shape[0], ids.shape[1], 4),)
    latents, ids = torch.zeros(4, 2, 3, 2, 2), torch.ones(4, 3, dtype=torch.long)
    empty = torch.zeros(3, dtype=torch.long)
    alphas = torch.linspace(1, 0, 1000)
    for share in (0.0, 0.75):
        seen.clear()
        for step in range(20):
            train.batch_loss(nets, torch.Generator().manual_seed(step), latents, ids, empty, 8, 0.0, alphas, None,
                             share, 900)
        t = torch.stack(seen)  # [20, 8]
        high = (t[:, :6] >= 900).float().mean().item()
        assert (high == 1.0) if share else high < 0.5  # uniform: ~10 % of draws land in [900, 1000)
        assert (t[:, 6:] < 900).any()  # the rest stays uniform over all timesteps


def test_background_dropout_trains_that_share_of_captions_without_their_background():
    """--background-dropout swaps in the caption without "on a <background> background" for that share."""
    from dynvfx.toy import world
    from dynvfx.toy.text import build_tokenizer

    caption = "a red ball moves left and a blue ball bounces on a gray background"
    assert world.drop_background(caption) == "a red ball moves left and a blue ball bounces"
    with pytest.raises(ValueError, match="background"):
        world.drop_background("a red ball moves left")
    ids, empty = train.caption_ids(build_tokenizer(), [caption])
    bare = train.caption_ids(build_tokenizer(), [world.drop_background(caption)])[0]
    assert not torch.equal(ids, bare)
    seen = []

    class Spy(torch.nn.Module):
        def forward(self, hidden_states, encoder_hidden_states, timestep, image_rotary_emb, return_dict):
            return (torch.zeros_like(hidden_states),)

    def encode(text):
        seen.append(text.clone())
        return (torch.zeros(text.shape[0], text.shape[1], 4),)

    nets = torch.nn.ModuleDict({"transformer": Spy(), "text_encoder": torch.nn.Identity()})
    nets["text_encoder"].forward = encode
    latents, alphas = torch.zeros(1, 2, 3, 2, 2), torch.linspace(1, 0, 1000)
    for share in (0.0, 0.4):
        seen.clear()
        for step in range(25):
            train.batch_loss(nets, torch.Generator().manual_seed(step), latents, ids, empty, 8, 0.0, alphas, None,
                             bare_ids=bare, background_dropout=share)
        rows = torch.cat(seen)  # [200, L]: every row is the caption with or without its background
        dropped = (rows == bare).all(1).float().mean().item()
        assert ((rows == ids).all(1) | (rows == bare).all(1)).all()
        assert (dropped == 0.0) if share == 0 else 0.3 < dropped < 0.5
