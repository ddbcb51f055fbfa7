#!/usr/bin/env bash
# Test on a Slurm cluster (MMDetection's tools/slurm_test.sh interface):
#   [GPUS=8] [GPUS_PER_NODE=8] [CPUS_PER_TASK=5] [SRUN_ARGS="..."] \
#       tools/slurm_test.sh PARTITION JOB_NAME CONFIG CHECKPOINT [test.py args...]
# runs, with the repository root first on PYTHONPATH,
#   srun -p PARTITION --job-name=JOB_NAME --gres=gpu:GPUS_PER_NODE --ntasks=GPUS
#        --ntasks-per-node=GPUS_PER_NODE --cpus-per-task=CPUS_PER_TASK --kill-on-bad-exit=1
#        SRUN_ARGS python -u tools/test.py CONFIG CHECKPOINT --launcher=slurm [args...]
# SRUN_ARGS is split into words; every other argument is passed on exactly as given. PYTHON
# picks the interpreter (default: python).
set -euo pipefail
if [ "$#" -lt 4 ]; then
    echo "usage: $0 PARTITION JOB_NAME CONFIG CHECKPOINT [test.py args...]" >&2
    exit 2
fi
TOOLS=$(dirname "$0")
PARTITION=$1
JOB_NAME=$2
CONFIG=$3
CHECKPOINT=$4
GPUS=${GPUS:-8}
GPUS_PER_NODE=${GPUS_PER_NODE:-8}
CPUS_PER_TASK=${CPUS_PER_TASK:-5}
SRUN_ARGS=${SRUN_ARGS:-""}
PYTHON=${PYTHON:-python}
shift 4

set -x
# shellcheck disable=SC2086  # SRUN_ARGS: several srun options in one variable, as in MMDetection
PYTHONPATH="$TOOLS/..${PYTHONPATH:+:$PYTHONPATH}" \
srun -p "$PARTITION" \
    --job-name="$JOB_NAME" \
    --gres=gpu:"$GPUS_PER_NODE" \
    --ntasks="$GPUS" \
    --ntasks-per-node="$GPUS_PER_NODE" \
    --cpus-per-task="$CPUS_PER_TASK" \
    --kill-on-bad-exit=1 \
    $SRUN_ARGS \
    "$PYTHON" -u "$TOOLS/test.py" "$CONFIG" "$CHECKPOINT" --launcher=slurm "$@"
