#!/usr/bin/env bash
# Multi-process training (MMDetection's tools/dist_train.sh interface):
#   [NNODES=1] [NODE_RANK=0] [MASTER_ADDR=127.0.0.1] [PORT=29500] \
#       tools/dist_train.sh CONFIG GPUS [train.py args...]
# runs, with the repository root first on PYTHONPATH,
#   python -m torch.distributed.run --nnodes=NNODES --node_rank=NODE_RANK
#       --master_addr=MASTER_ADDR --nproc_per_node=GPUS --master_port=PORT
#       tools/train.py CONFIG --launcher pytorch [args...]
# Several nodes: run it on every node with the same NNODES, MASTER_ADDR (node 0's address) and
# PORT, and NODE_RANK=0..NNODES-1. Works on GPUs (nccl) and, for debugging, on CPU (gloo, chosen
# automatically when CUDA is absent). PYTHON picks the interpreter (default: python).
set -euo pipefail
if [ "$#" -lt 2 ]; then
    echo "usage: $0 CONFIG GPUS [train.py args...]" >&2
    exit 2
fi
TOOLS=$(dirname "$0")
CONFIG=$1
GPUS=$2
NNODES=${NNODES:-1}
NODE_RANK=${NODE_RANK:-0}
PORT=${PORT:-29500}
MASTER_ADDR=${MASTER_ADDR:-127.0.0.1}
PYTHON=${PYTHON:-python}
shift 2

PYTHONPATH="$TOOLS/..${PYTHONPATH:+:$PYTHONPATH}" \
exec "$PYTHON" -m torch.distributed.run \
    --nnodes="$NNODES" \
    --node_rank="$NODE_RANK" \
    --master_addr="$MASTER_ADDR" \
    --nproc_per_node="$GPUS" \
    --master_port="$PORT" \
    "$TOOLS/train.py" "$CONFIG" --launcher pytorch "$@"
