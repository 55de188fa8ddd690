"""The cost estimate: calibrated on the H100 measurements, and counting the steps the config asks for."""

import pytest

from dynvfx.config import DynVFXConfig
from dynvfx.cost import _known_shape, estimate, peak_gib, refinement_steps, step_seconds

# ../shared/notes/gpu-measurements.md (H100, random weights, 49 x 480 x 720)
MEASURED = {("5b", "inversion"): 1.04, ("5b", "cfg"): 1.88, ("5b", "anchor"): 3.0,
            ("2b", "inversion"): 0.48, ("2b", "cfg"): 0.66, ("2b", "anchor"): 1.07}


@pytest.mark.parametrize("model, kind", list(MEASURED))
def test_step_seconds_reproduce_the_h100_measurements(model, kind):
    got = step_seconds(_known_shape(model), kind, "h100", anchors=1846, conditional_only=False)
    assert got == pytest.approx(MEASURED[model, kind], rel=0.15)


def test_peaks_match_the_measured_ones():
    assert peak_gib(_known_shape("5b"), "full") == pytest.approx(23.7, abs=1.0)
    assert peak_gib(_known_shape("5b"), "offload") == pytest.approx(14.8, abs=1.0)  # lean's sampling peak
    assert peak_gib(_known_shape("2b"), "offload") < peak_gib(_known_shape("2b"), "lean") < 15


def test_injection_window_counts():
    cfg = DynVFXConfig()
    anchor, plain = refinement_steps(cfg)
    assert anchor + plain == 236
    assert anchor == 43  # the authors' window, t = 899 ... 619
    everywhere = refinement_steps(cfg.replace(attention_mode="off"))
    assert everywhere == (0, 236)


def test_paper_on_t4_needs_offload_and_classroom_is_cheaper():
    paper = estimate("THUDM/CogVideoX-5b", "paper", "t4")
    assert paper.memory == "sequential" and paper.fits
    assert not estimate("THUDM/CogVideoX-5b", "paper", "t4", memory="full").fits
    cls = estimate("THUDM/CogVideoX-2b", "classroom", "t4")
    assert cls.fits and cls.seconds < paper.seconds / 5
    assert any("float16" in n for n in cls.notes)
