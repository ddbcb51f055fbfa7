#!/usr/bin/env bash
# Multi-process training: tools/dist_train.sh CONFIG NPROC [train.py args...]
# Works on GPUs (nccl) and, for debugging, on CPU (gloo; chosen automatically when CUDA is absent).
CONFIG=$1
NPROC=$2
PORT=${PORT:-29500}
NNODES=${NNODES:-1}
NODE_RANK=${NODE_RANK:-0}
MASTER_ADDR=${MASTER_ADDR:-127.0.0.1}
exec python -m torch.distributed.run --nnodes="$NNODES" --node_rank="$NODE_RANK" \
    --master_addr="$MASTER_ADDR" --master_port="$PORT" --nproc_per_node="$NPROC" \
    "$(dirname "$0")/train.py" "$CONFIG" --launcher pytorch "${@:3}"
