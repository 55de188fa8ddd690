"""Chapters 02 and 04 in JupyterLab, in headless Chromium, as a student opens them.

A JupyterLab server (this environment's, so the chapters' ``python3`` kernel is this environment's Python) serves
a copy of the two chapters on 127.0.0.1 with a token; the copy leaves out the cells above a viewer that the viewer
does not need (chapter 04's benchmark pair, edited twice). For each chapter the browser opens the stored notebook,
checks that the viewer's cell shows its stored first picture before anything runs, runs the cells above the
viewer and the viewer's own cell, moves the frame slider with the keyboard and checks that the picture changed;
in chapter 04, that the red O_orig tokens moved with the ball. The browser's console must stay free of errors
(failed loads from other hosts aside: there is no network). Every wait is bounded, generously, so that only a
hang fails for time; the server's process group is stopped at the end.
"""

from __future__ import annotations

import base64
import io
import json
import os
import secrets
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest

from browser import browser_page
from dynvfx.paths import REPO_ROOT

START_S = 180  # JupyterLab's server, the page, a kernel: each may take this long before it counts as a hang
RUN_S = 600  # the chapter's cells above the viewer (about 20 s of work on a quiet CPU)
REDRAW_S = 120  # one redraw after a slider moves


@dataclass(frozen=True)
class Chapter:
    name: str
    viewer_call: str  # the text of the viewer's cell
    not_needed: tuple[str, ...] = ()  # texts of code cells above the viewer that it does not need


CHAPTERS = (Chapter("02_attention_maps", "widgets.attention_viewer("),
            Chapter("04_anchor_masking", "widgets.anchor_viewer(", not_needed=("bench.edit_pair(",)))


def _copy_without(chapter: Chapter, folder: Path) -> None:
    """The stored chapter, less the code cells that hold any of ``chapter.not_needed`` (each must hold one)."""
    notebook = json.loads((REPO_ROOT / "notebooks" / f"{chapter.name}.ipynb").read_text())
    kept = [cell for cell in notebook["cells"]
            if cell["cell_type"] != "code" or not any(text in "".join(cell["source"]) for text in chapter.not_needed)]
    assert len(notebook["cells"]) - len(kept) == len(chapter.not_needed), "a not_needed text matches no cell, or many"
    (folder / f"{chapter.name}.ipynb").write_text(json.dumps(notebook | {"cells": kept}))


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _settings(folder: Path) -> None:
    """JupyterLab's user settings for the test: never ask for or fetch news."""
    path = folder / "@jupyterlab" / "apputils-extension" / "notification.jupyterlab-settings"
    path.parent.mkdir(parents=True)
    path.write_text(json.dumps({"fetchNews": "false", "checkForUpdates": False}))


@pytest.fixture(scope="module")
def lab(tmp_path_factory):
    """``(url, token)`` of a JupyterLab server on a copy of the chapters, with its own (empty) Jupyter folders."""
    root = tmp_path_factory.mktemp("lab")
    for chapter in CHAPTERS:
        _copy_without(chapter, root)
    home = tmp_path_factory.mktemp("jupyter")
    _settings(home / "settings")
    env = os.environ | {"JUPYTER_CONFIG_DIR": str(home / "config"), "JUPYTER_DATA_DIR": str(home / "data"),
                        "JUPYTER_RUNTIME_DIR": str(home / "runtime"), "JUPYTERLAB_SETTINGS_DIR": str(home / "settings"),
                        "JUPYTERLAB_WORKSPACES_DIR": str(home / "workspaces"), "OMP_NUM_THREADS": "1"}
    port, token = _free_port(), secrets.token_hex(16)
    log = open(home / "server.log", "wb")
    server = subprocess.Popen(
        [sys.executable, "-m", "jupyterlab", f"--ServerApp.root_dir={root}", "--ServerApp.ip=127.0.0.1",
         f"--ServerApp.port={port}", "--ServerApp.port_retries=0", f"--IdentityProvider.token={token}",
         "--ServerApp.open_browser=False", "--ServerApp.allow_root=True", "--ServerApp.terminals_enabled=False",
         "--LabApp.news_url=None", "--LabApp.extension_manager=readonly",
         "--LabApp.check_for_updates_class=jupyterlab.handlers.announcements.NeverCheckForUpdate"],
        env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + START_S
        while True:
            assert server.poll() is None, f"JupyterLab exited: {(home / 'server.log').read_text()[-2000:]}"
            try:
                urllib.request.urlopen(f"{url}/api/status?token={token}", timeout=5)
                break
            except OSError:
                assert time.monotonic() < deadline, f"JupyterLab did not answer in {START_S} s"
                time.sleep(0.5)
        yield url, token
    finally:
        _shut_down_kernels(url, token)
        _stop(server)
        log.close()


def _shut_down_kernels(url: str, token: str) -> None:
    """Ask the server to end its kernels (they run in sessions of their own, outside its process group)."""
    try:
        kernels = json.load(urllib.request.urlopen(f"{url}/api/kernels?token={token}", timeout=10))
        for kernel in kernels:
            request = urllib.request.Request(f"{url}/api/kernels/{kernel['id']}?token={token}", method="DELETE")
            urllib.request.urlopen(request, timeout=60)
    except OSError:
        pass  # the server is gone (its kernels end with it: they watch their parent)


def _stop(server: subprocess.Popen) -> None:
    """End the server's process group (the server shuts its kernels down on SIGTERM); SIGKILL if it hangs."""
    for sig, wait_s in ((signal.SIGTERM, 60), (signal.SIGKILL, 30)):
        try:
            os.killpg(server.pid, sig)
        except ProcessLookupError:  # the group is gone already
            pass
        try:
            server.wait(timeout=wait_s)
            return
        except subprocess.TimeoutExpired:
            continue


def _png(src: str) -> np.ndarray:
    """An ``<img>``'s data-URL PNG as an ``[H, W, 3]`` float array in [0, 1]."""
    from PIL import Image

    assert src.startswith("data:image/png;base64,"), src[:80]
    image = Image.open(io.BytesIO(base64.b64decode(src.split(",", 1)[1]))).convert("RGB")
    return np.asarray(image, dtype=np.float32) / 255


def _centre_row(mask: np.ndarray) -> float:
    rows, _ = np.nonzero(mask)
    assert rows.size, "nothing of that colour in the picture"
    return float(rows.mean())


def _ball_and_mask_rows(picture: np.ndarray) -> tuple[float, float]:
    """Chapter 04's viewer picture (left: the frame; right: the frame with the red O_orig tokens): the row of the
    blue ball's centre on the left and of the red tokens' centre on the right, in picture pixels."""
    half = picture.shape[1] // 2
    left, right = picture[:, :half], picture[:, half:]
    blue = (left[..., 2] > 0.6) & (left[..., 0] < 0.3) & (left[..., 1] < 0.3)
    red = (right[..., 0] - right[..., 1] > 0.3) & (right[..., 0] - right[..., 2] > 0.3)
    return _centre_row(blue), _centre_row(red)


def _wait_for_new_picture(cell, old: str) -> str:
    deadline = time.monotonic() + REDRAW_S
    while time.monotonic() < deadline:
        src = cell.locator(".widget-output img").first.get_attribute("src")
        if src and src != old:
            return src
        time.sleep(0.5)
    raise AssertionError(f"the picture did not change within {REDRAW_S} s of moving the slider")


@pytest.mark.parametrize("chapter", CHAPTERS, ids=[c.name for c in CHAPTERS])
def test_viewer_in_jupyterlab(lab, chapter, tmp_path):
    with browser_page(timeout_s=START_S) as (page, errors):
        try:
            _open_run_and_move(page, errors, lab, chapter)
        except BaseException:
            page.screenshot(path=tmp_path / f"{chapter.name}.png", full_page=True)
            print(f"the page as it was: {tmp_path / chapter.name}.png")
            raise


def _open_run_and_move(page, errors, lab, chapter):
    """Open the stored chapter, run it up to its viewer, move the frame slider, check the pictures."""
    url, token = lab
    page.goto(f"{url}/lab/tree/{chapter.name}.ipynb?token={token}")
    notebook = page.locator(".jp-NotebookPanel:not(.lm-mod-hidden) .jp-Notebook")
    cell = notebook.locator(".jp-CodeCell").filter(has_text=chapter.viewer_call)
    cell.wait_for()

    # before any kernel runs: the stored first picture, not the widget's text form
    stored = cell.locator(".jp-OutputArea-output img")
    stored.wait_for()
    assert "VBox(" not in cell.locator(".jp-OutputArea").inner_text()
    first = stored.get_attribute("src")

    # run the cells above the viewer, then the viewer's
    cell.locator(".jp-InputPrompt").click()
    page.get_by_role("menuitem", name="Run", exact=True).click()
    page.get_by_role("menuitem", name="Run All Above Selected Cell").click()
    cell.locator(".jp-InputPrompt").click()
    page.keyboard.press("Control+Enter")  # queued behind the cells above
    live = cell.locator(".widget-output img")
    live.wait_for(timeout=RUN_S * 1000)
    assert cell.locator("img").count() == 1, "the live viewer and a static picture are both shown"
    before = live.get_attribute("src")
    assert _png(before).shape == _png(first).shape, "the live first picture differs in size from the stored"

    # the frame slider, moved with the keyboard to the last frame
    slider = cell.locator(".widget-slider").filter(has=page.locator(".widget-label", has_text="frame"))
    slider.locator(".noUi-handle").focus()
    page.keyboard.press("End")
    after = _wait_for_new_picture(cell, before)
    if _png(after).shape == _png(before).shape:  # (else the picture changed its size)
        changed = (np.abs(_png(after) - _png(before)).max(-1) > 0.1).mean()
        assert changed > 0.01, f"only {changed:.1%} of the picture changed"
    if chapter.name.startswith("04"):
        (ball0, mask0), (ball1, mask1) = _ball_and_mask_rows(_png(before)), _ball_and_mask_rows(_png(after))
        assert ball1 - ball0 > 10, "the ball should move down between the middle and the last frame"
        assert abs((mask1 - mask0) - (ball1 - ball0)) < 0.5 * (ball1 - ball0), \
            f"the ball moved {ball1 - ball0:.0f} px down, the red O_orig tokens {mask1 - mask0:.0f} px"
    assert not errors, "\n".join(errors)
