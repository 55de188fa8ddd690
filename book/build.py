"""Build the course book, the executed chapters and docs/ as one static website: ``python book/build.py [OUT]``.

Nothing is executed: the pages show the outputs stored in ``notebooks/NN_name.ipynb``. The pages are first laid
out in a staging folder that mirrors the repository (``README.md`` as the front page ``index.md``, the chapters
under ``notebooks/``, ``docs/*.md`` and the images they show), changed in three ways so that the website needs no
network when it is built or read:

* the chapters' Colab badge shows ``open-in-colab.svg`` (beside this file) instead of Colab's hosted image; the
  link is the chapter's own, as ``notebooks/build.py`` wrote it;
* an interactive viewer's output keeps the first picture it stores (``image/png``) and loses the widget view,
  whose JavaScript would come from a CDN; the notebook's stored widget state goes for the same reason;
* a link to a file of the repository that is no page of the book points at that file on GitHub (``Repository``
  in ``pyproject.toml``); an image the pages show is copied in.

Sphinx, configured by ``conf.py`` beside this file, then writes the HTML to OUT (default ``site/``): open
``OUT/index.html``, or publish the folder as it is (see the README's "Publishing the book").
"""

from __future__ import annotations

import importlib.util
import json
import os
import re
import shutil
import sys
import tempfile
from pathlib import Path, PurePosixPath

from dynvfx.paths import REPO_ROOT

BOOK = Path(__file__).resolve().parent
FRONT = PurePosixPath("README.md")  # the book's front page, index.html
BADGE = "open-in-colab.svg"
HOSTED_BADGE = "https://colab.research.google.com/assets/colab-badge.svg"
WIDGET_VIEW = "application/vnd.jupyter.widget-view+json"
VIEWER_NOTE = "*An interactive viewer, shown here as its first picture: run the chapter to move its sliders.*"
NO_PICTURE = "*(An interactive viewer: run the chapter to use it.)*"
#: The guides in the order the book lists them; other pages of docs/ follow in name order.
GUIDES = ["toy-model", "fidelity", "gpu", "benchmarks", "segmentation"]
#: ``[text](target)`` and ``![alt](target "title")``; the text holds no brackets, so a badge (an image inside a
#: link) is seen as its image.
LINK = re.compile(r"(?P<bang>!?)\[(?P<text>[^\[\]]*)\]\((?P<target>[^()\s]+)(?P<title>\s+\"[^\"]*\")?\)")


def _chapter_build():
    """``notebooks/build.py`` as a module: the one place that reads the repository URL."""
    spec = importlib.util.spec_from_file_location("notebooks_build", REPO_ROOT / "notebooks" / "build.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def chapters() -> list[PurePosixPath]:
    """The executed chapters, repository-relative, in order."""
    return [PurePosixPath("notebooks", p.name) for p in sorted((REPO_ROOT / "notebooks").glob("[0-9][0-9]_*.ipynb"))]


def guides() -> list[PurePosixPath]:
    """The pages of docs/, repository-relative, in :data:`GUIDES` order and then by name."""
    names = sorted(p.stem for p in (REPO_ROOT / "docs").glob("*.md"))
    ordered = [n for n in GUIDES if n in names] + [n for n in names if n not in GUIDES]
    return [PurePosixPath("docs", f"{n}.md") for n in ordered]


def pages() -> list[PurePosixPath]:
    """Every page of the book: the README (its front page), the chapters, the guides."""
    return [FRONT, *chapters(), *guides()]


def _is_url(target: str) -> bool:
    return target.startswith("#") or re.match(r"[a-zA-Z][a-zA-Z0-9+.-]*:", target) is not None


def rewrite_markdown(text: str, page: PurePosixPath, book_pages: set[PurePosixPath], repository: str,
                     stage: Path) -> str:
    """``text``, Markdown of ``page``, for the book (see the module's docstring): the hosted Colab badge becomes
    the local one, links to files outside the book go to GitHub, and local images are copied into ``stage``."""
    depth = len(page.parents) - 1
    text = text.replace(HOSTED_BADGE, "../" * depth + BADGE)

    def rewrite(m: re.Match) -> str:
        target = m["target"]
        if _is_url(target):
            return m[0]
        path, _, anchor = target.partition("#")
        resolved = PurePosixPath(os.path.normpath(page.parent / path))
        if resolved.parts[:1] == ("..",) or resolved == PurePosixPath(BADGE):
            return m[0]
        local = REPO_ROOT / resolved
        if m["bang"]:
            if local.is_file():
                (stage / resolved).parent.mkdir(parents=True, exist_ok=True)
                shutil.copyfile(local, stage / resolved)
            return m[0]
        if resolved == FRONT:
            return f"{m['bang']}[{m['text']}]({os.path.relpath('index.md', page.parent)}{m['title'] or ''})"
        if resolved in book_pages or not local.exists():
            return m[0]
        kind = "tree" if local.is_dir() else "blob"
        url = f"{repository}/{kind}/main/{resolved}" + (f"#{anchor}" if anchor else "")
        return f"{m['bang']}[{m['text']}]({url}{m['title'] or ''})"

    return LINK.sub(rewrite, text)


def static_viewers(nb: dict) -> dict:
    """``nb`` (notebook JSON) without widget views: a viewer's output keeps its stored first picture, followed by
    :data:`VIEWER_NOTE`, or says what it is (:data:`NO_PICTURE`) where it stores none; the notebook's widget state
    is dropped."""
    for cell in nb["cells"]:
        outputs = []
        for output in cell.get("outputs", []):
            outputs.append(output)
            data = output.get("data", {})
            if WIDGET_VIEW not in data:
                continue
            del data[WIDGET_VIEW]
            if "image/png" in data:
                data.pop("text/plain", None)
                outputs.append({"output_type": "display_data", "metadata": {}, "data": {"text/markdown": VIEWER_NOTE}})
            else:
                data.clear()
                data["text/markdown"] = NO_PICTURE
        if "outputs" in cell:
            cell["outputs"] = outputs
    nb.get("metadata", {}).pop("widgets", None)
    return nb


def toctree(caption: str, entries: list[PurePosixPath]) -> str:
    """A hidden MyST toctree (the book's navigation) of ``entries`` under ``caption``."""
    lines = "\n".join(str(e.with_suffix("")) for e in entries)
    return f"\n\n```{{toctree}}\n:hidden:\n:caption: {caption}\n\n{lines}\n```\n"


def stage(dest: Path, repository: str) -> Path:
    """Lay out the book's pages in ``dest`` (see the module's docstring); returns ``dest``."""
    book_pages = set(pages())
    dest.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(BOOK / BADGE, dest / BADGE)
    for page in pages():
        target = dest / ("index.md" if page == FRONT else page)
        target.parent.mkdir(parents=True, exist_ok=True)
        text = (REPO_ROOT / page).read_text()
        if page.suffix == ".ipynb":
            nb = static_viewers(json.loads(text))
            for cell in nb["cells"]:
                if cell["cell_type"] == "markdown":
                    source = "".join(cell["source"]) if isinstance(cell["source"], list) else cell["source"]
                    cell["source"] = rewrite_markdown(source, page, book_pages, repository, dest)
            target.write_text(json.dumps(nb))
        else:
            text = rewrite_markdown(text, page, book_pages, repository, dest)
            if page == FRONT:
                text += toctree("Chapters", chapters()) + toctree("Guides", guides())
            target.write_text(text)
    return dest


def build(out: Path, quiet: bool = True) -> int:
    """Stage the pages and let Sphinx write the website into ``out``; returns Sphinx's exit status."""
    from sphinx.cmd.build import build_main

    repository = _chapter_build().repository_url()
    with tempfile.TemporaryDirectory(prefix="dynvfx-book-") as tmp:
        source = stage(Path(tmp) / "pages", repository)
        args = ["-b", "html", "-c", str(BOOK), "-d", str(Path(tmp) / "doctrees"),
                "-D", f"html_theme_options.repository_url={repository}", str(source), str(out)]
        return build_main((["-q"] if quiet else []) + args)


if __name__ == "__main__":
    out = Path(sys.argv[1]) if len(sys.argv) > 1 else REPO_ROOT / "site"
    status = build(out, quiet=False)
    if status == 0:
        print(f"the book is in {out}/ (open {out / 'index.html'})")
    raise SystemExit(status)
