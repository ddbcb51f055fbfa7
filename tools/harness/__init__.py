"""What the tools share and the installed package does not hold.

- :mod:`.jobs`: the one job runner (subprocess per command, resume stamps, parallel slots,
  progress, failures listed), used by ``tools/demo.py``, the benchmark matrix and the studies of
  ``projects/``;
- :mod:`.matrix`: the benchmark matrix behind ``tools/benchmark.py``.

Import it as ``tools.harness`` with the checkout on ``sys.path`` (the tools put it there).
"""
