"""The benchmarks' markdown tables: the edit benchmark's report, the model-quality table and the
word-sensitivity table, as the benchmark scripts print them and ``scripts/docs_tables.py`` writes them into the
docs."""

from __future__ import annotations

import numpy as np
import torch

from dynvfx.lab.edit_bench import PASS_STORIES, VARIANTS, EditRun, pass_story
from dynvfx.lab.quality_bench import QUALITY_ROWS
from dynvfx.lab.stats import bootstrap, cell, paired_difference, share
from dynvfx.lab.words_bench import SENSITIVITY_TIMESTEPS


def edit_report(run: EditRun) -> str:
    """The benchmark's markdown table (one row per variant) with its heading and footer."""
    base, n_pairs = run.config, len(run.ceiling)
    span = f"pairs {run.first + 1} to {run.first + n_pairs}, " if run.first else ""
    lines = [f"DynVFX on the toy model: {n_pairs} pairs ({span}new ball {run.new.replace('_', ' ')}), "
             f"{base.num_inference_steps} steps, guidance {base.guidance_scale}, strengths {list(base.strengths)}; "
             f"success = strict judge (background, source ball and new ball moving as asked, nothing else); "
             f"[95 % intervals]\n",
             "| variant | success | new ball right | new ball copies the source's motion | source ball right | "
             "nothing extra | source IoU | PSNR outside (dB) | SSIM outside | PSNR outside, raw decode(x_comp) | "
             "s / edit |",
             "|---|---|---|---|---|---|---|---|---|---|---|"]
    for name, rows in run.results.items():
        m, lo, hi = bootstrap([r["iou"] for r in rows])
        psnr, ssim, raw = (bootstrap([r[key] for r in rows])[0] for key in ("psnr", "ssim", "psnr_raw"))
        lines.append(f"| {VARIANTS[name][0]} | {share(rows, 'success')} | {share(rows, 'new_moves')} | "
                     f"{share(rows, 'copies_source')} | {share(rows, 'source_moves')} | {share(rows, 'no_extra')} | "
                     f"{m:.2f} [{lo:.2f}, {hi:.2f}] | "
                     f"{psnr:.1f} | {ssim:.3f} | {raw:.1f} | {np.mean(run.seconds[name]):.0f} |")
    others = [name for name in run.results if name != "authors"]
    if "authors" in run.results and others:
        lines += ["\nthe authors' defaults against each other variant on the same pairs: success difference in points "
                  "with its paired 95 % bootstrap interval (resampling pairs), and the pairs only one of the two gets "
                  "right\n",
                  "| the authors' defaults against | difference | authors' defaults only | the other only |",
                  "|---|---|---|---|"]
        for name in others:
            d, lo, hi, a_only, b_only = paired_difference(run.results["authors"], run.results[name])
            lines.append(f"| {VARIANTS[name][0]} | {100 * d:+.0f} [{100 * lo:+.0f}, {100 * hi:+.0f}] | {a_only} | "
                         f"{b_only} |")
    stories = {name: rows for name, rows in run.results.items() if rows and len(rows[0].get("passes", [])) > 1}
    if stories:
        lines += ["\nthe refinement passes, pair by pair (pass_story): *kept* the first pass finds the new ball in every "
                  "frame of x_hat and so does the last pass that finds it; *rescued* the first does not, the last does; "
                  "*lost* a pass finds it in every frame, the last pass that finds it does not; *never*; pairs "
                  "(of which succeed)\n",
                  "| variant | " + " | ".join(PASS_STORIES) + " |", "|---|" + "---|" * len(PASS_STORIES)]
        for name, rows in stories.items():
            told = [(pass_story(r["passes"]), r["success"]) for r in rows]
            lines.append(f"| {VARIANTS[name][0]} | " + " | ".join(
                f"{sum(s == story for s, _ in told)} ({sum(ok for s, ok in told if s == story)})"
                for story in PASS_STORIES) + " |")
    lines += [f"\nautoencoder reconstruction PSNR of the sources (the ceiling outside the mask): "
              f"{np.mean(run.ceiling):.1f} dB",
              f"total {run.total_seconds:.0f} s on {run.threads or torch.get_num_threads()} CPU threads"
              + (f" in all, over the {run.joined} joined runs" if run.joined > 1 else "")]
    return "\n".join(lines)


def box_edit_report(run: EditRun) -> str:
    """The box edit benchmark's markdown table (one row per variant), each other variant against the authors'
    defaults (paired), and the footer."""
    base, n = run.config, len(run.ceiling)
    lines = [f"DynVFX on box scenes: {n} pairs (new ball {run.new.replace('_', ' ')}, crossing the box), "
             f"{base.num_inference_steps} steps, guidance {base.guidance_scale}; success = strict box judge (box "
             f"intact, the new ball on the asked side of the box, seen on both sides and moving as asked, the source "
             f"ball as before, nothing else); [95 % intervals]\n",
             "| variant | success | box intact | new ball on the asked side | new ball moves across | source ball "
             "right | new ball's colour on the box (mean of the most in a frame) | PSNR outside (dB) | s / edit |",
             "|---|---|---|---|---|---|---|---|---|"]
    for name, rows in run.results.items():
        m, lo, hi = bootstrap([r["ball_on_box"] for r in rows])
        lines.append(f"| {VARIANTS[name][0]} | {share(rows, 'success')} | {share(rows, 'box_intact')} | "
                     f"{share(rows, 'relation')} | {share(rows, 'new_moves')} | {share(rows, 'source_ball')} | "
                     f"{m:.0%} [{lo:.0%}, {hi:.0%}] | {bootstrap([r['psnr'] for r in rows])[0]:.1f} | "
                     f"{np.mean(run.seconds[name]):.0f} |")
    others = [name for name in run.results if name != "authors"]
    if "authors" in run.results and others:
        lines += ["\nthe authors' defaults against each other variant on the same pairs, in points, with the paired "
                  "95 % bootstrap interval (resampling pairs) and the pairs only one of the two gets right\n",
                  "| the authors' defaults against | success | box intact | new ball on the asked side |",
                  "|---|---|---|---|"]
        for name in others:
            cells = []
            for key in ("success", "box_intact", "relation"):
                d, lo, hi, a_only, b_only = paired_difference(run.results["authors"], run.results[name], key)
                cells.append(f"{100 * d:+.0f} [{100 * lo:+.0f}, {100 * hi:+.0f}] ({a_only} / {b_only})")
            lines.append(f"| {VARIANTS[name][0]} | " + " | ".join(cells) + " |")
    lines.append(f"\nautoencoder reconstruction PSNR of the sources: {np.mean(run.ceiling):.1f} dB; total "
                 f"{run.total_seconds:.0f} s on {run.threads or torch.get_num_threads()} CPU threads"
                 + (f" in all, over the {run.joined} joined runs" if run.joined > 1 else ""))
    return "\n".join(lines)


def box_attention_report(rows: list[dict], new: str = "held_out") -> str:
    """The markdown table of :func:`dynvfx.lab.box_bench.box_anchor_attention`'s rows (over pairs): per layer, at
    each timestep of the window, the means of the new ball's attention on all anchors, on the box's and on the
    source ball's."""
    pairs, held = len({r.get("pair", 0) for r in rows}), np.mean([r["box_anchor_share"] for r in rows])
    steps = sorted({r["timestep"] for r in rows}, reverse=True)
    at = " / ".join(str(t) for t in steps)
    lines = [f"the new ball's queries ({pairs} pairs, new ball {new.replace('_', ' ')}): mean share of their attention "
             f"on all anchors, on the box's anchors and on the source ball's, and how much the anchors change the "
             f"layer's attention output at the new ball's tokens and at the box's (relative), at timesteps {at} of "
             f"the injection window; the box holds {held:.0%} of the anchors\n",
             "| layer | on the anchors | on the box's | on the source ball's | output change, new ball | "
             "output change, box |", "|---|---|---|---|---|---|"]
    for layer in sorted({r["layer"] for r in rows}):
        cells = []
        for key in ("anchors", "box", "ball", "change_new", "change_box"):
            means = [np.mean([r[key] for r in rows if (r["timestep"], r["layer"]) == (t, layer)]) for t in steps]
            cells.append(" / ".join(f"{m:.0%}" for m in means))
        lines.append(f"| {layer} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def quality_table(generated: dict, rendered: dict) -> str:
    """The markdown table of :data:`QUALITY_ROWS`: generated and rendered shares with intervals, and the bar."""
    lines = ["| check | generated [95 % interval] | renderer (ceiling) | bar |", "|---|---|---|---|"]
    for label, kinds, key, bar in QUALITY_ROWS:
        g, g_text = cell([r for k in kinds for r in generated[k]], key)
        _, r_text = cell([r for k in kinds for r in rendered[k]], key)
        verdict = "" if bar is None else (f"≥ {bar:.0%} " + ("✓" if g >= bar else "✗"))
        lines.append(f"| {label} | {g_text} | {r_text} | {verdict} |")
    return "\n".join(lines)


def sensitivity_table(mean: dict[str, np.ndarray]) -> str:
    """The markdown table of :func:`word_sensitivity`: one row per timestep."""
    lines = ["| timestep t | colour swap | motion swap | motions exchanged between two balls | motion / colour |",
             "|---|---|---|---|---|"]
    for k, t in enumerate(SENSITIVITY_TIMESTEPS):
        colour, motion, binding = mean["colour"][k], mean["motion"][k], mean["binding"][k]
        lines.append(f"| {t} | {colour:.2f} | {motion:.2f} | {binding:.2f} | {motion / colour:.2f} |")
    return "\n".join(lines)
