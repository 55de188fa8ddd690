"""dynvfx: DynVFX (adding dynamic content to real videos from a text instruction), notebook first.

Stages, one module each: ``planning`` (VFX assistant), ``inversion`` (DDIM inversion), ``attention`` and
``anchors`` (Anchor Extended Attention), ``refinement`` (iterative residual refinement), ``segmentation``;
``edit`` chains them. ``load_pipeline("toy")`` loads the shipped toy model, ``load_pipeline("THUDM/CogVideoX-5b")``
the real one.
"""

import os

__version__ = "0.1.0"

# OpenMP threads that sleep while they wait, unless the user chose otherwise. Set before torch loads OpenMP: on a
# 2-core machine whose other core is busy, spinning threads slowed the demo edit ~12x (benchmarks/threads.py).
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")


def load_pipeline(name: str = "toy", **kwargs):
    """Load a CogVideoX pipeline: ``"toy"``, a saved folder, or a hub id (see :func:`dynvfx.pipeline.load_pipeline`)."""
    from dynvfx.pipeline import load_pipeline as _load

    return _load(name, **kwargs)
