"""The VFX assistant behind any OpenAI-compatible chat completions endpoint.

Works with OpenAI itself and with local servers that speak the same API (vLLM, Ollama, llama.cpp, LM Studio):
point ``base_url`` (or ``OPENAI_BASE_URL``) at them and pick a vision model they serve.

Settings, each an argument or else an environment variable:

- ``api_key`` / ``OPENAI_API_KEY`` (required; a local server accepts any non-empty string);
- ``base_url`` / ``OPENAI_BASE_URL`` (default: OpenAI's own endpoint);
- ``model`` / ``DYNVFX_OPENAI_MODEL`` (default :data:`DEFAULT_OPENAI_MODEL`).

Replies are requested as structured output (a JSON schema built from the reply models); a server that
refuses that with HTTP 400 is asked again in JSON mode, then with no response format at all. Rate limits
(429), server errors (5xx), timeouts and dropped connections are retried with exponential backoff.
"""

from __future__ import annotations

import json
import os
import time

from pydantic import BaseModel

from .dialogue import Message, run_dialogue
from .errors import PlanningError, shorten
from .keyframes import image_to_data_url, frames_to_images, select_keyframes
from .schema import VFXPlan

DEFAULT_OPENAI_MODEL = "gpt-4o"
ENV_API_KEY = "OPENAI_API_KEY"
ENV_BASE_URL = "OPENAI_BASE_URL"
ENV_MODEL = "DYNVFX_OPENAI_MODEL"

#: Ways of asking for JSON, tried in this order when a server answers 400 to the previous one.
MODES = ("structured", "json", "plain")


def openai_model_name(model: str | None = None) -> str:
    """The model to use: the argument, else ``$DYNVFX_OPENAI_MODEL``, else :data:`DEFAULT_OPENAI_MODEL`."""
    return model or os.environ.get(ENV_MODEL) or DEFAULT_OPENAI_MODEL


def make_client(api_key: str | None = None, base_url: str | None = None, timeout: float = 60.0):
    """An ``openai.OpenAI`` client with its own retries off (we retry ourselves, visibly).

    Raises :class:`PlanningError` when no API key is given or set in the environment.
    """
    import openai

    api_key = api_key or os.environ.get(ENV_API_KEY)
    if not api_key:
        raise PlanningError(
            f"no API key for the openai planner: set {ENV_API_KEY} (any non-empty string for a local "
            f"server at {ENV_BASE_URL}), or plan offline with --planner toy"
        )
    base_url = base_url or os.environ.get(ENV_BASE_URL) or None
    return openai.OpenAI(api_key=api_key, base_url=base_url, timeout=timeout, max_retries=0)


def to_openai_messages(messages: list[Message], image_detail: str = "auto") -> list[dict]:
    """Neutral chat messages -> the wire format: images become PNG data URLs, text-only content a string."""
    out = []
    for m in messages:
        parts = m["content"]
        if all(p["type"] == "text" for p in parts):
            out.append({"role": m["role"], "content": "\n\n".join(p["text"] for p in parts)})
            continue
        wire = []
        for p in parts:
            if p["type"] == "image":
                url = image_to_data_url(p["image"])
                wire.append({"type": "image_url", "image_url": {"url": url, "detail": image_detail}})
            else:
                wire.append({"type": "text", "text": p["text"]})
        out.append({"role": m["role"], "content": wire})
    return out


def _content_of(body: dict | str) -> str:
    """The reply text from a chat completion's JSON body (or the body itself if it is not JSON)."""
    if isinstance(body, str):
        return body
    try:
        message = body["choices"][0]["message"]
    except (KeyError, IndexError, TypeError):
        return json.dumps(body)
    return message.get("content") or message.get("refusal") or ""


class OpenAIChat:
    """``ask(messages, reply_model) -> str`` over chat completions, with HTTP retries and format fallback.

    Args:
        client: an ``openai.OpenAI`` client (see :func:`make_client`).
        model: model name sent to the server.
        mode: ``"auto"`` (structured, falling back on HTTP 400) or one of :data:`MODES`.
        max_http_retries: retries after a 429, a 5xx, a timeout or a lost connection.
        backoff: seconds before the first such retry; doubled each time.
    """

    def __init__(
        self,
        client,
        model: str,
        mode: str = "auto",
        max_http_retries: int = 2,
        backoff: float = 1.0,
        temperature: float | None = 0.2,
        max_tokens: int = 1024,
        image_detail: str = "auto",
    ) -> None:
        if mode != "auto" and mode not in MODES:
            raise ValueError(f"mode must be 'auto' or one of {MODES}, got {mode!r}")
        self.client, self.model = client, model
        self.modes = list(MODES) if mode == "auto" else [mode]
        self.max_http_retries, self.backoff = max_http_retries, backoff
        self.temperature, self.max_tokens, self.image_detail = temperature, max_tokens, image_detail

    def __call__(self, messages: list[Message], reply_model: type[BaseModel]) -> str:
        wire = to_openai_messages(messages, self.image_detail)
        for attempt in range(self.max_http_retries + 1):
            try:
                return self._with_fallback(wire, reply_model)
            except PlanningError:
                raise
            except Exception as err:  # noqa: BLE001 - sorted by _retryable below
                if not _retryable(err) or attempt == self.max_http_retries:
                    raise PlanningError(self._describe(err, attempt + 1)) from err
                time.sleep(self.backoff * 2**attempt)
        raise AssertionError("unreachable")

    def _with_fallback(self, wire: list[dict], reply_model: type[BaseModel]) -> str:
        """Send once, dropping to a simpler JSON mode (for good) whenever the server answers 400."""
        import openai

        while True:
            try:
                return self._send(self.modes[0], wire, reply_model)
            except openai.BadRequestError:
                if len(self.modes) == 1:
                    raise
                self.modes.pop(0)

    def _send(self, mode: str, wire: list[dict], reply_model: type[BaseModel]) -> str:
        """One HTTP request in the given mode; returns the raw reply text."""
        common = {"model": self.model, "messages": wire, "max_completion_tokens": self.max_tokens}
        if self.temperature is not None:
            common["temperature"] = self.temperature
        completions = self.client.chat.completions
        if mode == "structured":
            raw = _parsing_completions(self.client).with_raw_response.parse(response_format=reply_model, **common)
            try:
                return _content_of(raw.http_response.json())
            except ValueError:
                return raw.http_response.text
        extra = {"response_format": {"type": "json_object"}} if mode == "json" else {}
        completion = completions.create(**common, **extra)
        return completion.choices[0].message.content or ""

    def _describe(self, err: Exception, tries: int) -> str:
        """One line on why the request failed, for :class:`PlanningError`."""
        import openai

        where = f"{self.client.base_url} (model {self.model!r})"
        if isinstance(err, openai.APITimeoutError):
            return f"the openai planner timed out after {self.client.timeout} s, {tries} attempt(s), at {where}"
        if isinstance(err, openai.AuthenticationError):
            return f"the API key was rejected by {where}: check {ENV_API_KEY}, or plan offline with --planner toy"
        if isinstance(err, openai.APIStatusError):
            return f"{where} answered HTTP {err.status_code} after {tries} attempt(s): {_one_line(err.message)}"
        if isinstance(err, openai.APIConnectionError):
            return f"could not reach {where} after {tries} attempt(s): {_one_line(str(err))}"
        return f"request to {where} failed: {type(err).__name__}: {_one_line(str(err))}"


def _one_line(text: str, limit: int = 300) -> str:
    """``text`` shortened and flattened onto one line, for error messages."""
    return " ".join(shorten(str(text), limit).split())


def _parsing_completions(client):
    """The completions resource that has ``parse`` (older openai 1.x releases keep it under ``client.beta``)."""
    completions = client.chat.completions
    return completions if hasattr(completions, "parse") else client.beta.chat.completions


def _retryable(err: Exception) -> bool:
    """Rate limits, server errors, timeouts and lost connections are worth another try."""
    import openai

    return isinstance(err, (openai.RateLimitError, openai.InternalServerError, openai.APIConnectionError))


def plan_openai(
    frames,
    instruction: str,
    keyframes: list[int] | None = None,
    model: str | None = None,
    api_key: str | None = None,
    base_url: str | None = None,
    client=None,
    mode: str = "auto",
    max_attempts: int = 3,
    max_http_retries: int = 2,
    backoff: float = 1.0,
    timeout: float = 60.0,
    temperature: float | None = 0.2,
    max_tokens: int = 1024,
    image_max_side: int | None = 768,
    image_detail: str = "auto",
) -> VFXPlan:
    """Plan an edit of ``frames`` (``[F, 3, H, W]`` float in [0, 1]) with an OpenAI-compatible VLM.

    ``max_attempts`` bounds the tries per question when replies are malformed; ``max_http_retries`` and
    ``backoff`` bound the retries of failed requests; ``timeout`` is per request, in seconds.
    Raises :class:`PlanningError` on a missing key, an unreachable server or no usable reply.
    """
    keyframes = list(keyframes) if keyframes is not None else select_keyframes(len(frames))
    model = openai_model_name(model)
    client = client or make_client(api_key, base_url, timeout)
    ask = OpenAIChat(client, model, mode, max_http_retries, backoff, temperature, max_tokens, image_detail)
    images = frames_to_images(frames, keyframes, image_max_side)
    plan = run_dialogue(ask, images, instruction, keyframes, len(frames), max_attempts)
    return plan.model_copy(update={"backend": "openai", "model": model})
