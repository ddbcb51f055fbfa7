#!/usr/bin/env bash
# Install whatever of mmkdcal's pinned stack is missing, then mmkdcal itself (editable).
# Idempotent and fast when everything is there: mmcv is built from source only when
# `import mmcv.ops` fails (pip keeps the built wheel in its cache, so a rebuild is rare).
#
#   bash tools/install.sh           # runtime stack
#   bash tools/install.sh --test    # + the reference libraries the tests use
#
# With a CUDA build of torch that sees a GPU and the CUDA toolkit (nvcc, CUDA_HOME), mmcv's ops
# are built for CUDA too (FORCE_CUDA=1, TORCH_CUDA_ARCH_LIST from the visible card unless given)
# and checked on the GPU. MMKDCAL_CUDA=0 forces CPU-only ops; MMKDCAL_CUDA=1 forces a CUDA build
# (without a visible card, give TORCH_CUDA_ARCH_LIST). PYTHON=... picks the interpreter.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$(pwd)
PY=${PYTHON:-python}
PIP="$PY -m pip --disable-pip-version-check"
WITH_TESTS=0
for arg in "$@"; do
  case "$arg" in
    --test|--tests) WITH_TESTS=1 ;;
    *) echo "install.sh: unknown argument '$arg' (use --test)" >&2; exit 2 ;;
  esac
done

say() { echo "[install] $*"; }

# 1. Python packages from PyPI (pip skips what is already satisfied).
#    torch first: mmcv's build needs it, and `torch==2.13.0` picks the CPU build where one is provided.
if ! $PY -c "import torch, sys; sys.exit(0 if torch.__version__.split('+')[0] == '2.13.0' else 1)" 2>/dev/null; then
  say "installing torch==2.13.0"
  $PIP install -q torch==2.13.0
fi
want="-r requirements/build.txt -r requirements/runtime.txt"
[ "$WITH_TESTS" = 1 ] && want="$want -r requirements/tests.txt"
if ! $PY - "$WITH_TESTS" <<'PYEOF' 2>/dev/null
import sys
from importlib import metadata
from packaging.requirements import Requirement
files = ['requirements/build.txt', 'requirements/runtime.txt']
if sys.argv[1] == '1':
    files.append('requirements/tests.txt')
for f in files:
    for line in open(f):
        line = line.split('#')[0].strip()
        if not line:
            continue
        req = Requirement(line)
        version = metadata.version(req.name).split('+')[0]
        if req.specifier and not req.specifier.contains(version, prereleases=True):
            sys.exit(1)
PYEOF
then
  say "installing missing Python packages ($want)"
  $PIP install -q $want
else
  say "Python packages: all present"
fi

# 2. mmcv 2.1.0 with its compiled ops: from source, after torch, without build isolation
#    (an isolated build silently produces a wheel without mmcv._ext). With CUDA (a CUDA build of
#    torch that sees a GPU, and the CUDA toolkit's nvcc) the ops are built for CUDA too:
#    FORCE_CUDA=1 and TORCH_CUDA_ARCH_LIST, taken from the environment when given, else from the
#    visible card. MMKDCAL_CUDA=auto (default) | 1 (build for CUDA; with no visible card give
#    TORCH_CUDA_ARCH_LIST) | 0 (CPU ops only).
cuda_mode=${MMKDCAL_CUDA:-auto}
case "$cuda_mode" in
  auto|0|1) ;;
  *) say "MMKDCAL_CUDA must be auto, 0 or 1 (got '$cuda_mode')"; exit 2 ;;
esac
use_cuda=0
arch=${TORCH_CUDA_ARCH_LIST:-}
if [ "$cuda_mode" != 0 ]; then
  # probe: cuda. Prints: <torch CUDA version or none> <visible GPUs> <capability of GPU 0 or
  # none> <CUDA_HOME or none>
  probe=$($PY -c "
# probe: cuda
import torch
from torch.utils.cpp_extension import CUDA_HOME
n = torch.cuda.device_count() if torch.version.cuda and torch.cuda.is_available() else 0
cap = '%d.%d' % torch.cuda.get_device_capability(0) if n else 'none'
print(torch.version.cuda or 'none', n, cap, CUDA_HOME or 'none')") || {
    say "could not ask torch about CUDA (does 'import torch' work?)"; exit 1; }
  read -r torch_cuda n_gpu capability cuda_home <<<"$probe"
  if [ "$cuda_mode" = 1 ] || [ "$n_gpu" -gt 0 ]; then
    if [ "$torch_cuda" = none ]; then
      if [ "$cuda_mode" = 1 ]; then
        say "MMKDCAL_CUDA=1 but the installed torch is a CPU build: install a CUDA build of torch==2.13.0 first (https://pytorch.org/get-started/locally/), or set MMKDCAL_CUDA=0"
        exit 1
      fi
    elif [ "$cuda_home" = none ]; then
      say "torch (CUDA ${torch_cuda}) sees ${n_gpu} GPU(s) but no CUDA toolkit (nvcc) was found: install the CUDA ${torch_cuda} toolkit and set CUDA_HOME, or set MMKDCAL_CUDA=0 to build CPU-only ops"
      exit 1
    else
      use_cuda=1
      if [ -z "$arch" ]; then
        if [ "$capability" = none ]; then
          say "MMKDCAL_CUDA=1 with no visible GPU: set TORCH_CUDA_ARCH_LIST to the cards you will use (e.g. TORCH_CUDA_ARCH_LIST='8.0;9.0')"
          exit 1
        fi
        arch=$capability
        say "CUDA ${torch_cuda}: building for the visible card, compute capability ${arch} (set TORCH_CUDA_ARCH_LIST to choose others)"
      else
        say "CUDA ${torch_cuda}: building for TORCH_CUDA_ARCH_LIST=${arch} (given)"
      fi
    fi
  elif [ "$torch_cuda" != none ]; then
    say "torch (CUDA ${torch_cuda}) sees no GPU: building CPU ops only (MMKDCAL_CUDA=1 with TORCH_CUDA_ARCH_LIST builds CUDA ops without a card)"
  fi
fi

# probe: mmcv-ops. Exit 0 when mmcv 2.1.0's ops import (and, for a CUDA build, run on the GPU).
mmcv_ready() {
  $PY -c "
# probe: mmcv-ops
import sys
import mmcv, mmcv.ops
if mmcv.__version__ != '2.1.0':
    sys.exit(1)
if sys.argv[1] == '1':
    import torch
    from mmcv.ops import get_compiling_cuda_version, nms
    if get_compiling_cuda_version() == 'not available':
        sys.exit(1)
    boxes = torch.tensor([[0., 0., 10., 10.], [1., 1., 10., 10.], [20., 20., 30., 30.]]).cuda()
    _, keep = nms(boxes, torch.tensor([0.9, 0.8, 0.7]).cuda(), 0.5)
    sys.exit(0 if keep.tolist() == [0, 2] else 1)
" "$1"
}
if ! mmcv_ready "$use_cuda" 2>/dev/null; then
  if [ "$use_cuda" = 1 ]; then
    say "building mmcv==2.1.0 with its CPU and CUDA ops (FORCE_CUDA=1 TORCH_CUDA_ARCH_LIST=${arch})"
    # a CPU-only build of mmcv (installed, or a wheel in pip's cache) must not be reused
    $PIP uninstall -y -q mmcv 2>/dev/null || true
    FORCE_CUDA=1 TORCH_CUDA_ARCH_LIST="$arch" MAX_JOBS=${MAX_JOBS:-$(nproc)} \
      $PIP install --no-build-isolation --no-cache-dir mmcv==2.1.0
    mmcv_ready 1 || { say "mmcv was installed without working CUDA ops (mmcv.ops.nms on the GPU failed)"; exit 1; }
    say "mmcv 2.1.0: ops checked on CUDA (nms on the GPU)"
  else
    say "building mmcv==2.1.0 with its CPU ops (the long step of a fresh install; once: pip caches the wheel)"
    MAX_JOBS=${MAX_JOBS:-$(nproc)} $PIP install --no-build-isolation mmcv==2.1.0
    mmcv_ready 0 || { say "mmcv was installed without its ops"; exit 1; }
  fi
else
  [ "$use_cuda" = 1 ] && say "mmcv 2.1.0 with CUDA ops: present" || say "mmcv 2.1.0 with ops: present"
fi

# 3. mmkdcal itself, editable, pointing at this checkout.
where=$(cd / && $PY -c "import mmkdcal, os; print(os.path.dirname(os.path.dirname(mmkdcal.__file__)))" 2>/dev/null || true)
if [ "$where" != "$ROOT" ]; then
  say "installing mmkdcal (editable) from $ROOT"
  $PIP install -q --no-deps --no-build-isolation -e .
fi
$PY -c "import mmkdcal, mmcv.ops, mmdet; print('[install] ready: mmkdcal', mmkdcal.__version__, '| mmdet', mmdet.__version__)"
