/* Pieces of a training run's file handling shared by gr-sft and gr-dpo. */
#ifndef GR_TRAIN_RUN_H
#define GR_TRAIN_RUN_H
#include <stdint.h>
#include "checkpoint.h"
#include "gr_common.h"
#include "gr_io.h"
#include "train_optim.h"

/* mkdir -p: dir and its missing parents. */
int gr_mkdir_p(const char *dir, gr_err *err);

/* On --resume: rewrites the JSONL log at path (atomically) keeping the lines of
 * steps <= step (a killed run may have logged steps after its last checkpoint,
 * and a torn last line). *elapsed = the elapsed_s of the last kept line (0 if
 * none). A missing file is no error. */
int gr_train_log_cut(const char *path, uint64_t step, double *elapsed, gr_err *err);

/* On --resume: reads CKPT/trainer_state.bin, checks that it was made with the
 * settings of `want` (n_params, seed, n_examples, micro_batch, grad_accum,
 * epochs, T, lr; `what` names the examples in the message, e.g. "data size"),
 * and restores the master weights, AdamW's moments and step count, and *step. */
int gr_train_state_restore(const char *ckpt, const gr_train_state *want, const char *what,
                           gr_train_model *m, gr_adamw *opt, int64_t *step, gr_err *err);

/* Opens the JSONL step log for appending; a fresh run (not a resume from a
 * checkpoint) empties it first, since an old log would mislead. */
gr_writer *gr_train_log_open(const char *path, int fresh, gr_err *err);

/* The backend a trainer runs on, by its --device name (cpu, cuda, cuda:N).
 * With data parallelism (world > 1), plain "cuda" means the process's local
 * GPU (OMPI_COMM_WORLD_LOCAL_RANK, MPI_LOCALRANKID or SLURM_LOCALID; one
 * process per GPU). NULL with err when this build has no CUDA or no GPU is
 * there; the message names the device. */
gr_backend *gr_train_backend_open(const char *device, int threads, int world, gr_err *err);
/* --precision: bf16 = 1 makes the training matmuls take bf16-rounded operands
 * with fp32 accumulation (backend.h train_bf16); the CPU backend only (an
 * error on others, so no device silently trains in another precision). */
int gr_train_set_precision(gr_backend *be, int bf16, gr_err *err);
#endif
