"""The command line: bad input gets one clear line (exit 2), outputs appear whole or not at all."""

import os
from pathlib import Path

import pytest
import torch
import yaml

from conftest import ROOT, SHARED_VIDEOS
from dynvfx.cli import main
from dynvfx.toy import world
from dynvfx.video import write_video

EXAMPLE = ROOT / "data" / "examples" / "blue_ball_down.mp4"
FAST_CFG = {"num_inference_steps": 10, "inversion_steps": 10, "strengths": [0.9, 0.6]}


def run(argv, capsys):
    code = main([str(a) for a in argv])
    err = capsys.readouterr().err
    return code, err


def _one_error_line(err: str) -> str:
    lines = [line for line in err.splitlines() if line.startswith("dynvfx: error:")]
    assert len(lines) == 1, err
    assert "Traceback" not in err
    return lines[0]


@pytest.mark.parametrize("argv, expected", [
    (["generate", "a red ball moves right", "--model", "no-such-model", "--out", "{tmp}/a.mp4"], "unknown model"),
    (["generate", "a purple dog runs", "--out", "{tmp}/a.mp4"], "knows no object"),
    (["generate", "a red ball moves left behind the box on a gray background", "--out", "{tmp}/a.mp4"],
     "never taught the box"),
    (["generate", "a red ball moves right", "--out", "/proc/nope/a.mp4"], "cannot create"),
    (["edit", "{tmp}/missing.mp4", "add a red ball", "--out", "{tmp}/o"], "video not found"),
    (["edit", "{tmp}/garbage.mp4", "add a red ball", "--out", "{tmp}/o"], "cannot read video"),
    (["edit", str(EXAMPLE), "   ", "--out", "{tmp}/o"], "instruction is empty"),
    (["edit", str(EXAMPLE), "make it rain", "--out", "{tmp}/o"], "toy planner"),
    (["edit", str(EXAMPLE), "add a red ball moving left behind the box", "--out", "{tmp}/o"], "never taught the box"),
    (["edit", "{tmp}/box.mp4", "add a red ball moving down", "--out", "{tmp}/o"], "never taught the box"),
    (["edit", str(EXAMPLE), "add a red ball", "--out", "{tmp}/o", "--mode", "execute"], "needs a plan"),
    (["edit", str(EXAMPLE), "add a red ball", "--out", "{tmp}/o", "--segmenter", "magic"], "unknown segmenter"),
])
def test_bad_input_gives_one_line(argv, expected, tmp_path, capsys):
    (tmp_path / "garbage.mp4").write_bytes(b"this is not a video")
    write_video(tmp_path / "box.mp4", torch.from_numpy(world.render(world.sample_box_scene(0, crossing=False))[0])
                .permute(0, 3, 1, 2))
    argv = [a.replace("{tmp}", str(tmp_path)) for a in argv]
    code, err = run(argv, capsys)
    assert code == 2
    assert expected in _one_error_line(err)
    assert not (tmp_path / "o").exists() and not (tmp_path / "a.mp4").exists()
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]  # no staging folder left behind


def test_missing_output_folders_are_created(tmp_path, capsys):
    """`make demo` on a fresh checkout writes into outputs/demo before outputs/ exists."""
    out = tmp_path / "new" / "deeper" / "a.mp4"
    code, err = run(["generate", "a red ball moves right on a gray background", "--out", out, "--steps", "2"], capsys)
    assert code == 0, err
    assert out.stat().st_size > 0


def test_unwritable_output_folder(tmp_path, capsys, monkeypatch):
    ro = tmp_path / "ro"
    ro.mkdir()
    ro.chmod(0o555)
    if os.access(ro, os.W_OK):  # root ignores permissions: pretend the folder is read-only
        real_access = os.access
        monkeypatch.setattr(os, "access", lambda p, m: False if Path(p) == ro and m == os.W_OK else real_access(p, m))
    code, err = run(["generate", "a red ball moves right", "--out", ro / "a.mp4"], capsys)
    assert code == 2 and "not writable" in _one_error_line(err)
    code, err = run(["edit", EXAMPLE, "add a red ball moving right", "--out", ro / "o"], capsys)
    assert code == 2 and "not writable" in _one_error_line(err)


def test_generate_refuses_to_overwrite(tmp_path, capsys):
    out = tmp_path / "v.mp4"
    out.write_bytes(b"keep me")
    code, err = run(["generate", "a red ball moves right on a gray background", "--out", out], capsys)
    assert code == 2 and "--overwrite" in _one_error_line(err)
    assert out.read_bytes() == b"keep me"


def test_generate_writes_a_video(tmp_path, capsys):
    from dynvfx.video import load_video

    out = tmp_path / "v.mp4"
    code, _ = run(["generate", "a red ball moves right on a gray background", "--out", out, "--steps", "10"], capsys)
    assert code == 0
    frames, _ = load_video(out)
    assert frames.shape == (17, 3, 48, 48)


def test_edit_plan_then_execute_and_same_seed_same_bytes(tmp_path, capsys):
    cfg = tmp_path / "fast.yaml"
    cfg.write_text(yaml.safe_dump(FAST_CFG))
    common = ["--config", cfg, "--quiet", "--cache-dir", tmp_path / "cache"]
    code, err = run(["edit", EXAMPLE, "add a red ball moving right", "--out", tmp_path / "p", "--mode", "plan",
                     *common], capsys)
    assert code == 0, err
    assert sorted(p.name for p in (tmp_path / "p").iterdir()) == ["plan.json", "source_masks.mp4"]
    plan = (tmp_path / "p" / "plan.json").read_text()
    assert '"red ball"' in plan and '"blue ball"' in plan
    # a person edits the plan, then executes it
    (tmp_path / "p" / "plan.json").write_text(plan.replace('"red ball"', '"red ball"'))
    outs = []
    for name in ("a", "b"):
        code, err = run(["edit", EXAMPLE, "--mode", "execute", "--plan", tmp_path / "p" / "plan.json",
                         "--out", tmp_path / name, *common], capsys)
        assert code == 0, err
        assert sorted(p.name for p in (tmp_path / name).iterdir()) == ["config.yaml", "masks.mp4", "plan.json",
                                                                       "result.mp4"]
        outs.append((tmp_path / name / "result.mp4").read_bytes())
    assert outs[0] == outs[1]
    record = yaml.safe_load((tmp_path / "a" / "config.yaml").read_text())
    assert record["config"]["num_inference_steps"] == 10 and record["model"] == "toy"
    # the same folder again without --overwrite is refused and left as it was
    code, err = run(["edit", EXAMPLE, "--mode", "execute", "--plan", tmp_path / "p" / "plan.json",
                     "--out", tmp_path / "a", *common], capsys)
    assert code == 2 and "--overwrite" in _one_error_line(err)
    assert (tmp_path / "a" / "result.mp4").read_bytes() == outs[0]


def test_edit_on_a_real_43_frame_video(tmp_path, capsys):
    """The toy model refuses a real 720x480 clip; ``--force`` runs it anyway, labelled as forced on stderr and in
    config.yaml, with a clear note on fitting 43 frames to the model's 17."""
    from dynvfx.video import load_video, write_video

    if not SHARED_VIDEOS.exists():
        pytest.skip(f"shared videos not found at {SHARED_VIDEOS}")
    frames, _ = load_video(SHARED_VIDEOS / "taxi.mp4")
    short = tmp_path / "short.mp4"
    write_video(short, frames[:43])
    cfg = tmp_path / "fast.yaml"
    cfg.write_text(yaml.safe_dump(FAST_CFG | {"strengths": [0.8]}))
    masks = tmp_path / "masks"
    masks.mkdir()
    argv = ["edit", short, "add a red ball moving right", "--out", tmp_path / "o", "--config", cfg,
            "--quiet", "--cache-dir", tmp_path / "cache"]
    code, err = run(argv, capsys)
    assert code == 2 and "toy model cannot edit" in _one_error_line(err) and "--force" in err
    assert not (tmp_path / "o").exists()
    code, err = run(argv + ["--force"], capsys)
    assert code == 0, err
    assert "warning: --force: the toy model runs on a video it was not made for (it is 720x480 pixels" in err
    assert "17 evenly spaced frames of 43" in err
    out, _ = load_video(tmp_path / "o" / "result.mp4")
    assert out.shape == (17, 3, 48, 48)
    assert yaml.safe_load((tmp_path / "o" / "config.yaml").read_text())["forced"] is True


def test_edit_with_user_masks(tmp_path, capsys):
    """`--segmenter masks:PATH`: a folder of PNG masks stands in for every phrase."""
    import numpy as np
    from PIL import Image

    masks = tmp_path / "masks"
    masks.mkdir()
    for i in range(17):
        m = np.zeros((48, 48), np.uint8)
        m[10:30, 5 + i:25 + i] = 255
        Image.fromarray(m).save(masks / f"{i:03d}.png")
    cfg = tmp_path / "fast.yaml"
    cfg.write_text(yaml.safe_dump(FAST_CFG))
    code = main([str(a) for a in ["edit", EXAMPLE, "add a red ball moving right", "--out", tmp_path / "o",
                                  "--config", cfg, "--segmenter", f"masks:{masks}", "--quiet",
                                  "--cache-dir", tmp_path / "cache"]])
    captured = capsys.readouterr()
    assert code == 0, captured.err
    record = yaml.safe_load((tmp_path / "o" / "config.yaml").read_text())
    assert record["segmenter"] == f"masks:{masks}"
    assert "O_edit found in 2/2 iterations" in captured.out


@pytest.mark.parametrize("argv, expected", [
    (["edit", "{tmp}/missing.mp4", "add a red ball", "--out", "{tmp}/o"], "video not found"),
    (["edit", "{tmp}/garbage.mp4", "add a red ball", "--out", "{tmp}/o"], "not a video ffmpeg can decode"),
    (["edit", "{tmp}/empty.mp4", "add a red ball", "--out", "{tmp}/o"], "video file is empty (0 bytes)"),
    (["edit", "{ex}", "add a red ball", "--out", "{tmp}/o", "--model", "no-such-model"], "unknown model"),
    (["edit", "{ex}", "add a red ball", "--out", "{tmp}/o", "--model", "foo/not-a-model"],
     "'foo/not-a-model' is not in the local Hugging Face cache and the hub is offline"),
    (["edit", "{ex}", "add a red ball", "--out", "{tmp}/o", "--model", "THUDM/CogVideoX-5b"], "hf download"),
    (["edit", "{ex}", "add a red ball", "--out", "{tmp}/o", "--mode", "execute"], "needs a plan"),
    (["edit", "{ex}", "--out", "{tmp}/o", "--mode", "execute", "--plan", "{tmp}/bad.json"],
     "objects_edit: Field required"),
    (["edit", "{ex}", "--out", "{tmp}/o", "--mode", "execute", "--plan", "{tmp}/broken.json"],
     "not valid JSON: Expecting ',' delimiter at line 2, column 3"),
    (["edit", "{ex}", "--out", "{tmp}/o", "--mode", "execute", "--plan", "{tmp}/empty.json"], "empty.json is empty"),
    (["edit", "{ex}", "add a red ball", "--out", "{tmp}/o", "--planner", "openai"], "OPENAI_API_KEY"),
    (["edit", "{ex}", "add a puppy peeking out of the box", "--out", "{tmp}/o"], "--planner openai or hf"),
    (["edit", "{ex}", "add a red ball", "--out", "{tmp}/o", "--segmenter", "magic"], "unknown segmenter"),
    (["edit", "{ex}", "add a red ball", "--out", "{tmp}/o", "--segmenter", "grounded-sam2:nope=1"], "bad segmenter"),
    (["edit", "{ex}", "add a red ball", "--out", "{tmp}/o", "--segmenter", "masks:{tmp}/nowhere"], "does not exist"),
    (["edit", "{ex}", "add a red ball", "--out", "{tmp}/o", "--segmenter", "grounded-sam2"],
     "'IDEA-Research/grounding-dino-tiny' is not in the local Hugging Face cache"),
    (["edit", "{ex}", "add a red ball", "--out", "{tmp}/o", "--segmenter", "sam3"], "'facebook/sam3' is not in"),
    (["edit", "{ex}", "add a red ball", "--out", "{tmp}/o", "--planner", "hf", "--planner-model", "org/vlm"],
     "'org/vlm' is not in the local Hugging Face cache"),
    (["edit", "{ex}", "add a red ball", "--out", "{tmp}/done"], "--overwrite"),
    (["edit", "{ex}", "add a red ball", "--out", "{tmp}/empty.mp4"], "is a file"),
    (["edit", "{ex}", "add a red ball", "--out", "{tmp}/other"], "did not write (notes.txt)"),
    (["edit", "{ex}", "add a red ball", "--out", "{tmp}/other", "--overwrite"], "never mixed"),
    (["edit", "{tmp}/big.mp4", "add a red ball", "--out", "{tmp}/o"], "it is 64x48 pixels"),
    (["edit", "{tmp}/long.mp4", "add a red ball", "--out", "{tmp}/o"], "it has 21 frames"),
    (["edit", "{tmp}/noise.mp4", "add a red ball", "--out", "{tmp}/o"], "flat colours"),
    (["generate", "a red ball moves right", "--model", "no-such-model", "--out", "{tmp}/a.mp4"], "unknown model"),
    (["generate", "a red ball moves right", "--model", "foo/not-a-model", "--out", "{tmp}/a.mp4"], "hf download"),
    (["generate", "a purple dog runs", "--out", "{tmp}/a.mp4"], "knows no object"),
    (["edit", "{ex}", "add a red ball", "--out", "{tmp}/o", "--config", "{tmp}/bad.yaml"], "strengths must be"),
    (["edit", "{ex}", "add a red ball", "--out", "{tmp}/o", "--cache-dir", "{tmp}/empty.json"], "is a file"),
    (["estimate", "{tmp}/missing.mp4", "--model", "toy"], "video not found"),
    (["estimate", "{tmp}/empty.mp4"], "video file is empty"),
])
def test_input_errors_come_before_any_model_loads(argv, expected, inputs, capsys, monkeypatch):
    """Each bad input: one line, exit 2, before a model loads and before anything is written."""
    import huggingface_hub.constants

    import dynvfx.cli

    def refuse(*a, **k):
        raise AssertionError("a model was loaded before the inputs were checked")

    monkeypatch.setattr(dynvfx.cli, "load_pipeline", refuse)
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_OFFLINE", True)  # the same answer with or without a network
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    before = _tree(inputs)
    argv = [a.replace("{tmp}", str(inputs)).replace("{ex}", str(EXAMPLE)) for a in argv]
    code, err = run(argv, capsys)
    assert code == 2, err
    assert expected in _one_error_line(err)
    assert _tree(inputs) == before, "a refused run wrote something"


@pytest.fixture(scope="module")
def inputs(tmp_path_factory) -> Path:
    """A folder of bad inputs, made once (the tests above check that none of them changes)."""
    from dynvfx.video import load_video, write_video

    tmp = tmp_path_factory.mktemp("inputs")
    (tmp / "garbage.mp4").write_bytes(b"this is not a video")
    (tmp / "empty.mp4").write_bytes(b"")
    (tmp / "bad.json").write_text('{"instruction": "x", "source_caption": "s", "composited_caption": "c",\n'
                                  '"objects_orig": []}')
    (tmp / "broken.json").write_text('{"instruction": "x"\n  "source_caption": "s"}')
    (tmp / "empty.json").write_text("")
    (tmp / "bad.yaml").write_text("strengths: [0.9, 1.7]\n")
    (tmp / "done").mkdir()
    (tmp / "done" / "result.mp4").write_bytes(b"an earlier result")
    (tmp / "other").mkdir()
    (tmp / "other" / "notes.txt").write_text("a student's notes")
    frames = load_video(EXAMPLE)[0]
    write_video(tmp / "big.mp4", torch.nn.functional.interpolate(frames, size=(48, 64)))
    write_video(tmp / "long.mp4", torch.cat([frames, frames[:4]]))
    write_video(tmp / "noise.mp4", torch.rand(frames.shape, generator=torch.Generator().manual_seed(0)))
    return tmp


def _tree(folder: Path) -> dict[str, bytes]:
    return {str(p.relative_to(folder)): p.read_bytes() if p.is_file() else b"" for p in sorted(folder.rglob("*"))}


def test_estimate_command_prints_a_labelled_estimate(tmp_path, capsys):
    code = main(["estimate", str(EXAMPLE), "--model", "THUDM/CogVideoX-2b", "--preset", "classroom", "--gpu", "t4"])
    out = capsys.readouterr().out
    assert code == 0
    assert out.splitlines()[1].startswith("ESTIMATE") and "DDIM inversion" in out and "T4" in out and "float16" in out


def test_estimate_is_for_the_videos_own_frame_count(tmp_path, capsys):
    """A 43-frame clip is fitted to 41 frames (1 + 4k) and estimated for them: fewer seconds than 49 frames."""
    from dynvfx.video import write_video

    totals = {}
    for n in (49, 43):
        clip = tmp_path / f"{n}.mp4"
        write_video(clip, torch.zeros(n, 3, 24, 32))
        assert main(["estimate", str(clip), "--model", "THUDM/CogVideoX-5b"]) == 0
        out = capsys.readouterr().out
        assert f"video: {n} frames of 32x24" in out
        fitted = {49: 49, 43: 41}[n]
        assert f"clip: {fitted} frames of 720x480 (after fitting to the model)" in out
        totals[n] = float(next(line for line in out.splitlines() if line.startswith("total")).split()[1])
    assert totals[43] < totals[49]


def test_hub_status_tells_missing_from_unreachable(monkeypatch):
    """A hub that answers "no such repository", a closed port, and offline mode get three different answers."""
    import socket
    import threading
    from http.server import BaseHTTPRequestHandler, HTTPServer

    import huggingface_hub.constants

    from dynvfx.pipeline import hub_status

    class NoSuchRepo(BaseHTTPRequestHandler):
        def do_GET(self):  # noqa: N802 - http.server naming
            self.send_response(404)
            self.send_header("X-Error-Code", "RepoNotFound")
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, *args):
            pass

    server = HTTPServer(("127.0.0.1", 0), NoSuchRepo)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    with socket.socket() as s:  # a port nobody listens on
        s.bind(("127.0.0.1", 0))
        closed = s.getsockname()[1]
    try:
        monkeypatch.setattr(huggingface_hub.constants, "ENDPOINT", f"http://127.0.0.1:{server.server_port}")
        assert hub_status("foo/not-a-model") == "missing"
        monkeypatch.setattr(huggingface_hub.constants, "ENDPOINT", f"http://127.0.0.1:{closed}")
        assert hub_status("foo/not-a-model", timeout=5) == "unreachable"
        monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_OFFLINE", True)
        assert hub_status("foo/not-a-model").startswith("offline")
    finally:
        server.shutdown()


@pytest.mark.parametrize("argv", [
    ["generate", "a red ball moves right", "--out", "{tmp}/a.mp4", "--steps", "0"],
    ["generate", "a red ball moves right", "--out", "{tmp}/a.mp4", "--fps", "-8"],
    ["generate", "a red ball moves right", "--out", "{tmp}/a.mp4", "--guidance", "-1"],
    ["edit", "{tmp}/v.mp4", "add a red ball", "--out", "{tmp}/o", "--attention", "sideways"],
])
def test_out_of_range_numbers_and_choices_are_usage_errors(argv, tmp_path, capsys):
    with pytest.raises(SystemExit) as stop:
        main([a.replace("{tmp}", str(tmp_path)) for a in argv])
    err = capsys.readouterr().err
    assert stop.value.code == 2 and "error: argument" in err and "Traceback" not in err
    assert list(tmp_path.iterdir()) == []


def test_threads_leave_out_the_cores_other_processes_keep_busy(monkeypatch):
    import dynvfx.pipeline
    from dynvfx.pipeline import cpu_threads

    monkeypatch.setattr(torch, "get_num_threads", lambda: 4)
    monkeypatch.setattr(os, "cpu_count", lambda: 4)
    monkeypatch.setattr(dynvfx.pipeline, "busy_cores", lambda: 1.2)
    threads, note = cpu_threads()
    assert threads == 3 and "keep 1.2 of 4 CPU cores busy: using 3 torch threads, not 4" in note
    assert cpu_threads(2) == (2, "")  # asked for: as asked
    monkeypatch.setattr(dynvfx.pipeline, "busy_cores", lambda: 0.3)  # a quiet machine: torch's default
    assert cpu_threads() == (4, "")
    monkeypatch.setattr(dynvfx.pipeline, "busy_cores", lambda: None)  # unknown (not Linux): torch's default
    assert cpu_threads() == (4, "")


def test_busy_cores_sees_a_busy_loop():
    import subprocess
    import sys

    from dynvfx.pipeline import busy_cores

    loop = subprocess.Popen([sys.executable, "-c", "while True: pass"])
    try:
        seen = busy_cores(0.5)
    finally:
        loop.kill()
    assert seen is not None and seen >= 0.5


def test_the_cli_says_when_it_uses_fewer_threads_and_puts_them_back(tmp_path, capsys, monkeypatch):
    import dynvfx.pipeline

    before = torch.get_num_threads()
    monkeypatch.setattr(dynvfx.pipeline, "busy_cores", lambda: float(os.cpu_count() or 1))
    code, err = run(["generate", "a red ball moves right on a gray background", "--out", tmp_path / "a.mp4",
                     "--steps", "2"], capsys)
    assert code == 0, err
    if before > 1:
        assert "note: other processes keep" in err and "using 1 torch thread" in err
    assert torch.get_num_threads() == before
