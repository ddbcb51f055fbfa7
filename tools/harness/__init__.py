"""What the tools share and the installed package does not hold.

- :mod:`.jobs`: the one job runner (subprocess per command, resume stamps, parallel slots,
  progress, failures listed), used by ``tools/demo.py``, the benchmark matrix and the studies of
  ``projects/``;
- :mod:`.matrix`: the benchmark matrix behind ``tools/benchmark.py``;
- :mod:`.launch`, :mod:`.work_dir`, :mod:`.trained_model`: what ``tools/train.py``,
  ``tools/test.py``, ``tools/calibrate.py`` and ``tools/analysis/rank_teachers.py`` share (flags,
  config, CPU-only DDP; work-dir, resume and disk checks; a trained model checked against its
  config); :mod:`.machine`: the machine line of the reports.

Import it as ``tools.harness`` with the checkout on ``sys.path`` (the tools put it there).
"""
