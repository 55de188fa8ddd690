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


def test_binding_term_ranks_the_exchanged_caption_below_the_true_one():
    """--binding-weight: on videos whose caption has an exchanged-motion twin (both combinations seen in training),
    a ranking term is positive while the twin predicts as well as the true caption (a bag-of-words model) and
    vanishes once it predicts clearly worse."""
    from dynvfx.toy import world
    from dynvfx.toy.text import build_tokenizer

    caption = "a red ball moves left and a blue ball moves up on a black background"
    assert world.exchanged_motions(caption) == "a red ball moves up and a blue ball moves left on a black background"
    assert world.exchanged_motions("a red ball moves left on a black background") is None
    assert world.exchanged_motions("a red ball moves up and a blue ball moves up on a black background") is None
    held = sorted(world.HELD_OUT)[0]  # an exchange that would name a held-out combination is not made
    seen = next(m for m in world.MOTIONS if m != held[1] and (held[0], m, held[2]) in world.TRAINING_COMBINATIONS)
    other = next(c for c in world.COLOURS if c != held[0])
    assert world.exchanged_motions(world.caption_for(held[2], [(held[0], "ball", seen), (other, "ball", held[1])])) \
        is None
    tok = build_tokenizer()
    ids, empty = train.caption_ids(tok, [caption, "a red ball moves left on a black background"])
    swapped = train.caption_ids(tok, [world.exchanged_motions(caption), ""])[0]
    swapped[1] = -1  # the one-ball video has no twin

    class Transformer(torch.nn.Module):  # predicts v from the text: a fixed map of the summed token states
        def forward(self, hidden_states, encoder_hidden_states, timestep, image_rotary_emb, return_dict):
            return (hidden_states * 0 + encoder_hidden_states.sum((1, 2)).view(-1, 1, 1, 1, 1),)

    def loss_with(encoder):
        nets = torch.nn.ModuleDict({"transformer": Transformer(), "text_encoder": torch.nn.Identity()})
        nets["text_encoder"].forward = encoder
        latents, alphas = torch.zeros(2, 2, 3, 2, 2), torch.linspace(1, 0, 1000)
        plain = train.batch_loss(nets, torch.Generator().manual_seed(0), latents, ids, empty, 8, 0.0, alphas, None)
        ranked = train.batch_loss(nets, torch.Generator().manual_seed(0), latents, ids, empty, 8, 0.0, alphas, None,
                                  swapped_ids=swapped, binding_weight=1.0, binding_margin=0.1)
        return plain.item(), ranked.item()

    bag = lambda text: ((text.float() * 0.01).sort(1).values.unsqueeze(-1),)  # order-free
    # word order counts: the true caption's exact sequence predicts v = 0 (its best guess), anything else v = 3
    ordered = lambda text: ((text != ids[0]).any(1).float().view(-1, 1, 1) * 3,)
    plain, ranked = loss_with(bag)
    assert ranked > plain + 0.01  # the twin predicts exactly as well: the term is at its full margin
    plain, ranked = loss_with(ordered)
    assert ranked == pytest.approx(plain)  # the twin predicts far worse: nothing to add
