/* Generation over many prompts with continuous batching: up to max_batch
 * sequences decode together; when one finishes, the next prompt is admitted and
 * prefilled in the same forward call as the others' decode step. A shared
 * prefix (the guard instruction) is computed once and its KV blocks shared,
 * reference-counted, by every prompt that starts with it.
 *
 * All sequences live in one paged KV pool (kv_cache.h) in the backend's memory.
 * A prompt is admitted only when the pool can give it the blocks for its whole
 * length (prompt + max_tokens, within max_len); a pool with a block limit makes
 * the rest wait for a finishing sequence's blocks. On a backend that samples on
 * the device (backend.h: sample), logits never leave the device: only the
 * tokens, their logprobs and the watched logits come back.
 *
 * A sequence's tokens depend only on its prompt, the seed and its stream id:
 * not on the batch size, the admission order or the thread count (each has its
 * own random stream; the batched forward pass computes every row alone). */
#ifndef GR_GENERATE_H
#define GR_GENERATE_H
#include <stdint.h>
#include "forward.h"
#include "sample.h"

enum { GR_STOP_NONE = 0, GR_STOP_EOS, GR_STOP_LENGTH, GR_STOP_TOO_LONG };

typedef struct gr_gen_req {
    /* in */
    const int *prompt;   /* the whole prompt, shared prefix included */
    int n_prompt;
    uint64_t stream;     /* random stream id (e.g. record index * k + sample) */
    /* out: freed by gr_gen_req_free */
    int *out;            /* generated ids; the stop token is not included */
    int n_out, cap_out;
    float *logprobs;     /* (n_out) log p(token) under the raw model, with opts.logprobs */
    float *watch;        /* (n_out, n_watch) raw logits of the watched ids at each step */
    int stop;            /* GR_STOP_* */
    int eos_id;          /* the end id that stopped it, or -1 */
} gr_gen_req;

typedef struct gr_gen_opts {
    gr_sampler sampler;
    uint64_t seed;
    int max_tokens;      /* new tokens at most */
    int max_len;         /* prompt + generated positions at most (0: the model's max) */
    int max_batch;       /* sequences decoding together (>= 1) */
    int logprobs;        /* 1: fill req->logprobs */
    const int *watch;    /* token ids whose logits are kept at every step */
    int n_watch;
    const int *stop;     /* end ids besides the model's own (e.g. the template's eot) */
    int n_stop;
    const int *prefix;   /* shared prefix tokens, or NULL */
    int n_prefix;
    int ignore_eos;      /* 1: never stop on an end id (fixed-length runs, benchmarks) */
    struct gr_kv_pool *pool; /* the pool to use (in c's backend), or NULL: one of the
                                backend's own, unlimited, made and freed by the call */
    /* Called before the first forward step (0, 0) and after each one with the
     * sequences in it and the tokens it fed; a nonzero return stops generation
     * early: gr_generate returns 0 and requests not finished keep stop
     * GR_STOP_NONE (the caller zeroes stop before the call). NULL: none. */
    int (*step)(void *ud, int n_seqs, int n_fed);
    void *step_ud;
} gr_gen_opts;

/* Called once per request as soon as it finishes (in completion order). */
typedef void (*gr_gen_done)(void *ud, gr_gen_req *req, int index);

/* Generates for reqs[0..n). 0, or -1 with err on a failure of the forward pass. */
int gr_generate(gr_ctx *c, gr_gen_req *reqs, int n, const gr_gen_opts *o, gr_gen_done done,
                void *ud, gr_err *err);
void gr_gen_req_free(gr_gen_req *r);
#endif
