#!/usr/bin/env bash
# Build the benchmark-only environment in which MMRazor 1.0.0 runs beside mmkdcal.
#
# MMRazor 1.0.0 does not import under torch 2.x (requirements/benchmarks.txt records why), so the
# MMRazor comparison of tools/benchmarks/peer_step.py runs in a separate virtual environment with
# torch 1.13.1 (the newest torch whose torch.ao.quantization still has the names MMRazor imports;
# cp311 wheels are on PyPI), numpy 1.x (torch 1.13 is built against the numpy 1 ABI), mmcv 2.1.0
# built from source against that torch, mmengine 0.10.7, mmdet 3.3.0 and mmrazor 1.0.0. mmkdcal
# itself runs there from the checkout (PYTHONPATH), so both sides of the comparison share one
# torch. The main environment is never touched.
#
#   bash tools/benchmarks/setup_peer_env.sh [DIR]     # default DIR: work_dirs/peer_env
#
# Idempotent: each step is skipped when what it installs is already there. The mmcv build takes
# 16-20 minutes on 2 cores (MAX_JOBS defaults to the core count). pip's wheel cache is keyed by
# the sdist, not by the torch it was built against, so this environment keeps its own pip cache
# (DIR/pip-cache): a wheel built against another torch is never reused here, and a rebuild of
# this environment reuses its own wheel.
set -euo pipefail
cd "$(dirname "$0")/../.."
ROOT=$(pwd)
ENV_DIR=${1:-work_dirs/peer_env}
PY_BASE=${PYTHON:-python3}
say() { echo "[peer-env] $*"; }

if [ ! -x "$ENV_DIR/bin/python" ]; then
  say "creating the virtual environment $ENV_DIR (from $($PY_BASE --version))"
  $PY_BASE -m venv "$ENV_DIR"
fi
PY="$ENV_DIR/bin/python"
PIP="$PY -m pip --disable-pip-version-check"
# versions this environment is built with (pip resolves everything else against them)
CONSTRAINTS="$ENV_DIR/constraints.txt"
cat > "$CONSTRAINTS" <<'EOF'
torch==1.13.1
numpy<2
# opencv-python >= 4.12 needs numpy 2
opencv-python<4.12
# mmcv's setup.py imports pkg_resources; torch 1.13's cpp_extension imports pkg_resources.packaging,
# which setuptools 70 removed
setuptools<70
mmengine==0.10.7
mmcv==2.1.0
mmdet==3.3.0
mmrazor==1.0.0
EOF
export PIP_CONSTRAINT="$CONSTRAINTS"
export PIP_CACHE_DIR="$ENV_DIR/pip-cache"

has() { "$PY" -c "$1" >/dev/null 2>&1; }

if ! has "import torch, numpy, wheel; assert torch.__version__.startswith('1.13.1')"; then
  say "installing torch 1.13.1, numpy 1.x, setuptools, wheel"
  $PIP install -q "setuptools<70" wheel torch==1.13.1 "numpy<2"
fi
if ! has "import mmengine, cv2"; then
  say "installing mmengine 0.10.7"
  $PIP install -q mmengine==0.10.7 opencv-python
fi
if ! has "import mmcv.ops"; then
  say "building mmcv 2.1.0 with its ops against torch 1.13.1 (16-20 minutes on 2 cores)"
  t0=$(date +%s)
  MAX_JOBS=${MAX_JOBS:-$(nproc)} $PIP install --no-build-isolation --force-reinstall --no-deps \
    mmcv==2.1.0
  $PIP install -q mmcv==2.1.0  # its dependencies
  say "mmcv build and install took $(( $(date +%s) - t0 )) s"
  has "import mmcv.ops" || { say "mmcv was installed without its ops"; exit 1; }
fi
if ! has "import mmdet"; then
  say "installing mmdet 3.3.0"
  $PIP install -q mmdet==3.3.0
fi
if ! has "import mmrazor, ordered_set, joblib"; then
  say "installing mmrazor 1.0.0"
  # --no-deps: its wheel declares only ordered-set; mmrazor.models also imports joblib
  $PIP install -q --no-deps mmrazor==1.0.0
  $PIP install -q ordered-set joblib
fi
rm -f "$ENV_DIR/READY"
PYTHONPATH="$ROOT" "$PY" - <<'PYEOF'
import mmcv, mmcv.ops, mmdet, mmengine, mmrazor, torch  # noqa: F401
from mmrazor.models import ConfigurableDistiller, SingleTeacherDistill  # noqa: F401
import mmkdcal.models  # noqa: F401
print(f'[peer-env] ready: torch {torch.__version__}, mmcv {mmcv.__version__}, '
      f'mmengine {mmengine.__version__}, mmdet {mmdet.__version__}, mmrazor {mmrazor.__version__}')
PYEOF
# what tools/benchmarks/peer_step.py and the tests look for: the environment is complete
date -u +%FT%TZ > "$ENV_DIR/READY"
