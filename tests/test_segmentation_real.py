"""The real-video segmenters (grounded SAM 2, SAM 3) on a real clip, with tiny random models of the real classes.

Random weights give junk masks, so these tests check the plumbing: shapes, dtypes, frame alignment, box-prompt
propagation in both directions, empty detections. Nothing is downloaded.
"""

from __future__ import annotations

import sys
import types
import warnings
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from dynvfx.errors import DynVFXError
from dynvfx.paths import EXAMPLES_DIR, SHARED_VIDEOS
from dynvfx.segmentation import Segmenter, get_segmenter
from dynvfx.segmentation.grounded_sam2 import (
    Detection,
    GroundedSam2Segmenter,
    choose_seeds,
    clip_box,
    gdino_query,
    has_words,
    keyframe_indices,
    seeds_by_frame,
)
from dynvfx.video import to_uint8

BOX_FRAMES = SHARED_VIDEOS / "box_frames"
NUM_FRAMES, HEIGHT, WIDTH = 8, 60, 90  # 720x480 downscaled 8x
PHRASES = ["red ball", "box"]


@pytest.fixture(autouse=True, scope="module")
def one_thread():
    """Tiny models gain nothing from threads, and two threads thrash next to a busy CPU."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture(autouse=True)
def offline(monkeypatch):
    """No test may reach the hub: a stray download fails at once instead of retrying."""
    import huggingface_hub.constants

    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_OFFLINE", True)


# -- the clip --------------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def frames() -> torch.Tensor:
    """``[8, 3, 60, 90]`` float in [0, 1]: every 6th frame of ``box_frames``, downscaled."""
    from PIL import Image

    paths = sorted(BOX_FRAMES.glob("*.png"))[:: 6][:NUM_FRAMES]
    if len(paths) < NUM_FRAMES:
        pytest.skip(f"needs {NUM_FRAMES} PNG frames in {BOX_FRAMES} (the shared test videos); found {len(paths)}")
    video = torch.stack([torch.from_numpy(np.array(Image.open(p).convert("RGB"))) for p in paths])
    video = video.permute(0, 3, 1, 2).float() / 255
    return F.interpolate(video, size=(HEIGHT, WIDTH), mode="bilinear", antialias=True).clamp(0, 1)


# -- tiny random models of the real classes ------------------------------------------------------------------


def bert_tokenizer():
    from transformers import BertTokenizer

    words = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", ".", "red", "ball", "box", "a", "the", "dog"]
    return BertTokenizer(vocab={w: i for i, w in enumerate(words)})


def clip_tokenizer(max_length: int):
    """Character-level CLIP BPE; BOS/EOS get the highest ids (OWL pools at the argmax id, like real CLIP)."""
    from transformers import CLIPTokenizer

    vocab = {}
    for c in "abcdefghijklmnopqrstuvwxyz.":
        vocab[c], vocab[c + "</w>"] = len(vocab), len(vocab) + 1
    vocab["<|startoftext|>"], vocab["<|endoftext|>"] = len(vocab), len(vocab) + 1
    return CLIPTokenizer(vocab=vocab, merges=[], model_max_length=max_length)


@pytest.fixture(scope="module")
def gdino():
    """Random ``GroundingDinoForObjectDetection`` (Swin + BERT, ~0.4M params) and its processor."""
    from transformers import (BertConfig, GroundingDinoConfig, GroundingDinoForObjectDetection,
                              GroundingDinoImageProcessor, GroundingDinoProcessor, SwinConfig)

    tok = bert_tokenizer()
    swin = SwinConfig(image_size=64, embed_dim=16, depths=[1, 1, 1, 1], num_heads=[1, 1, 2, 2], window_size=4,
                      out_features=["stage2", "stage3", "stage4"])
    bert = BertConfig(vocab_size=len(tok), hidden_size=32, num_hidden_layers=1, num_attention_heads=2,
                      intermediate_size=64, max_position_embeddings=64)
    config = GroundingDinoConfig(backbone_config=swin, text_config=bert, num_queries=10, d_model=32,
                                 encoder_layers=1, decoder_layers=2, encoder_ffn_dim=32, decoder_ffn_dim=32,
                                 encoder_attention_heads=2, decoder_attention_heads=2, encoder_n_points=2,
                                 decoder_n_points=2, max_text_len=32)
    torch.manual_seed(0)
    model = GroundingDinoForObjectDetection(config).eval()
    image_processor = GroundingDinoImageProcessor(size={"shortest_edge": 64, "longest_edge": 96})
    return model, GroundingDinoProcessor(image_processor=image_processor, tokenizer=tok)


@pytest.fixture(scope="module")
def owl():
    """Random ``Owlv2ForObjectDetection`` (64x64 input, 16 px patches) and its processor."""
    from transformers import Owlv2Config, Owlv2ForObjectDetection, Owlv2ImageProcessor, Owlv2Processor

    tok = clip_tokenizer(16)
    n = len(tok)
    text = dict(vocab_size=n, hidden_size=32, intermediate_size=64, num_hidden_layers=1, num_attention_heads=2,
                max_position_embeddings=16, bos_token_id=n - 2, eos_token_id=n - 1, pad_token_id=n - 1)
    vision = dict(hidden_size=32, intermediate_size=64, num_hidden_layers=1, num_attention_heads=2, image_size=64,
                  patch_size=16)
    torch.manual_seed(0)
    model = Owlv2ForObjectDetection(Owlv2Config(text_config=text, vision_config=vision, projection_dim=32)).eval()
    image_processor = Owlv2ImageProcessor(size={"height": 64, "width": 64})
    return model, Owlv2Processor(image_processor=image_processor, tokenizer=tok)


def sam2_config(size: int = 128):
    """``Sam2VideoConfig`` shrunk to a 128 px input (hidden 128: the memory attention hard-codes 64-d memories)."""
    from transformers import (Sam2HieraDetConfig, Sam2VideoConfig, Sam2VideoMaskDecoderConfig,
                              Sam2VideoPromptEncoderConfig, Sam2VisionConfig)

    d, g = 128, size // 16
    backbone = Sam2HieraDetConfig(hidden_size=12, image_size=[size, size], blocks_per_stage=[1, 2, 1, 1],
                                  embed_dim_per_stage=[12, 24, 48, 96], num_attention_heads_per_stage=[1, 1, 1, 1],
                                  window_size_per_stage=[4, 4, 4, 4], global_attention_blocks=[2],
                                  window_positional_embedding_background_size=[2, 2])
    vision = Sam2VisionConfig(backbone_config=backbone, backbone_channel_list=[96, 48, 24, 12], fpn_hidden_size=d,
                              backbone_feature_sizes=[[4 * g, 4 * g], [2 * g, 2 * g], [g, g]])
    return Sam2VideoConfig(
        vision_config=vision, image_size=size, num_maskmem=3,
        prompt_encoder_config=Sam2VideoPromptEncoderConfig(hidden_size=d, image_size=size, mask_input_channels=8),
        mask_decoder_config=Sam2VideoMaskDecoderConfig(hidden_size=d, mlp_dim=64, num_attention_heads=4,
                                                       iou_head_hidden_dim=32),
        memory_attention_hidden_size=d, memory_attention_num_layers=1, memory_attention_feed_forward_hidden_size=64,
        memory_attention_rope_feat_sizes=[g, g], memory_encoder_hidden_size=d, memory_encoder_output_channels=64,
        mask_downsampler_embed_dim=d, memory_fuser_embed_dim=d, memory_fuser_intermediate_dim=64)


def force_full_masks(model) -> None:
    """Make a random SAM 2 mask decoder predict "object present, everywhere", so propagation is observable."""
    dec = model.mask_decoder
    with torch.no_grad():
        for conv in (dec.conv_s0, dec.conv_s1, dec.upscale_conv2):
            conv.weight.zero_()
            conv.bias.zero_()
        dec.upscale_conv2.bias.fill_(3.0)  # upscaled embedding = gelu(3) > 0 everywhere
        for mlp in dec.output_hypernetworks_mlps:
            mlp.proj_out.weight.zero_()
            mlp.proj_out.bias.fill_(1.0)  # mask logits = sum of positive channels
        dec.pred_obj_score_head.proj_out.weight.zero_()
        dec.pred_obj_score_head.proj_out.bias.fill_(5.0)  # object score logit 5 -> present


@pytest.fixture(scope="module")
def sam2():
    """Random ``Sam2VideoModel`` (~1.2M params) whose masks cover every frame it is run on, and its processor."""
    from transformers import Sam2ImageProcessor, Sam2VideoModel, Sam2VideoProcessor, Sam2VideoVideoProcessor

    torch.manual_seed(0)
    model = Sam2VideoModel(sam2_config()).eval()
    force_full_masks(model)
    processor = Sam2VideoProcessor(
        image_processor=Sam2ImageProcessor(size={"height": 128, "width": 128}, mask_size={"height": 32, "width": 32}),
        video_processor=Sam2VideoVideoProcessor(size={"height": 128, "width": 128}))
    return model, processor


def grounded(gdino_or_owl, sam2, **kwargs) -> GroundedSam2Segmenter:
    det, det_proc = gdino_or_owl
    sam, sam_proc = sam2
    return GroundedSam2Segmenter(detector_model=det, detector_processor=det_proc, sam_model=sam,
                                 sam_processor=sam_proc, device="cpu", **kwargs)


def check_layout(seg, phrases) -> None:
    """The :class:`Segmentation` contract: one mask and score per phrase and input frame, at the frames' size."""
    assert seg.phrases == phrases
    assert seg.masks.shape == (len(phrases), NUM_FRAMES, 1, HEIGHT, WIDTH)
    assert seg.masks.dtype == torch.bool
    assert seg.scores.shape == (len(phrases), NUM_FRAMES)
    assert seg.scores.dtype.is_floating_point
    assert ((seg.scores >= 0) & (seg.scores <= 1)).all()
    assert ((seg.scores > 0) == seg.masks.flatten(2).any(-1)).all(), "a score without a mask or vice versa"


def spy_on_propagation(monkeypatch, model) -> list[tuple[bool, list[int]]]:
    """Record ``(reverse, frame indices)`` of every ``propagate_in_video_iterator`` call on ``model``."""
    calls, original = [], model.propagate_in_video_iterator

    def spy(session, **kw):
        frames = []
        calls.append((kw.get("reverse", False), frames))
        for out in original(session, **kw):
            frames.append(out.frame_idx)
            yield out

    monkeypatch.setattr(model, "propagate_in_video_iterator", spy)
    return calls


# -- helpers ---------------------------------------------------------------------------------------------------


def test_keyframes_boxes_and_queries():
    assert keyframe_indices(8, 3) == [0, 4, 7]
    assert keyframe_indices(8, 1) == [0]
    assert keyframe_indices(2, 5) == [0, 1]
    assert keyframe_indices(8, [-1, 2, 2]) == [2, 7]
    with pytest.raises(ValueError):
        keyframe_indices(8, [8])
    with pytest.raises(ValueError):
        keyframe_indices(8, 0)
    assert clip_box([-5.0, 10.0, 200.0, 8.0], (60, 90)) == (0.0, 8.0, 90.0, 10.0)
    assert clip_box([95.0, 70.0, 99.0, 80.0], (60, 90)) == (89.0, 59.0, 90.0, 60.0)  # kept >= 1 px
    assert gdino_query(" Red Ball ") == "red ball." and gdino_query("box.") == "box."
    assert has_words("red ball [SEP]") and not has_words("[SEP] .") and not has_words("")
    dets = [[Detection(4, (0, 0, 1, 1), 0.9), Detection(0, (0, 0, 1, 1), 0.5)], [], [Detection(7, (0, 0, 1, 1), 0.6)]]
    assert choose_seeds(dets, "best") == {0: dets[0][:1], 2: dets[2]}
    assert [(f, [i for i, _ in items]) for f, items in seeds_by_frame(choose_seeds(dets, "all"))] == \
        [(0, [0]), (4, [0]), (7, [2])]


def test_uint8_video_layout(frames):
    video = to_uint8(frames)
    assert video.shape == (NUM_FRAMES, HEIGHT, WIDTH, 3) and video.dtype == np.uint8
    assert np.abs(video[5, 7, 11].astype(float) / 255 - frames[5, :, 7, 11].numpy()).max() < 1 / 255


# -- grounded SAM 2 (transformers) -----------------------------------------------------------------------------


def test_lazy_construction_and_registry(gdino, sam2):
    lazy = GroundedSam2Segmenter()  # hub ids only: nothing may load (or download) before segment()
    assert lazy.detector_model is None and lazy.sam_model is None and not lazy._loaded
    assert lazy.name == "grounded-sam2"
    seg = get_segmenter("grounded-sam2", detector_model=gdino[0], detector_processor=gdino[1],
                        sam_model=sam2[0], sam_processor=sam2[1], device="cpu")
    assert isinstance(seg, GroundedSam2Segmenter) and isinstance(seg, Segmenter)
    with pytest.raises(ValueError):
        GroundedSam2Segmenter(seed="first")
    with pytest.raises(ValueError, match="unsupported detector"):
        grounded((sam2[0], object()), sam2).load()
    with pytest.raises(DynVFXError, match="could not load 'no-such/detector'"):
        GroundedSam2Segmenter(detector="no-such/detector", device="cpu").load()


def test_gdino_box_propagates_both_ways(frames, gdino, sam2, monkeypatch):
    seg_model = grounded(gdino, sam2, keyframes=[3], box_threshold=0.0)
    calls = spy_on_propagation(monkeypatch, sam2[0])
    seg = seg_model.segment(frames, PHRASES)
    check_layout(seg, PHRASES)
    # both phrases grounded on key frame 3, then tracked forward to the end and backward to the start
    assert calls == [(False, [3, 4, 5, 6, 7]), (True, [3, 2, 1, 0])]
    assert seg.found().all(), "the box prompts at frame 3 must give masks on every frame"
    assert seg_model._loaded and seg_model.sam_model is sam2[0]  # given objects are used, not replaced


def test_gdino_detections_on_keyframes(frames, gdino, sam2):
    seg_model = grounded(gdino, sam2, keyframes=3, box_threshold=0.0)
    found = seg_model.detect(to_uint8(frames), PHRASES)
    assert len(found) == len(PHRASES)
    for dets in found:
        assert dets and {d.frame for d in dets} <= {0, 4, 7}
        assert [d.score for d in dets] == sorted((d.score for d in dets), reverse=True)
        for d in dets:
            x0, y0, x1, y1 = d.box
            assert 0 <= x0 < x1 <= WIDTH and 0 <= y0 < y1 <= HEIGHT and 0 <= d.score <= 1


def test_gdino_seed_all_keyframes(frames, gdino, sam2, monkeypatch):
    seg_model = grounded(gdino, sam2, keyframes=3, box_threshold=0.0, seed="all")
    calls = spy_on_propagation(monkeypatch, sam2[0])
    seg = seg_model.segment(frames, PHRASES)
    check_layout(seg, PHRASES)
    assert seg.found().all()
    assert calls[0] == (False, list(range(NUM_FRAMES)))  # the earliest prompt is on frame 0: nothing to reverse
    assert calls[1] == (True, [])


def test_missing_phrase_keeps_rows_aligned(frames, gdino, sam2, monkeypatch):
    seg_model = grounded(gdino, sam2, keyframes=[5], box_threshold=0.0)
    detect = seg_model.detect
    monkeypatch.setattr(seg_model, "detect", lambda video, phrases: [[]] + detect(video, phrases)[1:])
    seg = seg_model.segment(frames, PHRASES)
    check_layout(seg, PHRASES)
    assert not seg.masks[0].any() and (seg.scores[0] == 0).all()
    assert seg.found()[1].all()
    with pytest.warns(UserWarning, match="red ball") as record:
        msgs = seg.warn_missing()
    assert len(msgs) == 1 and len(record) == 1


@pytest.mark.parametrize("detector", ["gdino", "owl"])
def test_threshold_one_finds_nothing(frames, sam2, detector, request, monkeypatch):
    seg_model = grounded(request.getfixturevalue(detector), sam2, box_threshold=1.0)
    calls = spy_on_propagation(monkeypatch, sam2[0])
    seg = seg_model.segment(frames, PHRASES)
    check_layout(seg, PHRASES)
    assert not seg.masks.any() and (seg.scores == 0).all()
    assert calls == []  # SAM 2 is not run without a box
    with pytest.warns(UserWarning, match="no detection"):
        assert len(seg.warn_missing()) == 2


def test_owl_grounds_and_propagates(frames, owl, sam2, monkeypatch):
    seg_model = grounded(owl, sam2, keyframes=[-1], box_threshold=0.0)
    calls = spy_on_propagation(monkeypatch, sam2[0])
    seg = seg_model.segment(frames, ["dog", "red ball", "box"])
    check_layout(seg, ["dog", "red ball", "box"])
    assert seg.found().all()
    assert calls == [(False, [7]), (True, list(range(7, -1, -1)))]


def test_no_phrases(frames, gdino, sam2):
    seg = grounded(gdino, sam2).segment(frames, [])
    assert seg.masks.shape == (0, NUM_FRAMES, 1, HEIGHT, WIDTH) and seg.scores.shape == (0, NUM_FRAMES)


def test_rejects_bad_frames(gdino, sam2):
    with pytest.raises(ValueError, match=r"\[F, 3, H, W\]"):
        grounded(gdino, sam2).segment(torch.zeros(4, 60, 90), PHRASES)


# -- grounded SAM 2 with Meta's sam2 package (a stand-in predictor: the package is not installed) ---------------


class FakeSam2Predictor:
    """``SAM2VideoPredictor``'s video API; "segments" the pixels brighter than the frame's mean."""

    def init_state(self, video_path, offload_video_to_cpu=False):
        from PIL import Image

        paths = sorted(Path(video_path).glob("*.jpg"))
        frames = [torch.from_numpy(np.asarray(Image.open(p), dtype=np.float32)).mean(-1) for p in paths]
        return {"frames": frames, "boxes": {}}

    def add_new_points_or_box(self, state, frame_idx, obj_id, box):
        state["boxes"][obj_id] = (frame_idx, box)

    def propagate_in_video(self, state, start_frame_idx=None, reverse=False):
        order = range(start_frame_idx, -1, -1) if reverse else range(start_frame_idx, len(state["frames"]))
        for f in order:
            gray = state["frames"][f]
            logits = (gray - gray.mean())[None, None].repeat(len(state["boxes"]), 1, 1, 1)
            yield f, sorted(state["boxes"]), logits


def test_sam2_package_backend_keeps_frames_aligned(frames, gdino):
    seg_model = GroundedSam2Segmenter(detector_model=gdino[0], detector_processor=gdino[1],
                                      sam_model=FakeSam2Predictor(), sam_backend="sam2", device="cpu",
                                      keyframes=[2], box_threshold=0.0)
    seg = seg_model.segment(frames, PHRASES)
    check_layout(seg, PHRASES)
    gray = frames.mean(1)  # [F, H, W]
    expected = gray > gray.flatten(1).mean(1)[:, None, None]
    agree = (seg.masks[0, :, 0] == expected).flatten(1).float().mean(1)
    assert (agree > 0.97).all(), f"frame f's mask must come from frame f (agreement {agree.tolist()})"
    shuffled = (seg.masks[0, :, 0] == expected.roll(1, 0)).flatten(1).float().mean(1)
    assert shuffled.min() < 0.97  # the check above can tell the frames apart


# -- SAM 3 -----------------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def sam3():
    """Random ``Sam3VideoModel`` (112 px input, ~4M params) and its ``Sam3VideoProcessor``, or skip."""
    transformers = pytest.importorskip("transformers")
    if not hasattr(transformers, "Sam3VideoModel"):
        pytest.skip(f"transformers {transformers.__version__} has no Sam3VideoModel")
    from transformers import (Sam2VideoVideoProcessor, Sam3Config, Sam3DETRDecoderConfig, Sam3DETREncoderConfig,
                              Sam3GeometryEncoderConfig, Sam3ImageProcessor, Sam3MaskDecoderConfig,
                              Sam3TrackerVideoConfig, Sam3TrackerVideoMaskDecoderConfig,
                              Sam3TrackerVideoPromptEncoderConfig, Sam3VideoConfig, Sam3VideoModel,
                              Sam3VideoProcessor, Sam3VisionConfig, Sam3ViTConfig)

    size, patch, d = 112, 14, 128
    g = size // patch

    def vision():
        vit = Sam3ViTConfig(hidden_size=32, intermediate_size=64, num_hidden_layers=1, num_attention_heads=2,
                            image_size=size, patch_size=patch, window_size=4, global_attn_indexes=[0],
                            pretrain_image_size=size)
        return Sam3VisionConfig(backbone_config=vit, fpn_hidden_size=d,
                                backbone_feature_sizes=[[4 * g, 4 * g], [2 * g, 2 * g], [g, g]])

    tok = clip_tokenizer(32)
    text = dict(vocab_size=len(tok), hidden_size=32, intermediate_size=64, projection_dim=32, num_hidden_layers=1,
                num_attention_heads=2, max_position_embeddings=32, bos_token_id=len(tok) - 2,
                eos_token_id=len(tok) - 1, pad_token_id=len(tok) - 1)
    detector = Sam3Config(
        vision_config=vision(), text_config=text,
        geometry_encoder_config=Sam3GeometryEncoderConfig(hidden_size=d, num_layers=1, num_attention_heads=2,
                                                          intermediate_size=64, mask_fuser_hidden_size=d,
                                                          mask_fuser_num_layers=1),
        detr_encoder_config=Sam3DETREncoderConfig(hidden_size=d, num_layers=1, num_attention_heads=2,
                                                  intermediate_size=64),
        detr_decoder_config=Sam3DETRDecoderConfig(hidden_size=d, num_layers=1, num_queries=3, num_attention_heads=2,
                                                  intermediate_size=64),
        mask_decoder_config=Sam3MaskDecoderConfig(hidden_size=d, num_upsampling_stages=2, num_attention_heads=2))
    tracker = Sam3TrackerVideoConfig(
        vision_config=vision(), image_size=size, num_maskmem=3,
        prompt_encoder_config=Sam3TrackerVideoPromptEncoderConfig(hidden_size=d, image_size=size, patch_size=patch,
                                                                  mask_input_channels=8),
        mask_decoder_config=Sam3TrackerVideoMaskDecoderConfig(hidden_size=d, mlp_dim=64, num_attention_heads=2,
                                                              iou_head_hidden_dim=32),
        memory_attention_hidden_size=d, memory_attention_num_layers=1, memory_attention_feed_forward_hidden_size=64,
        memory_attention_rope_feat_sizes=[g, g], memory_encoder_hidden_size=d, mask_downsampler_embed_dim=d,
        memory_fuser_embed_dim=d, memory_fuser_intermediate_dim=64)
    config = Sam3VideoConfig(detector_config=detector, tracker_config=tracker, low_res_mask_size=4 * g,
                             hotstart_delay=2, hotstart_unmatch_thresh=1, hotstart_dup_thresh=1, max_num_objects=4)
    torch.manual_seed(0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        model = Sam3VideoModel(config).eval()
    mean = dict(image_mean=[0.5] * 3, image_std=[0.5] * 3)
    processor = Sam3VideoProcessor(
        image_processor=Sam3ImageProcessor(size={"height": size, "width": size},
                                           mask_size={"height": 4 * g, "width": 4 * g}, **mean),
        video_processor=Sam2VideoVideoProcessor(size={"height": size, "width": size}, **mean),
        tokenizer=tok)
    return model, processor


def test_sam3_segments_every_frame(frames, sam3):
    from dynvfx.segmentation.sam3 import Sam3Segmenter

    model, processor = sam3
    seg_model = get_segmenter("sam3", sam_model=model, sam_processor=processor, device="cpu", score_threshold=0.0)
    assert isinstance(seg_model, Sam3Segmenter) and isinstance(seg_model, Segmenter)
    phrases = PHRASES + ["red ball"]  # a repeated phrase gets the same masks
    seg = seg_model.segment(frames, phrases)
    check_layout(seg, phrases)
    assert seg.found().any(dim=1).all(), "with a 0 threshold every prompt detects something"
    assert torch.equal(seg.masks[0], seg.masks[2]) and torch.equal(seg.scores[0], seg.scores[2])
    assert model.score_threshold_detection == 0.5  # the override is undone


def test_sam3_threshold_one_finds_nothing(frames, sam3):
    from dynvfx.segmentation.sam3 import Sam3Segmenter

    seg = Sam3Segmenter(sam_model=sam3[0], sam_processor=sam3[1], device="cpu", score_threshold=1.0).segment(
        frames, PHRASES)
    check_layout(seg, PHRASES)
    assert not seg.masks.any() and (seg.scores == 0).all()


def test_sam3_outputs_per_prompt():
    from dynvfx.segmentation.sam3 import per_prompt

    masks = torch.zeros(3, 4, 5, dtype=torch.bool)
    masks[0, 0, 0] = masks[1, 1, 1] = masks[2, 2, 2] = True
    outputs = {"object_ids": torch.tensor([3, 5, 9]), "scores": torch.tensor([0.2, 0.9, 0.4]), "masks": masks,
               "prompt_to_obj_ids": {"a": [5], "b": [3, 9], "c": []}}
    found = per_prompt(outputs)
    assert set(found) == {"a", "b"}
    assert torch.equal(found["a"][0], masks[1]) and found["a"][1] == pytest.approx(0.9)
    assert torch.equal(found["b"][0], masks[0] | masks[2]) and found["b"][1] == pytest.approx(0.4)


def test_sam3_unavailable_is_a_clear_import_error(monkeypatch):
    from dynvfx.segmentation.sam3 import Sam3Segmenter, Sam3Unavailable

    old = types.ModuleType("transformers")
    old.__version__ = "4.40.0"
    monkeypatch.setitem(sys.modules, "transformers", old)
    with pytest.raises(ImportError, match="Sam3VideoModel.*4.40.0") as err:
        Sam3Segmenter()
    assert isinstance(err.value, Sam3Unavailable)


def test_cli_edit_with_the_real_segmenter_path(gdino, sam2, tmp_path, capsys):
    """`dynvfx edit --segmenter grounded-sam2:...` end to end on the toy model with tiny saved random models."""
    import copy

    import yaml

    from dynvfx.cli import main

    det_dir, sam_dir = tmp_path / "det", tmp_path / "sam"
    det_proc = copy.deepcopy(gdino[1])
    det_proc.image_processor.size = {"shortest_edge": 128, "longest_edge": 128}  # toy frames are only 48 px
    for model, proc, d in ((gdino[0], det_proc, det_dir), (*sam2, sam_dir)):
        model.save_pretrained(d)
        proc.save_pretrained(d)
    cfg = tmp_path / "fast.yaml"
    cfg.write_text(yaml.safe_dump({"num_inference_steps": 6, "inversion_steps": 6, "strengths": [0.8, 0.5]}))
    example = EXAMPLES_DIR / "blue_ball_down.mp4"
    code = main(["edit", str(example), "add a red ball moving right", "--out", str(tmp_path / "o"),
                 "--segmenter", f"grounded-sam2:detector={det_dir},sam={sam_dir},box_threshold=0.0,keyframes=1",
                 "--config", str(cfg), "--quiet", "--cache-dir", str(tmp_path / "cache")])
    err = capsys.readouterr().err
    assert code == 0, err
    assert (tmp_path / "o" / "result.mp4").exists() and (tmp_path / "o" / "masks.mp4").exists()
    record = yaml.safe_load((tmp_path / "o" / "config.yaml").read_text())
    assert record["segmenter"].startswith("grounded-sam2:")
