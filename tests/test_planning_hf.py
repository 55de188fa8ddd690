"""The local-VLM planner with a tiny random Qwen2.5-VL built offline (tokenizer, processor and weights).

The model talks nonsense, so these tests check the plumbing: the chat template puts the key frames in as
image tokens with pixel values, replies are retried with feedback, and a scripted ``generate`` shows that
valid JSON wrapped in fences or prose is accepted.
"""

from __future__ import annotations

import json

import pytest
import torch

transformers = pytest.importorskip("transformers")

from dynvfx.planning import PlanningError, plan_edit  # noqa: E402
from dynvfx.planning.hf_backend import plan_hf  # noqa: E402

INSTRUCTION = "a paper boat drifts across the pond"
SCENE = {
    "source_caption": "A still pond with reeds at the far bank.",
    "conversation": [
        {"speaker": "Assistant", "text": "The boat enters from the left on the water line."},
        {"speaker": "artist", "text": "Add a faint reflection and small ripples behind it."},
    ],
    "composited_caption": "A small paper boat drifts across a still pond with reeds, leaving faint ripples.",
}
OBJECTS = {"objects_orig": ["pond", "reeds"], "objects_edit": ["paper boat"]}
SPECIALS = ["<|endoftext|>", "<|im_start|>", "<|im_end|>", "<|vision_start|>", "<|vision_end|>",
            "<|image_pad|>", "<|video_pad|>"]

# Our own minimal Qwen-style chat template: images become <|vision_start|><|image_pad|><|vision_end|>,
# which the processor expands to one pad token per merged image patch.
CHAT_TEMPLATE = (
    "{% for m in messages %}<|im_start|>{{ m['role'] }}\n"
    "{% if m['content'] is string %}{{ m['content'] }}{% else %}{% for part in m['content'] %}"
    "{% if part['type'] == 'image' %}<|vision_start|><|image_pad|><|vision_end|>"
    "{% elif part['type'] == 'text' %}{{ part['text'] }}{% endif %}{% endfor %}{% endif %}"
    "<|im_end|>\n{% endfor %}{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}"
)


def byte_level_tokenizer():
    """A BPE tokenizer with the 256 byte symbols and Qwen's special tokens, no merges: no download."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers

    alphabet = sorted(pre_tokenizers.ByteLevel.alphabet())
    tok = Tokenizer(models.BPE(vocab={c: i for i, c in enumerate(alphabet)}, merges=[]))
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    tok.add_special_tokens(SPECIALS)
    return transformers.PreTrainedTokenizerFast(tokenizer_object=tok, eos_token="<|im_end|>", pad_token="<|endoftext|>")


def tiny_processor():
    from transformers.models.qwen2_vl.image_processing_qwen2_vl import Qwen2VLImageProcessor
    from transformers.models.qwen2_vl.video_processing_qwen2_vl import Qwen2VLVideoProcessor

    images = Qwen2VLImageProcessor(min_pixels=28 * 28, max_pixels=56 * 56 * 2)
    return transformers.Qwen2_5_VLProcessor(
        image_processor=images, tokenizer=byte_level_tokenizer(), video_processor=Qwen2VLVideoProcessor(),
        chat_template=CHAT_TEMPLATE,
    )


def tiny_model(tokenizer):
    ids = dict(zip(SPECIALS, tokenizer.convert_tokens_to_ids(SPECIALS)))
    text = dict(vocab_size=len(tokenizer), hidden_size=32, intermediate_size=64, num_hidden_layers=1,
                num_attention_heads=2, num_key_value_heads=1, max_position_embeddings=8192,
                rope_scaling={"type": "mrope", "mrope_section": [2, 3, 3]},
                bos_token_id=ids["<|endoftext|>"], eos_token_id=ids["<|im_end|>"], pad_token_id=ids["<|endoftext|>"])
    vision = dict(depth=1, hidden_size=32, intermediate_size=64, num_heads=2, out_hidden_size=32,
                  fullatt_block_indexes=[0], window_size=56)
    config = transformers.Qwen2_5_VLConfig(
        text_config=text, vision_config=vision, image_token_id=ids["<|image_pad|>"],
        video_token_id=ids["<|video_pad|>"], vision_start_token_id=ids["<|vision_start|>"],
        vision_end_token_id=ids["<|vision_end|>"],
    )
    config._name_or_path = "tiny-random-qwen2.5-vl"
    torch.manual_seed(0)
    return transformers.AutoModelForImageTextToText.from_config(config).eval()


@pytest.fixture(scope="module")
def vlm_and_processor():
    processor = tiny_processor()
    return tiny_model(processor.tokenizer), processor


@pytest.fixture
def frames() -> torch.Tensor:
    """``[7, 3, 40, 60]`` float in [0, 1]."""
    return torch.rand(7, 3, 40, 60, generator=torch.Generator().manual_seed(1))


class Recorder:
    """Wraps ``vlm.generate``: records each call's inputs; optionally replaces the output with scripted text."""

    def __init__(self, vlm, processor, script=None):
        self.vlm, self.processor, self.script = vlm, processor, list(script or [])
        self.calls, self.replies = [], []
        self.real_generate = vlm.generate

    def __call__(self, **inputs):
        self.calls.append(inputs)
        out = self.real_generate(**inputs)
        prompt_len = inputs["input_ids"].shape[1]
        if self.script:
            ids = self.processor.tokenizer(self.script.pop(0), add_special_tokens=False)["input_ids"]
            out = torch.cat([inputs["input_ids"], torch.tensor([ids])], dim=1)
        self.replies.append(self.processor.batch_decode(out[:, prompt_len:], skip_special_tokens=True)[0].strip())
        return out

    def prompt(self, i: int) -> str:
        return self.processor.tokenizer.decode(self.calls[i]["input_ids"][0])


def test_junk_replies_are_retried_then_raise_with_raw_reply(vlm_and_processor, frames, monkeypatch):
    vlm, processor = vlm_and_processor
    rec = Recorder(vlm, processor)
    monkeypatch.setattr(vlm, "generate", rec)
    with pytest.raises(PlanningError) as info:
        plan_hf(frames, INSTRUCTION, keyframes=[0, 3, 6], vlm=vlm, processor=processor,
                max_attempts=2, max_new_tokens=6)
    assert len(rec.calls) == 2
    assert "after 2 attempt" in str(info.value)
    assert info.value.raw_reply == rec.replies[-1]

    first = rec.calls[0]
    grid = first["image_grid_thw"]
    assert grid.shape == (3, 3)  # one row per key frame
    assert first["pixel_values"].shape[0] == int(grid.prod(dim=1).sum())
    pad_id = processor.tokenizer.convert_tokens_to_ids("<|image_pad|>")
    assert int((first["input_ids"] == pad_id).sum()) == int(grid.prod(dim=1).sum()) // 4  # 2x2 patch merge
    prompt = rec.prompt(0)
    assert INSTRUCTION in prompt and "composited" in prompt and "<|im_start|>system" in prompt
    assert prompt.rstrip().endswith("<|im_start|>assistant")
    # the second try quotes the problem back to the model
    assert "could not be used" in rec.prompt(1) and "could not be used" not in prompt


def test_fenced_and_wordy_json_is_accepted(vlm_and_processor, frames, monkeypatch):
    vlm, processor = vlm_and_processor
    script = ["Here is my plan:\n```json\n" + json.dumps(SCENE) + "\n```",
              "Sure. " + json.dumps(OBJECTS) + " Hope that helps!"]
    rec = Recorder(vlm, processor, script)
    monkeypatch.setattr(vlm, "generate", rec)
    plan = plan_edit(frames, INSTRUCTION, backend="hf", cache_dir=False, vlm=vlm, processor=processor,
                     max_new_tokens=1)
    assert plan.composited_caption == SCENE["composited_caption"]
    assert plan.conversation[0].speaker == "assistant"  # normalised from "Assistant"
    assert plan.objects_orig == ["pond", "reeds"] and plan.objects_edit == ["paper boat"]
    assert (plan.backend, plan.model, plan.keyframes) == ("hf", "tiny-random-qwen2.5-vl", [0, 3, 6])
    assert "```json" in plan.raw_reply
    assert len(rec.calls) == 2
    second = rec.prompt(1)
    assert SCENE["composited_caption"] in second and "objects_orig" in second
    assert "pixel_values" in rec.calls[1]  # the frames stay in the chat for question (b)


def test_cli_edit_with_the_hf_planner_reaches_its_validation_error(vlm_and_processor, tmp_path, capsys):
    """`dynvfx edit --planner hf --planner-model DIR` with a tiny random VLM saved to a folder: it answers junk,
    is retried, then the CLI stops with one line quoting the reply, and writes no plan."""
    from dynvfx.cli import main
    from dynvfx.paths import EXAMPLES_DIR

    model, processor = vlm_and_processor
    model.save_pretrained(tmp_path / "vlm")
    processor.save_pretrained(tmp_path / "vlm")
    example = EXAMPLES_DIR / "blue_ball_down.mp4"
    code = main(["edit", str(example), "add a red ball moving right", "--out", str(tmp_path / "o"),
                 "--planner", "hf", "--planner-model", str(tmp_path / "vlm"), "--mode", "plan"])
    err = capsys.readouterr().err
    assert code == 2, err
    line = [x for x in err.splitlines() if x.startswith("dynvfx: error:")]
    assert len(line) == 1 and "reply" in line[0].lower()
    assert not (tmp_path / "o").exists()
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]
