"""The benchmarks' statistics and reports: Wilson intervals, paired differences over the same pairs, and what the
refinement passes did pair by pair."""

from __future__ import annotations

import pytest


def test_wilson_interval():
    from dynvfx.lab.stats import cell, wilson

    assert wilson(0, 0) == (0.0, 1.0)
    lo, hi = wilson(5, 10)
    assert lo == pytest.approx(0.2366, abs=1e-4) and hi == pytest.approx(0.7634, abs=1e-4)
    lo, hi = wilson(0, 10)
    assert lo == 0.0 and hi == pytest.approx(0.2775, abs=1e-4)
    assert cell([{"ok": True}, {"ok": False}], "ok") == (0.5, "50% [9%, 91%]")


def test_paired_difference_of_two_variants_on_the_same_pairs():
    from dynvfx.config import DynVFXConfig
    from dynvfx.lab.edit_bench import EditRun
    from dynvfx.lab.reports import edit_report
    from dynvfx.lab.stats import paired_difference

    a = [{"success": k < 30} for k in range(40)]  # right on the first 30 pairs
    b = [{"success": 5 <= k < 25} for k in range(40)]  # on 20 of them, all also right in a
    d, lo, hi, a_only, b_only = paired_difference(a, b)
    assert d == pytest.approx(0.25) and 0.1 < lo < 0.25 < hi <= 0.4 and (a_only, b_only) == (10, 0)
    assert paired_difference(a, a)[:3] == (0.0, 0.0, 0.0)  # a variant against itself: no difference, no spread
    with pytest.raises(ValueError, match="same pairs"):
        paired_difference(a, b[:-1])
    rows = [{"success": s, "new_moves": s, "copies_source": False, "source_moves": True, "no_extra": True,
             "iou": 0.9, "psnr": 30.0, "ssim": 1.0, "psnr_raw": 28.0} for s in (True, True, False)]
    run = EditRun(DynVFXConfig.toy(), {"authors": rows, "no_anchor_attn": rows[::-1]},
                  {"authors": [1.0] * 3, "no_anchor_attn": [1.0] * 3}, [29.0] * 3, 3.0)
    report = edit_report(run)
    assert "| no AnchorExtAttn (attention off) | +0 [" in report and "| 1 | 1 |" in report


def test_pass_story_tells_what_the_refinement_passes_did():
    from dynvfx.config import DynVFXConfig
    from dynvfx.lab.edit_bench import EditRun, pass_story
    from dynvfx.lab.reports import edit_report

    assert [pass_story(c) for c in ([1, 1, 1], [1, 0, 1], [0.5, 1, 1], [0, 1, 0], [1, 1, 0.4, 0], [0, 0.5, 0])] == [
        "kept", "kept", "rescued", "rescued", "lost", "never"]
    rows = [{"success": ok, "new_moves": ok, "copies_source": False, "source_moves": True, "no_extra": True, "iou": 0.9,
             "psnr": 30.0, "ssim": 1.0, "psnr_raw": 28.0, "passes": passes}
            for ok, passes in ((True, [1.0, 1.0]), (False, [1.0, 1.0]), (True, [0.0, 1.0]), (False, [1.0, 0.5]))]
    report = edit_report(EditRun(DynVFXConfig.toy(), {"authors": rows}, {"authors": [1.0] * 4}, [29.0] * 4, 4.0))
    assert "| the authors' defaults | 2 (1) | 1 (1) | 1 (0) | 0 (0) |" in report


def test_box_edit_report_pairs_each_variant_with_the_authors_defaults():
    from dynvfx.config import DynVFXConfig
    from dynvfx.lab.edit_bench import EditRun
    from dynvfx.lab.reports import box_edit_report

    def rows(hidden):
        return [{"success": h, "box_intact": True, "relation": h, "new_moves": True, "source_ball": True,
                 "ball_on_box": 0.0 if h else 0.5, "psnr": 30.0} for h in hidden]

    run = EditRun(DynVFXConfig.toy(), {"authors": rows([True] * 3 + [False]), "no_anchor_attn": rows([False] * 4)},
                  {"authors": [1.0] * 4, "no_anchor_attn": [1.0] * 4}, [29.0] * 4, 4.0)
    report = box_edit_report(run)
    assert "| the authors' defaults | 75% [" in report and "| no AnchorExtAttn (attention off) | 0% [" in report
    assert "| no AnchorExtAttn (attention off) | +75 [" in report and "(3 / 0)" in report
