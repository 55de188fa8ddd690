"""The GPU code path on a CPU: memory modes with accelerate's offload hooks and a CPU execution device.

Under sequential offload every module's ``.device`` reads ``meta`` between calls, so code that places inputs with
``module.device`` (the cause of the "Input type (torch.HalfTensor) and weight type (torch.cuda.HalfTensor)" error
under model offload on a GPU) fails here too; inputs must go to the pipeline's execution device.
"""

import pytest
import torch
from accelerate import cpu_offload

from conftest import tiny_pipeline
from dynvfx.inversion import ddim_invert, model_fingerprint
from dynvfx.pipeline import (apply_memory_mode, decode_latents, encode_text, encode_video, execution_device,
                             memory_mode)
from dynvfx.sampling import predict_v

SIZE = dict(frames=9, height=32, width=48)


def _run(pipe, frames):
    """Encode, invert (4 steps), decode and encode a prompt: the stages that place inputs themselves."""
    z = encode_video(pipe, frames)
    inv = ddim_invert(pipe, z, num_steps=4, inversion_steps=4, progress=False)
    return z.cpu(), inv.latents, decode_latents(pipe, inv.latents[0]), encode_text(pipe, ["a red ball"]).cpu()


@pytest.fixture(scope="module")
def reference():
    frames = torch.rand(9, 3, 32, 48, generator=torch.Generator().manual_seed(0))
    pipe = tiny_pipeline(**SIZE)
    return frames, _run(pipe, frames), model_fingerprint(pipe)


def _sequential_on_cpu(pipe):
    """What ``enable_sequential_cpu_offload`` does, with a CPU execution device (diffusers names it ``cpu:0``,
    which accelerate's per-layer hooks mishandle on a CPU): weights wait on ``meta``, stream in per layer."""
    for module in (pipe.text_encoder, pipe.transformer, pipe.vae):
        cpu_offload(module, torch.device("cpu"))
    return pipe


@pytest.mark.parametrize("mode", ["full", "lean", "offload", "sequential"])
def test_memory_modes_give_the_same_numbers(mode, reference):
    frames, expected, fingerprint = reference
    pipe = tiny_pipeline(**SIZE)
    if mode == "sequential":
        _sequential_on_cpu(pipe)
        assert pipe.vae.device.type == "meta"  # what module.device says under sequential offload
    else:
        apply_memory_mode(pipe, mode, "cpu")
        assert memory_mode(pipe) == mode
    assert execution_device(pipe).type == "cpu"
    for got, want in zip(_run(pipe, frames), expected):
        torch.testing.assert_close(got, want, rtol=1e-5, atol=1e-5)
    assert model_fingerprint(pipe) == fingerprint  # the inversion cache is shared between modes


@pytest.mark.parametrize("mode", ["lean", "offload"])
def test_text_encoder_is_off_the_device_while_sampling(mode):
    """The offload hooks onload to ``cpu:0`` and offload to ``cpu``: the text encoder must be offloaded whenever
    the transformer or the VAE runs, and the VAE hook must fire for ``vae.encode`` / ``vae.decode``."""
    pipe = tiny_pipeline(**SIZE)
    apply_memory_mode(pipe, mode, "cpu")
    where = {}
    for name in ("text_encoder", "transformer", "vae"):
        module = getattr(pipe, name)
        real_to = module.to

        def spy(*args, _name=name, _to=real_to, **kwargs):
            target = args[0] if args else kwargs.get("device")
            if isinstance(target, (str, torch.device)):
                where[_name] = "device" if torch.device(target).index is not None else "cpu"
            return _to(*args, **kwargs)

        module.to = spy
    seen = []
    pipe.transformer.register_forward_pre_hook(lambda m, a: seen.append(("transformer", where.get("text_encoder"))))
    pipe.vae.decoder.register_forward_pre_hook(lambda m, a: seen.append(("vae", where.get("text_encoder"))))
    frames = torch.rand(9, 3, 32, 48)
    z = encode_video(pipe, frames)
    if mode == "offload":
        assert where.get("vae") == "device"  # vae.encode triggered the VAE's hook
    text = encode_text(pipe, ["a red ball"])
    assert where["text_encoder"] == "cpu"  # offloaded right after encoding
    predict_v(pipe, z, text, 999, None)
    decode_latents(pipe, z)
    encode_text(pipe, [""])  # mid-run, as refine() does after the inversion
    predict_v(pipe, z, text, 999, None)
    assert [w for _, w in seen] == ["cpu"] * len(seen) and len(seen) == 3, seen


def test_unknown_memory_mode():
    from dynvfx.errors import DynVFXError
    from dynvfx.pipeline import load_pipeline

    with pytest.raises(DynVFXError, match="unknown memory mode"):
        load_pipeline("toy", memory="tiny")


def test_default_dtypes_follow_the_model_cards_and_keep_toy_models_in_float32(tmp_path):
    """On a GPU CogVideoX-5B loads in bfloat16 and 2B in float16; a toy-world model (it ships its prompt
    vocabulary) stays float32 on every device, and a saved folder without one counts as a real model."""
    from dynvfx.paths import PROMPT_VOCABULARY_FILE, TOY_MODEL_DIR
    from dynvfx.pipeline import default_dtype

    assert default_dtype("THUDM/CogVideoX-5b", "cuda") == torch.bfloat16
    assert default_dtype("THUDM/CogVideoX-2b", "cuda:0") == torch.float16
    assert default_dtype(str(TOY_MODEL_DIR), "cuda") == torch.float32
    assert {default_dtype(m, "cpu") for m in ("THUDM/CogVideoX-5b", str(TOY_MODEL_DIR))} == {torch.float32}
    assert default_dtype(str(tmp_path), "cuda") == torch.bfloat16  # a fine-tuned 5B saved without a vocabulary
    (tmp_path / PROMPT_VOCABULARY_FILE).write_text("{}")
    assert default_dtype(str(tmp_path), "cuda") == torch.float32
