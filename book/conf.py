"""Sphinx configuration of the course book. Build it with ``make book`` (``book/build.py``, which lays out the pages
this reads and passes the repository URL); nothing is executed and nothing is fetched, when building or reading.

Why Sphinx + myst-nb + sphinx-book-theme (Jupyter Book 1.x's engine, without its CLI), measured on the six
executed chapters + docs/ on a shared 2-core machine, one thread, no network, nothing executed:

  stack                                            build    site    math offline   Colab button   hosted assets
  Sphinx 8.2 + myst-nb 1.4 + sphinx-book-theme 1.4 3.6 s    33 MB   yes (*)        yes (theme)    none
  Jupyter Book 1.0.4 CLI (Sphinx 7.4, same theme)  2.5 s    35 MB   yes (*)        yes (theme)    none
  mkdocs-material 9.8 + mkdocs-jupyter 0.26        1.2 s    9 MB    no (CDN only)  no             Google Fonts
                                                                                                  unless font: false
(*) sphinx-mathjax-offline copies MathJax 3 (24 MB) into the site; the 3.6 s include staging the pages and it.
All build in seconds, so the choice went by what a reader sees offline: the chapters' maths, the theme's own
Colab launch button beside the chapter's badge, and no request to another host (tests/test_book.py checks it).
"""

project = "DynVFX, notebook first"
html_title = "DynVFX, notebook first"
author = "the DynVFX course"
root_doc = "index"  # the README, staged as index.md by book/build.py

extensions = ["myst_nb", "sphinx-mathjax-offline", "sphinx.ext.githubpages"]  # MathJax from _static/; .nojekyll
myst_enable_extensions = ["dollarmath"]
myst_heading_anchors = 3  # docs link to sections (toy-model.md#training-it-again)
nb_execution_mode = "off"  # the stored outputs, as notebooks/build.py wrote them
nb_ipywidgets_js = {}  # no widget JavaScript (from a CDN): a viewer shows its stored first picture
nb_merge_streams = True
suppress_warnings = ["misc.highlighting_failure"]  # shell lines (!pip) in Python examples

html_theme = "sphinx_book_theme"
html_copy_source = False
html_theme_options = {
    "repository_url": "",  # set by book/build.py from pyproject.toml's Repository
    "repository_branch": "main",
    "path_to_docs": "",  # the staged pages mirror the repository: notebooks/NN_name.ipynb
    "use_repository_button": True,
    "use_download_button": False,
    "launch_buttons": {"colab_url": "https://colab.research.google.com"},
}
html_context = {"default_mode": "auto"}  # light or dark as the reader's system is; unset, the theme logs an error
