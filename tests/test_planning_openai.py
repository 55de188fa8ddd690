"""The OpenAI planner against a real HTTP server on 127.0.0.1 that plays a scripted chat completions API."""

from __future__ import annotations

import base64
import io
import json
import re
import threading
import time
from collections import deque
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import numpy as np
import pytest
import torch
from PIL import Image

from dynvfx.planning import PlanningError, plan_edit
from dynvfx.planning.keyframes import frames_to_uint8
from dynvfx.planning.openai_backend import plan_openai
from dynvfx.planning.prompts import SYSTEM_PROMPT

INSTRUCTION = "a red kite flutters above the hill"
SCENE = {
    "source_caption": "A grassy hill under a pale sky, wind moving the grass.",
    "conversation": [
        {"speaker": "assistant", "text": "The kite should enter from the upper left."},
        {"speaker": "artist", "text": "Keep it small and let its shadow cross the grass."},
    ],
    "composited_caption": "A red kite flutters above a grassy hill under a pale sky, its shadow crossing the grass.",
}
OBJECTS = {"objects_orig": ["grassy hill"], "objects_edit": ["red kite"]}


# ---------------------------------------------------------------- the scripted server


def reply(content: str):
    """Action: answer 200 with ``content`` as the assistant message."""
    return lambda body: (200, _completion(body, content), 0.0)


def status(code: int):
    """Action: answer with an HTTP error."""
    return lambda body: (code, {"error": {"message": f"scripted {code}", "type": "test", "code": None}}, 0.0)


def slow(seconds: float, content: str):
    """Action: wait ``seconds`` before answering (bounded to 3 s)."""
    return lambda body: (200, _completion(body, content), min(seconds, 3.0))


def from_schema(body: dict):
    """Action: answer with the least the request's JSON schema allows (as a server with guided decoding might):
    arrays of ``minItems`` items, the first enum value, the shortest of "", "x", "x x" matching ``pattern``."""
    schema = body["response_format"]["json_schema"]["schema"]

    def least(node):
        node = schema["$defs"][node["$ref"].split("/")[-1]] if "$ref" in node else node
        if node["type"] == "object":
            return {k: least(node["properties"][k]) for k in node["required"]}
        if node["type"] == "array":
            return [least(node["items"]) for _ in range(node.get("minItems", 0))]
        if "enum" in node:
            return node["enum"][0]
        return next(t for t in ("", "x", "x x") if re.search(node.get("pattern", ""), t))

    return 200, _completion(body, json.dumps(least(schema))), 0.0


def _completion(body: dict, content: str) -> dict:
    message = {"role": "assistant", "content": content}
    choice = {"index": 0, "message": message, "finish_reason": "stop", "logprobs": None}
    usage = {"prompt_tokens": 1, "completion_tokens": 1, "total_tokens": 2}
    return {"id": "chatcmpl-test", "object": "chat.completion", "created": 0, "model": body.get("model", ""),
            "choices": [choice], "usage": usage}


class ChatServer:
    """``POST /v1/chat/completions`` on a free port; each request consumes one scripted action."""

    def __init__(self, script):
        self.script = deque(script)
        self.requests: list[dict] = []
        self.headers: list[dict] = []
        self.lock = threading.Lock()

    def __enter__(self) -> "ChatServer":
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):  # noqa: N802 - http.server naming
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                with outer.lock:
                    outer.requests.append(body)
                    outer.headers.append({k.lower(): v for k, v in self.headers.items()})
                    action = outer.script.popleft() if outer.script else status(500)
                code, payload, delay = action(body)
                time.sleep(delay)
                data = json.dumps(payload).encode()
                try:
                    self.send_response(code)
                    self.send_header("Content-Type", "application/json")
                    self.send_header("Content-Length", str(len(data)))
                    self.end_headers()
                    self.wfile.write(data)
                except OSError:
                    pass  # the client gave up (timeout test)

            def log_message(self, *args):
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        self.httpd.block_on_close = False
        self.thread = threading.Thread(target=self.httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
        self.thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()
        self.thread.join(timeout=5)

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.httpd.server_address[1]}/v1"


# ---------------------------------------------------------------- helpers


@pytest.fixture
def frames() -> torch.Tensor:
    """``[9, 3, 32, 48]`` float in [0, 1]."""
    return torch.rand(9, 3, 32, 48, generator=torch.Generator().manual_seed(0))


def run(server: ChatServer, frames, **kw):
    opts = dict(model="test-vlm", api_key="sk-test", base_url=server.base_url, backoff=0.01, timeout=5.0)
    opts.update(kw)
    return plan_openai(frames, INSTRUCTION, **opts)


def user_parts(request: dict) -> list[dict]:
    return next(m for m in request["messages"] if m["role"] == "user")["content"]


def texts(request: dict) -> str:
    """All text in a request's messages, joined."""
    out = []
    for m in request["messages"]:
        content = m["content"]
        out += [content] if isinstance(content, str) else [p["text"] for p in content if p["type"] == "text"]
    return "\n".join(out)


def decode_data_url(url: str) -> np.ndarray:
    prefix = "data:image/png;base64,"
    assert url.startswith(prefix)
    return np.asarray(Image.open(io.BytesIO(base64.b64decode(url[len(prefix):]))).convert("RGB"))


# ---------------------------------------------------------------- tests


def test_valid_reply_gives_plan_and_request_carries_images_and_instruction(frames):
    with ChatServer([reply(json.dumps(SCENE)), reply(json.dumps(OBJECTS))]) as srv:
        plan = run(srv, frames, keyframes=[0, 4, 8])
    assert plan.composited_caption == SCENE["composited_caption"]
    assert plan.source_caption == SCENE["source_caption"]
    assert [t.speaker for t in plan.conversation] == ["assistant", "artist"]
    assert plan.objects_orig == ["grassy hill"] and plan.objects_edit == ["red kite"]
    assert (plan.backend, plan.model, plan.keyframes) == ("openai", "test-vlm", [0, 4, 8])
    assert plan.instruction == INSTRUCTION
    assert json.dumps(SCENE) in plan.raw_reply and json.dumps(OBJECTS) in plan.raw_reply

    assert len(srv.requests) == 2
    first, second = srv.requests
    assert srv.headers[0]["authorization"] == "Bearer sk-test"
    assert first["model"] == "test-vlm"
    assert first["messages"][0] == {"role": "system", "content": SYSTEM_PROMPT}
    images = [p["image_url"]["url"] for p in user_parts(first) if p["type"] == "image_url"]
    expected = frames_to_uint8(frames, [0, 4, 8])
    assert len(images) == 3
    for url, pixels in zip(images, expected):
        np.testing.assert_array_equal(decode_data_url(url), pixels)
    assert INSTRUCTION in texts(first)
    assert first["response_format"]["type"] == "json_schema"
    assert "composited_caption" in json.dumps(first["response_format"])
    # question (b) follows in the same chat, after the accepted answer to (a)
    assert {"role": "assistant", "content": json.dumps(SCENE)} in second["messages"]
    assert "objects_edit" in json.dumps(second["response_format"])
    assert "objects_orig" in second["messages"][-1]["content"]


def test_a_server_that_only_follows_the_schema_gives_a_valid_plan_at_once(frames):
    """Every rule the reply validators check that JSON Schema can state (turn count, list lengths, speakers, word
    limits as patterns) is in the schema sent, so the least reply it allows validates on the first attempt."""
    with ChatServer([from_schema, from_schema]) as srv:
        plan = run(srv, frames, mode="structured", max_attempts=1)
    assert len(srv.requests) == 2
    assert len(plan.conversation) == 2 and plan.conversation[0].speaker == "assistant"
    assert plan.objects_orig == ["x"] and plan.objects_edit == ["x"] and plan.composited_caption == "x"


def test_malformed_then_valid_feeds_the_problem_back(frames):
    too_long = dict(SCENE, composited_caption="kite " * 130)
    script = [reply("Sure! Here is the plan {oops"), reply(json.dumps(too_long)),
              reply("```json\n" + json.dumps(SCENE) + "\n```"), reply(json.dumps(OBJECTS))]
    with ChatServer(script) as srv:
        plan = run(srv, frames, max_attempts=3)
    assert plan.objects_edit == ["red kite"]
    assert len(srv.requests) == 4
    second, third, fourth = srv.requests[1:]
    assert {"role": "assistant", "content": "Sure! Here is the plan {oops"} in second["messages"]
    assert "no JSON object" in second["messages"][-1]["content"]
    assert "130 words, the limit is 120" in third["messages"][-1]["content"]
    # the failed tries are dropped once an answer is accepted
    assert "oops" not in texts(fourth) and "could not be used" not in texts(fourth)


def test_always_malformed_raises_with_raw_reply(frames):
    with ChatServer([reply("I would rather describe it in prose.")] * 2) as srv:
        with pytest.raises(PlanningError) as info:
            run(srv, frames, max_attempts=2)
    assert len(srv.requests) == 2
    assert "I would rather describe it in prose." in str(info.value)
    assert info.value.raw_reply == "I would rather describe it in prose."
    assert "2 attempt" in str(info.value)


def test_huge_raw_reply_is_shortened_in_message(frames):
    junk = "blah " * 2000
    with ChatServer([reply(junk)]) as srv:
        with pytest.raises(PlanningError) as info:
            run(srv, frames, max_attempts=1)
    assert len(str(info.value)) < 1500 and "chars cut" in str(info.value)
    assert info.value.raw_reply == junk


@pytest.mark.parametrize("code", [429, 500])
def test_http_error_then_valid_is_retried(frames, code):
    with ChatServer([status(code), reply(json.dumps(SCENE)), reply(json.dumps(OBJECTS))]) as srv:
        plan = run(srv, frames, max_http_retries=2)
    assert plan.objects_orig == ["grassy hill"]
    assert len(srv.requests) == 3


def test_persistent_server_error_gives_up(frames):
    with ChatServer([status(503)] * 5) as srv:
        with pytest.raises(PlanningError, match="HTTP 503"):
            run(srv, frames, max_http_retries=2)
    assert len(srv.requests) == 3


def test_timeout_is_reported(frames):
    with ChatServer([slow(1.5, json.dumps(SCENE))]) as srv:
        start = time.monotonic()
        with pytest.raises(PlanningError, match="timed out") as info:
            run(srv, frames, timeout=0.3, max_http_retries=0)
        elapsed = time.monotonic() - start
    assert elapsed < 1.4
    assert "\n" not in str(info.value)


def test_missing_key_is_a_clear_one_line_error(frames, monkeypatch):
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    with pytest.raises(PlanningError) as info:
        plan_openai(frames, INSTRUCTION, base_url="http://127.0.0.1:9/v1")
    msg = str(info.value)
    assert "OPENAI_API_KEY" in msg and "--planner toy" in msg and "\n" not in msg


def test_settings_come_from_environment(frames, monkeypatch):
    with ChatServer([reply(json.dumps(SCENE)), reply(json.dumps(OBJECTS))]) as srv:
        monkeypatch.setenv("OPENAI_API_KEY", "sk-from-env")
        monkeypatch.setenv("OPENAI_BASE_URL", srv.base_url)
        monkeypatch.setenv("DYNVFX_OPENAI_MODEL", "env-vlm")
        plan = plan_openai(frames, INSTRUCTION, backoff=0.01, timeout=5.0)
    assert plan.model == "env-vlm"
    assert srv.requests[0]["model"] == "env-vlm"
    assert srv.headers[0]["authorization"] == "Bearer sk-from-env"


def test_server_without_structured_output_falls_back_to_json_mode(frames):
    with ChatServer([status(400), reply(json.dumps(SCENE)), reply(json.dumps(OBJECTS))]) as srv:
        plan = run(srv, frames)
    assert plan.composited_caption == SCENE["composited_caption"]
    kinds = [r.get("response_format", {}).get("type") for r in srv.requests]
    assert kinds == ["json_schema", "json_object", "json_object"]


def test_plan_edit_caches_openai_plans(frames, tmp_path):
    script = [reply(json.dumps(SCENE)), reply(json.dumps(OBJECTS))] * 2
    opts = dict(backend="openai", model="test-vlm", cache_dir=tmp_path, backoff=0.01, timeout=5.0)
    with ChatServer(script) as srv:
        opts.update(api_key="sk-test", base_url=srv.base_url)
        first = plan_edit(frames, INSTRUCTION, **opts)
        again = plan_edit(frames, INSTRUCTION, **opts)
        assert len(srv.requests) == 2
        other = plan_edit(frames, "a paper boat drifts past", **opts)
        assert len(srv.requests) == 4
    assert again == first
    assert other.instruction == "a paper boat drifts past"
    assert len(list(tmp_path.glob("*.json"))) == 2 and not list(tmp_path.glob("*.tmp"))


def test_cli_edit_with_the_openai_planner(tmp_path, monkeypatch, capsys):
    """`dynvfx edit --planner openai` end to end: the local server plans, the toy model executes."""
    import yaml

    from dynvfx.cli import main
    from dynvfx.paths import EXAMPLES_DIR

    scene = {"source_caption": "a blue square moves down on a gray background",
             "conversation": [{"speaker": "assistant", "text": "A red ball should roll in from the left."},
                              {"speaker": "artist", "text": "Keep it apart from the square."}],
             "composited_caption": "a blue square moves down and a red ball moves right on a gray background"}
    objects = {"objects_orig": ["blue square"], "objects_edit": ["red ball"]}
    example = EXAMPLES_DIR / "blue_ball_down.mp4"
    cfg = tmp_path / "fast.yaml"
    cfg.write_text(yaml.safe_dump({"num_inference_steps": 6, "inversion_steps": 6, "strengths": [0.8]}))
    with ChatServer([reply(json.dumps(scene)), reply(json.dumps(objects))]) as server:
        monkeypatch.setenv("OPENAI_API_KEY", "test-key")
        monkeypatch.setenv("OPENAI_BASE_URL", server.base_url)
        code = main(["edit", str(example), "add a red ball moving right", "--out", str(tmp_path / "o"),
                     "--planner", "openai", "--planner-model", "local-vlm", "--config", str(cfg), "--quiet",
                     "--cache-dir", str(tmp_path / "cache")])
        assert len(server.requests) == 2 and server.requests[0]["model"] == "local-vlm"
    assert code == 0, capsys.readouterr().err
    plan = json.loads((tmp_path / "o" / "plan.json").read_text())
    assert plan["backend"] == "openai" and plan["objects_edit"] == ["red ball"]
    assert plan["composited_caption"] == scene["composited_caption"]
    assert len(list((tmp_path / "cache" / "plans").glob("plan-*.json"))) == 1  # cached under --cache-dir/plans


def test_cli_openai_planner_without_key_is_one_line(tmp_path, monkeypatch, capsys):
    from dynvfx.cli import main
    from dynvfx.paths import EXAMPLES_DIR

    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    example = EXAMPLES_DIR / "blue_ball_down.mp4"
    code = main(["edit", str(example), "add a red ball", "--out", str(tmp_path / "o"), "--planner", "openai"])
    err = capsys.readouterr().err
    assert code == 2 and err.count("dynvfx: error:") == 1 and "OPENAI_API_KEY" in err and "--planner toy" in err
    assert not (tmp_path / "o").exists()
