"""dynvfx: DynVFX (adding dynamic content to real videos from a text instruction), notebook first.

Stages, one module each: ``planning`` (VFX assistant), ``inversion`` (DDIM inversion), ``attention`` and
``anchors`` (Anchor Extended Attention), ``refinement`` (iterative residual refinement), ``segmentation``;
``edit`` chains them. ``load_pipeline("toy")`` loads the shipped toy model, ``load_pipeline("THUDM/CogVideoX-5b")``
the real one.
"""

__version__ = "0.1.0"


def load_pipeline(name: str = "toy", **kwargs):
    """Load a CogVideoX pipeline: ``"toy"``, a saved folder, or a hub id (see :func:`dynvfx.pipeline.load_pipeline`)."""
    from dynvfx.pipeline import load_pipeline as _load

    return _load(name, **kwargs)
