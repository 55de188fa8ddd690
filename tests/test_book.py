"""The course book (``make book``, ``book/build.py``): built from the stored chapters and docs/ into a temporary
folder, served over HTTP on 127.0.0.1 and read in headless Chromium (``tests/browser.py``).

Every page must load without a console error and without asking any other host for anything (the browser refuses
such requests; the test counts them). A chapter page must show every figure its notebook stores, an interactive
viewer's first picture included, each loaded (``naturalWidth > 0``) and drawn (its screenshot is not one flat
colour); it must carry the chapter's Colab link and the run time of ``notebooks/run_times.json``.
"""

from __future__ import annotations

import functools
import importlib.util
import io
import json
import re
import threading
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from browser import browser_page, is_local
from dynvfx.paths import REPO_ROOT


def _module(name: str, path: Path):
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


book = _module("book_build", REPO_ROOT / "book" / "build.py")
chapter_build = _module("notebooks_build", REPO_ROOT / "notebooks" / "build.py")


def html_path(page) -> str:
    """A page's HTML file in the site (the README is the front page, ``index.html``)."""
    return "index.html" if page == book.FRONT else str(page.with_suffix(".html"))


def stored_pictures(page) -> int:
    """How many PNG figures the chapter's notebook shows once its viewers are static, as the book shows it."""
    nb = book.static_viewers(json.loads((REPO_ROOT / page).read_text()))
    return sum("image/png" in out.get("data", {}) for cell in nb["cells"] for out in cell.get("outputs", []))


def not_flat(png: bytes) -> bool:
    """Does a screenshot show something: more than one colour over a visible share of its pixels?"""
    pixels = np.asarray(Image.open(io.BytesIO(png)).convert("L"), dtype=np.float32)
    background = np.median(pixels)
    return pixels.std() > 2 and (np.abs(pixels - background) > 16).mean() > 0.01


@pytest.fixture(scope="module")
def site(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("book") / "site"
    assert book.build(out) == 0, "Sphinx failed to build the book; run `make book` to see why"
    return out


@pytest.fixture(scope="module")
def server(site):
    class Quiet(SimpleHTTPRequestHandler):
        def log_message(self, *args):
            pass

    httpd = ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(Quiet, directory=str(site)))
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{httpd.server_port}"
    httpd.shutdown()
    httpd.server_close()
    thread.join()


def test_every_page_is_built_and_links_nothing_hosted(site):
    for page in book.pages():
        html = (site / html_path(page)).read_text()
        external = re.findall(r"<(?:script|link|img|iframe)\b[^>]*(?:src|href)=\"(https?://[^\"]+)\"", html)
        # a <link> may name the repository (rel="canonical" and the like) without loading it
        loaded = [u for u in external if not re.search(r"<link\b(?![^>]*stylesheet)[^>]*" + re.escape(u), html)]
        assert not loaded, f"{page}: the page loads {loaded} from another host"
        assert "widget-view+json" not in html and "widget-state+json" not in html, f"{page}: widget JavaScript left"


def test_a_viewer_without_a_stored_picture_says_what_it_is():
    view = {"application/vnd.jupyter.widget-view+json": {"model_id": "x"}, "text/plain": "VBox(...)"}
    nb = {"cells": [{"cell_type": "code", "outputs": [{"output_type": "display_data", "data": dict(view)},
                                                      {"output_type": "display_data",
                                                       "data": {**view, "image/png": "iVBOR"}}]}],
          "metadata": {"widgets": {"state": {}}}}
    out = book.static_viewers(nb)
    first, second, note = (o["data"] for o in out["cells"][0]["outputs"])
    assert first == {"text/markdown": book.NO_PICTURE}
    assert list(second) == ["image/png"] and note == {"text/markdown": book.VIEWER_NOTE}
    assert "widgets" not in out["metadata"]


def test_links_outside_the_book_go_to_the_repository(tmp_path):
    pages = set(book.pages())
    page = book.chapters()[0]
    text = ("[![Open In Colab](https://colab.research.google.com/assets/colab-badge.svg)](https://x.test/nb)"
            " [next](01_ddim_inversion.ipynb) [code](../dynvfx/widgets.py#L3) [guide](../docs/gpu.md)"
            " ![demo](../docs/toy_edit.png) [home](../README.md)")
    out = book.rewrite_markdown(text, page, pages, "https://github.com/someone/fork", tmp_path)
    assert "[![Open In Colab](../open-in-colab.svg)](https://x.test/nb)" in out
    assert "[next](01_ddim_inversion.ipynb)" in out and "[guide](../docs/gpu.md)" in out
    assert "[code](https://github.com/someone/fork/blob/main/dynvfx/widgets.py#L3)" in out
    assert "[home](../index.md)" in out  # the README is the front page, index.html
    assert (tmp_path / "docs" / "toy_edit.png").is_file()


def test_every_page_in_a_browser(server):
    """Each page loads with no console error and no request to another host; a chapter shows all its stored
    figures (loaded and drawn), its Colab link with the local badge, and its measured run time."""
    repository, run_times = chapter_build.repository_url(), chapter_build.load_run_times()
    outside: list[str] = []
    with browser_page(width=1200, height=900) as (page, errors):
        page.on("request", lambda request: None if is_local(request.url) else outside.append(request.url))
        for source in book.pages():
            page.goto(f"{server}/{html_path(source)}", wait_until="load")
            page.wait_for_function("Array.from(document.images).every(i => i.complete)")
            images = page.eval_on_selector_all("article img", "els => els.map(e => [e.src, e.naturalWidth])")
            blank = [src for src, width in images if width == 0]
            assert not blank, f"{source}: images that did not load: {blank}"
            assert not errors, f"{source}: {errors}"
            assert not outside, f"{source} asked other hosts for {outside}"
            if source.suffix != ".ipynb":
                continue
            name = source.stem
            figures = page.locator("article .cell_output img")
            assert figures.count() >= stored_pictures(source) > 0, f"{name}: the page shows fewer figures than stored"
            for i in range(figures.count()):
                figure = figures.nth(i)
                figure.scroll_into_view_if_needed()
                assert not_flat(figure.screenshot()), f"{name}: figure {i} is drawn blank"
            assert page.get_by_text(book.NO_PICTURE.strip("*")).count() == 0, \
                f"{name}: a viewer stores no first picture; rebuild the chapter (python notebooks/build.py {name})"
            colab = f'a[href="{chapter_build.colab_url(name, repository)}"]'
            badge = page.locator(f'{colab} img[src$="{book.BADGE}"]')
            assert badge.count() == 1 and badge.first.evaluate("e => e.naturalWidth") > 0, f"{name}: no Colab badge"
            assert page.locator(colab).count() == 2, f"{name}: the theme's Colab button should open the same notebook"
            text = page.inner_text("article")
            assert re.sub(r"[*`]", "", chapter_build.run_time_line(run_times[name])) in text, \
                f"{name}: the page does not state run_times.json's time"
            page.evaluate("window.scrollTo(0, 0)")
            assert not_flat(page.screenshot()), f"{name}: the page is drawn blank"
