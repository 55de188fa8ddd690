"""The training script runs end to end for a few steps, exports a loadable pipeline, and resumes."""

import json

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
