/* Checkpoints of training runs.
 *
 * A Hugging Face model folder (what transformers and vLLM load): config.json
 * (LlamaForCausalLM, 4.x keys), model.safetensors (bf16 by default, rounded to
 * nearest even as torch does, or f32), generation_config.json, and the tokenizer
 * files copied from the base folder when it has them.
 *
 * The training state, our format (trainer_state.bin), little-endian:
 *   "GRTRAIN\0"  u32 version (1)  u32 header bytes (H)
 *   header: u64 step, u64 seed, u64 n_examples, u64 micro_batch, u64 grad_accum,
 *           u64 epochs, u64 T, u64 adam_t, u64 n_params, f64 lr
 *   f32 params[n_params] (the master weights), f32 m[n_params], f32 v[n_params]
 *   u64 checksum of every byte before it: FNV-1a 64 over 8-byte little-endian
 *   words (the header and each array are a multiple of 8 bytes, or the last
 *   bytes one by one)
 * A checkpoint folder OUT/checkpoint-STEP holds both; it is written as
 * OUT/.checkpoint-STEP.tmp and renamed, so a crash never leaves a half
 * checkpoint under the final name. */
#ifndef GR_CHECKPOINT_H
#define GR_CHECKPOINT_H
#include <stdint.h>
#include "train_model.h"

typedef struct gr_train_state {
    uint64_t step, seed, n_examples, micro_batch, grad_accum, epochs, T, adam_t;
    double lr;
    int64_t n_params;
    float *params, *m, *v;   /* borrowed when writing; allocated by gr_state_read */
    /* 0: fp32 training, 1: bf16 mixed precision (--precision bf16). Written as
     * an 11th header field; a state with the 10-field header reads as 0. */
    uint64_t precision;
} gr_train_state;

/* Writes the HF files of m into the existing folder dir (each file atomically).
 * base: the folder the model came from (tokenizer files, generation config), or
 * NULL / a .gguf path (then only what we generate). */
int gr_hf_write(const char *dir, const gr_train_model *m, const char *base, int f32,
                gr_err *err);

int gr_state_write(const char *path, const gr_train_state *s, gr_err *err);
/* Reads and checks (magic, version, sizes, checksum); st->params/m/v are malloc'd. */
int gr_state_read(const char *path, gr_train_state *s, gr_err *err);
void gr_state_free(gr_train_state *s);

/* OUT/checkpoint-STEP with the HF folder and trainer_state.bin, via a temporary
 * folder and a rename (an older folder of the same name is replaced). */
int gr_checkpoint_save(const char *out, const gr_train_model *m, const char *base, int f32,
                       const gr_train_state *s, gr_err *err);
/* The highest STEP with a complete OUT/checkpoint-STEP (0 and path "" if none). */
int gr_checkpoint_latest(const char *out, uint64_t *step, char *path, size_t path_n, gr_err *err);
#endif
