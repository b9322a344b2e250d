#!/usr/bin/env bash
# A Slurm job array of gr-classify: task K of N moderates shard K/N of the
# input (a deterministic split by a hash of each record's id, gr-classify(1)
# --shard), so the N outputs are disjoint and together hold exactly one verdict
# per record. Each task writes OUTDIR/verdicts.K-of-N.jsonl with --resume: a
# task that is requeued or preempted goes on where it stopped.
#
#   sbatch --array=1-8 scripts/slurm/classify-array.sh OUTDIR -m MODEL [OPTIONS] INPUT...
#   # when all tasks are done (or: sbatch --dependency=afterok:JOBID ...):
#   cat OUTDIR/verdicts.*-of-8.jsonl > verdicts.jsonl
#
# Everything after OUTDIR goes to gr-classify as is (the model, --max-tokens,
# --map, the inputs); the script adds --shard, -o, --resume and --threads (the
# task's CPUs). The array must be one contiguous range (--array=1-N or 0-(N-1),
# a %limit is fine, a :step is not): K and N come from SLURM_ARRAY_TASK_ID,
# SLURM_ARRAY_TASK_MIN and SLURM_ARRAY_TASK_COUNT. GR_CLASSIFY names the
# binary (default: gr-classify on PATH).
#
#SBATCH --job-name=gr-classify
#SBATCH --cpus-per-task=16
#SBATCH --mem=16G
#SBATCH --time=12:00:00
#SBATCH --requeue
#SBATCH --output=gr-classify-%A_%a.log
set -euo pipefail
if [ $# -lt 2 ]; then
    echo "usage: sbatch --array=1-N $0 OUTDIR -m MODEL [OPTIONS] INPUT..." >&2
    exit 2
fi
if [ -z "${SLURM_ARRAY_TASK_ID:-}" ] || [ -z "${SLURM_ARRAY_TASK_COUNT:-}" ]; then
    echo "$0: not a Slurm array task (SLURM_ARRAY_TASK_ID and SLURM_ARRAY_TASK_COUNT unset): submit with sbatch --array=1-N" >&2
    exit 2
fi
outdir=$1
shift
min=${SLURM_ARRAY_TASK_MIN:-1}
n=$SLURM_ARRAY_TASK_COUNT
k=$((SLURM_ARRAY_TASK_ID - min + 1))
if [ "$k" -lt 1 ] || [ "$k" -gt "$n" ]; then
    echo "$0: task $SLURM_ARRAY_TASK_ID is outside $min..$((min + n - 1)): the array must be one contiguous range" >&2
    exit 2
fi
mkdir -p "$outdir"
threads=()
if [ -n "${SLURM_CPUS_PER_TASK:-}" ]; then threads=(--threads "$SLURM_CPUS_PER_TASK"); fi
exec "${GR_CLASSIFY:-gr-classify}" ${threads[@]+"${threads[@]}"} --shard "$k/$n" --resume \
    -o "$outdir/verdicts.$k-of-$n.jsonl" "$@"
