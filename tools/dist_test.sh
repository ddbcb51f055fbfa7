#!/usr/bin/env bash
# Multi-process testing (MMDetection's tools/dist_test.sh interface):
#   [NNODES=1] [NODE_RANK=0] [MASTER_ADDR=127.0.0.1] [PORT=29500] \
#       tools/dist_test.sh CONFIG CHECKPOINT GPUS [test.py args...]
# runs, with the repository root first on PYTHONPATH,
#   python -m torch.distributed.run --nnodes=NNODES --node_rank=NODE_RANK
#       --master_addr=MASTER_ADDR --nproc_per_node=GPUS --master_port=PORT
#       tools/test.py CONFIG CHECKPOINT --launcher pytorch [args...]
# Several nodes: as tools/dist_train.sh. PYTHON picks the interpreter (default: python).
set -euo pipefail
if [ "$#" -lt 3 ]; then
    echo "usage: $0 CONFIG CHECKPOINT GPUS [test.py args...]" >&2
    exit 2
fi
TOOLS=$(dirname "$0")
CONFIG=$1
CHECKPOINT=$2
GPUS=$3
NNODES=${NNODES:-1}
NODE_RANK=${NODE_RANK:-0}
PORT=${PORT:-29500}
MASTER_ADDR=${MASTER_ADDR:-127.0.0.1}
PYTHON=${PYTHON:-python}
shift 3

PYTHONPATH="$TOOLS/..${PYTHONPATH:+:$PYTHONPATH}" \
exec "$PYTHON" -m torch.distributed.run \
    --nnodes="$NNODES" \
    --node_rank="$NODE_RANK" \
    --master_addr="$MASTER_ADDR" \
    --nproc_per_node="$GPUS" \
    --master_port="$PORT" \
    "$TOOLS/test.py" "$CONFIG" "$CHECKPOINT" --launcher pytorch "$@"
