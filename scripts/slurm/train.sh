#!/usr/bin/env bash
# Data-parallel R-SFT or HS-DPO under Slurm: one process per GPU, started by
# srun, the rendezvous through MPI (lib/dp.h): srun launches the MPI build of
# the trainer (make mpi -> build/mpi/gr-sft, build/mpi/gr-dpo), MPI_Init connects
# the processes through Slurm's PMI, rank 0's ncclUniqueId is broadcast over
# MPI and every process joins the NCCL communicator (ncclCommInitRank); the
# gradients are then summed over NCCL in 25 MiB buckets that start during the
# backward pass. Process i uses its node's GPU SLURM_LOCALID (--device cuda
# under MPI picks the local GPU). Every process takes the same optimizer
# steps; rank 0 alone logs and writes the checkpoints and the model. The
# global batch is the one-process batch: --micro-batch sequences are split over
# the processes (sequence i of a micro-batch to rank i mod world), so keep
# --micro-batch a multiple of the number of GPUs.
#
#   sbatch --nodes=1 --gpus-per-node=4 --ntasks-per-node=4 scripts/slurm/train.sh \
#       sft --base MODEL --data train.tokens.jsonl --out rsft --log rsft/log.jsonl --save-every 50
#   sbatch --nodes=2 --gpus-per-node=8 --ntasks-per-node=8 scripts/slurm/train.sh \
#       dpo --base rsft --pairs pairs.jsonl --out hsdpo
#
# The first argument picks the trainer (sft or dpo); the rest goes to it as is;
# the script adds --device cuda unless a --device is given. GR_TRAIN_BIN names
# the binary (default build/mpi/gr-sft or build/mpi/gr-dpo beside this script's
# checkout). Needs Slurm built with PMIx or PMI2 support for the MPI in use
# (srun --mpi=list; GR_SRUN_MPI, default pmix, picks it). The CPU works the
# same way without GPUs (--device cpu): the gradients then go over MPI.
#
#SBATCH --job-name=gr-train
#SBATCH --cpus-per-task=8
#SBATCH --time=24:00:00
#SBATCH --output=gr-train-%j.log
set -euo pipefail
if [ $# -lt 1 ] || { [ "$1" != sft ] && [ "$1" != dpo ]; }; then
    echo "usage: sbatch [--nodes=N --gpus-per-node=G --ntasks-per-node=G] $0 sft|dpo TRAINER-OPTIONS..." >&2
    exit 2
fi
what=$1
shift
here=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
bin=${GR_TRAIN_BIN:-$here/build/mpi/gr-$what}
if [ ! -x "$bin" ]; then
    echo "$0: $bin not found: build it with 'make mpi' (needs mpicc; nvcc and nccl.h for GPUs)" >&2
    exit 1
fi
dev=(--device cuda)
for a in "$@"; do case $a in --device|--device=*) dev=();; esac; done
export OMP_NUM_THREADS=1
exec srun --mpi="${GR_SRUN_MPI:-pmix}" --kill-on-bad-exit=1 "$bin" "${dev[@]}" "$@" \
    --threads "${SLURM_CPUS_PER_TASK:-0}"
