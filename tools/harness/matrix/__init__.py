"""The benchmark matrix: plan the runs of a set of configs, execute them (resuming), collect the
results, publish the README tables and release the checkpoints.

``tools/benchmark.py`` is the command line (``tools/publish_model.py`` uses :mod:`.release`);
the steps are described in ``docs/benchmark.md``. Import the modules themselves
(``tools.harness.matrix.plan`` ...): this package imports nothing on its own.
"""
