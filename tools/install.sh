#!/usr/bin/env bash
# Install whatever of mmkdcal's pinned stack is missing, then mmkdcal itself (editable).
# Idempotent and fast when everything is there: mmcv is built from source only when
# `import mmcv.ops` fails (pip keeps the built wheel in its cache, so a rebuild is rare).
#
#   bash tools/install.sh           # runtime stack
#   bash tools/install.sh --test    # + the reference libraries the tests use
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
#    (an isolated build silently produces a wheel without mmcv._ext).
if ! $PY -c "import mmcv, mmcv.ops, sys; sys.exit(0 if mmcv.__version__ == '2.1.0' else 1)" 2>/dev/null; then
  say "building mmcv==2.1.0 with its ops (15-23 minutes on 2 cores, once; pip caches the wheel)"
  MAX_JOBS=${MAX_JOBS:-$(nproc)} $PIP install --no-build-isolation mmcv==2.1.0
  $PY -c "import mmcv.ops" || { say "mmcv was installed without its ops"; exit 1; }
else
  say "mmcv 2.1.0 with ops: present"
fi

# 3. mmkdcal itself, editable, pointing at this checkout.
where=$(cd / && $PY -c "import mmkdcal, os; print(os.path.dirname(os.path.dirname(mmkdcal.__file__)))" 2>/dev/null || true)
if [ "$where" != "$ROOT" ]; then
  say "installing mmkdcal (editable) from $ROOT"
  $PIP install -q --no-deps --no-build-isolation -e .
fi
$PY -c "import mmkdcal, mmcv.ops, mmdet; print('[install] ready: mmkdcal', mmkdcal.__version__, '| mmdet', mmdet.__version__)"
