"""The lab: how the project trains the toy model and measures it and the method on it.

Single-purpose modules, above the method's stages (they run the edit; nothing in the method imports them):

- :mod:`~dynvfx.lab.train`: the toy model's training (``python -m dynvfx.lab.train``; ``make train``);
- :mod:`~dynvfx.lab.edit_bench`: DynVFX on held-out pairs, its variants and scores (``benchmarks/toy_edit.py``);
- :mod:`~dynvfx.lab.quality_bench`: does the toy model draw what held-out captions ask for
  (``benchmarks/toy_model_quality.py``);
- :mod:`~dynvfx.lab.words_bench`: how much the toy model listens to each caption word
  (``benchmarks/toy_word_sensitivity.py``);
- :mod:`~dynvfx.lab.stats`: shares, means and paired differences with their intervals;
- :mod:`~dynvfx.lab.pool`: worker processes that end with their parent;
- :mod:`~dynvfx.lab.reports`: the benchmarks' markdown tables.

The scripts in ``benchmarks/`` are thin command-line wrappers around these modules.
"""
