"""The training script runs end to end for a few steps, exports a loadable pipeline, and resumes."""

import json

import pytest
import torch

from dynvfx.lab import train


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


def test_parallel_rendering_encodes_the_same_latents(tmp_path):
    import shutil

    from dynvfx.paths import TOY_MODEL_DIR

    latents = []
    for workers in (1, 2):
        work = tmp_path / f"w{workers}"
        work.mkdir()
        shutil.copytree(TOY_MODEL_DIR / "vae", work / "vae")
        args = train.parse_args(["--workdir", str(work), "--videos", "5", "--workers", str(workers)])
        state = train.State(work)
        assert train.encode_videos(args, state, train.Deadline(None))
        latents.append(torch.load(work / "latents_0000.pt", weights_only=False))
    assert latents[0]["latents"].shape[0] == 5 and latents[0]["latents"].abs().sum() > 0
    assert torch.equal(latents[0]["latents"], latents[1]["latents"])
    assert latents[0]["captions"] == latents[1]["captions"] and len(set(latents[0]["captions"])) > 1


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


def _two_ball_captions() -> list[str]:
    from dynvfx.toy import world

    pairs = [((c1, m1), (c2, m2)) for (c1, m1, b) in sorted(world.TRAINING_COMBINATIONS) if b == "black"
             for (c2, m2, b2) in sorted(world.TRAINING_COMBINATIONS) if b2 == "black" and c1 != c2 and m1 != m2]
    return [world.caption_for("black", [(c1, "ball", m1), (c2, "ball", m2)]) for (c1, m1), (c2, m2) in pairs]


def test_binding_labels_mark_each_colour_with_its_motion_and_each_motion_with_its_colour():
    from dynvfx.toy import world
    from dynvfx.toy.text import build_tokenizer

    caption = "a red ball moves left and a blue ball bounces on a gray background"
    labels = train.binding_labels(caption)
    motion, colour = world.MOTIONS.index, lambda c: len(world.MOTIONS) + list(world.COLOURS).index(c)
    tokens = build_tokenizer().convert_ids_to_tokens(build_tokenizer()(caption).input_ids)
    marked = {tokens[i].lstrip("\u2581"): y for i, y in enumerate(labels) if y >= 0}
    assert marked == {"red": motion("left"), "left": colour("red"), "blue": motion("bounce"),
                      "bounces": colour("blue")}
    exchanged = train.binding_labels(world.exchanged_motions(
        "a red ball moves left and a blue ball moves up on a gray background"))
    assert exchanged[1] == motion("up") and exchanged[7] == motion("left")  # same words, other labels
    assert len(labels) == len(train.binding_labels("")) and set(train.binding_labels("")) == {-100}


def test_text_binding_term_adds_the_probe_loss_on_kept_captions_only():
    from dynvfx.toy.text import build_tokenizer

    captions = _two_ball_captions()[:2]
    ids, empty = train.caption_ids(build_tokenizer(), captions)
    labels = torch.tensor([train.binding_labels(c) for c in captions])

    class Transformer(torch.nn.Module):
        def forward(self, hidden_states, encoder_hidden_states, timestep, image_rotary_emb, return_dict):
            return (hidden_states * 0,)

    emb = torch.randn(32, 24, 128)  # a fixed state per token id
    nets = torch.nn.ModuleDict({"transformer": Transformer(), "text_encoder": torch.nn.Identity(),
                                "binding_probe": torch.nn.Linear(128, train.BINDING_CLASSES)})
    nets["text_encoder"].forward = lambda text: (emb[text % 32, torch.arange(text.shape[1])],)
    latents, alphas = torch.randn(2, 2, 3, 2, 2), torch.linspace(1, 0, 1000)

    def loss(dropout, weight):
        return train.batch_loss(nets, torch.Generator().manual_seed(0), latents, ids, empty, 4, dropout, alphas,
                                None, labels=labels, text_binding_weight=weight).item()

    g = torch.Generator().manual_seed(0)
    idx = torch.randint(0, 2, (4,), generator=g)
    expected = train.binding_probe_loss(nets["binding_probe"], nets["text_encoder"](ids[idx])[0], labels[idx])
    assert loss(0.0, 1.0) - loss(0.0, 0.0) == pytest.approx(expected.item(), rel=1e-4)
    assert loss(1.0, 1.0) == pytest.approx(loss(1.0, 0.0))  # every caption dropped: nothing to read


def test_rebind_text_encoder_makes_a_bag_of_words_encoder_carry_binding():
    """A T5 whose large query/key projections saturate its attention on word content (as the trained toy T5's did)
    gives states that are a bag of words: a linear probe can only guess which ball each word belongs to in two-ball
    captions, and training cannot move it (the softmax passes no gradient). Rebinding re-initialises its attention
    and trains it so the probe reads the binding, its states kept close."""
    from dynvfx.toy import model as toy_model
    from dynvfx.toy.text import build_tokenizer

    torch.manual_seed(0)
    tok = build_tokenizer()
    encoder = toy_model.build_text_encoder(len(tok))
    for block in encoder.encoder.block:
        attention = block.layer[0].SelfAttention
        for proj in (attention.q, attention.k):
            torch.nn.init.normal_(proj.weight, std=1.0)
    captions = _two_ball_captions()
    ids, _ = train.caption_ids(tok, captions)
    labels = torch.tensor([train.binding_labels(c) for c in captions])

    def probe_accuracy(states):
        probe = torch.nn.Linear(128, train.BINDING_CLASSES)
        opt = torch.optim.Adam(probe.parameters(), lr=1e-2)
        for _ in range(150):
            loss = train.binding_probe_loss(probe, states, labels)
            opt.zero_grad(), loss.backward(), opt.step()
        known = labels >= 0
        return (probe(states).argmax(-1)[known] == labels[known]).float().mean().item()

    with torch.no_grad():
        bag = encoder(ids)[0]
    assert probe_accuracy(bag) < 0.8  # half the words' partner is a coin flip for a bag of words
    result = train.rebind_text_encoder(encoder, torch.nn.Linear(128, train.BINDING_CLASSES), ids, labels, 300,
                                       keep_weight=10.0, batch=32)
    with torch.no_grad():
        rebound = encoder(ids)[0]
    assert result["probe_accuracy"] > 0.95 and probe_accuracy(rebound) > 0.95
    assert result["state_change"] < 0.5


def test_fine_tune_with_a_rebound_text_encoder_records_it_and_exports_no_probe(tmp_path):
    from dynvfx.paths import TOY_MODEL_DIR

    with pytest.raises(SystemExit):  # nothing to rebind without a loaded encoder
        train.parse_args(["--rebind-text-steps", "3"])

    work, out = tmp_path / "work", tmp_path / "model"
    assert train.main(["--workdir", str(work), "--out", str(out), "--init-from", str(TOY_MODEL_DIR), "--videos", "6",
                       "--batch", "2", "--steps", "1", "--threads", "1", "--rebind-text-steps", "3",
                       "--text-binding-weight", "0.1"]) == 0
    record = json.loads((out / "training.json").read_text())
    assert set(record["rebind_text"]) == {"probe_accuracy", "state_change"} and record["seconds"]["rebind_text"] > 0
    assert record["settings"]["text_binding_weight"] == 0.1 and "init_from" in record
    from safetensors.torch import load_file

    names = load_file(out / "text_encoder" / "model.safetensors")
    assert names and not any("probe" in k for k in names)  # the probe is a training aid, not part of the model
    shipped = load_file(TOY_MODEL_DIR / "text_encoder" / "model.safetensors")
    q = "encoder.block.0.layer.0.SelfAttention.q.weight"
    assert not torch.allclose(names[q], shipped[q])  # re-initialised, then trained


def test_gpu_script_runs_end_to_end_on_cpu(tmp_path):
    """``scripts/train_gpu.sh`` (what a GPU session runs), shrunk to seconds on the CPU: encode, probe, train, pack.
    A fixed step count (STEPS), not a time budget, so a busy machine runs the same steps, only slower."""
    import os
    import subprocess
    import sys
    import tarfile

    from dynvfx.paths import REPO_ROOT

    env = dict(os.environ, PYTHON=sys.executable, DEVICE="cpu", VIDEOS="12", BATCH="2", WORKERS="2", PROBE_STEPS="2",
               LRS="5e-4 1e-3", ROOT=str(tmp_path / "w"), DEST=str(tmp_path / "out"), OMP_NUM_THREADS="1")
    too_short = subprocess.run(["bash", "scripts/train_gpu.sh", "0"], cwd=REPO_ROOT, env=env, capture_output=True,
                               text=True)
    assert too_short.returncode != 0 and "fits no training step" in too_short.stderr
    # the same ROOT again, with 2 steps: the encoded videos are reused
    done = subprocess.run(["bash", "scripts/train_gpu.sh"], cwd=REPO_ROOT, env=env | {"STEPS": "2"},
                          capture_output=True, text=True)
    assert done.returncode == 0, done.stderr[-2000:]
    assert "training 2 steps (STEPS)" in done.stdout
    for i, lr in enumerate((5e-4, 1e-3)):
        with tarfile.open(tmp_path / "out" / f"run{i}.tar") as tar:
            assert {"transformer/diffusion_pytorch_model.safetensors", "text_encoder/model.safetensors"} <= set(
                tar.getnames())
            record = json.load(tar.extractfile("training.json"))
        assert record["settings"]["lr"] == lr and record["settings"]["videos"] == 12 and record["steps"] == 2
        assert record["init_from"]["steps"] > 0 and "latents" in record["seconds"]


def _recipe():
    import importlib.util

    from dynvfx.paths import REPO_ROOT

    spec = importlib.util.spec_from_file_location("train_recipe", REPO_ROOT / "scripts" / "train_recipe.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_the_recipe_lists_every_recorded_stage(capsys):
    """``make train`` replays data/models/toy/training.json: every stage, the GPU ones marked, a stopped run stopped."""
    from dynvfx.paths import TOY_MODEL_DIR

    recipe = _recipe()
    chain = recipe.stages(json.loads((TOY_MODEL_DIR / "training.json").read_text()))
    assert recipe.main(["--dry-run"]) == 0
    out = capsys.readouterr().out
    assert out.count("\nstage ") + out.startswith("stage ") == len(chain) > 1
    assert out.count("(GPU;") == sum(recipe.on_gpu(s) for s in chain)
    for k, stage in enumerate(chain, start=1):
        line = out.split(f"stage {k}/{len(chain)}")[1].split("\n")[1]
        assert f"--steps {stage['settings']['steps']} " in line and f"--lr {stage['settings']['lr']} " in line
        assert ("--init-from" in line) == (k > 1)
        assert ("--stop-at" in line) == (stage["steps"] < stage["settings"]["steps"])


def test_the_recipe_runs_its_stages_in_order_and_resumes(tmp_path, capsys, monkeypatch):
    """Two stages shrunk to seconds: the second fine-tunes the first; a rerun skips both; a GPU stage on a machine
    without one stops with what to do."""
    recipe = _recipe()
    tiny = ["videos=6", "steps=2", "vae_steps=2", "vae_batch=2", "batch=2", "checkpoint_every=1", "threads=1",
            "workers=1", "device=cpu"]
    assert recipe.main(["--dir", str(tmp_path), "--stages", "1-2", "--set", *tiny]) == 0
    second = json.loads((tmp_path / "stage2" / "out" / "training.json").read_text())
    assert second["steps"] == 2 and second["init_from"]["steps"] == 2
    capsys.readouterr()
    assert recipe.main(["--dir", str(tmp_path), "--stages", "1-2", "--set", *tiny]) == 0
    assert capsys.readouterr().out.count("done already") == 2
    monkeypatch.setattr(recipe, "_cuda", lambda: False)
    gpu_stage = next(k for k, s in enumerate(recipe.stages(json.loads(recipe.DEFAULT_RECORD.read_text())), 1)
                     if recipe.on_gpu(s))
    assert recipe.main(["--dir", str(tmp_path), "--stages", str(gpu_stage)]) == 1
    assert "on a GPU machine" in capsys.readouterr().err
