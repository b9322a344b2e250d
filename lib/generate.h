/* Generation over many prompts with continuous batching: up to max_batch
 * sequences decode together; when one finishes, the next prompt is admitted and
 * prefilled in the same forward call as the others' decode step. The prompts
 * come from an array (gr_generate) or are pulled one at a time from a stream
 * (gr_generate_stream: a freed slot is refilled at once from the input). A
 * shared prefix (the guard instruction) is computed once and its KV blocks
 * shared, reference-counted, by every prompt that starts with it (a prompt
 * sharing only its first GR_KV_BLOCK or more tokens with it shares those).
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
    int expect_len;      /* gr_generate_stream on a device: positions per sequence to reserve
                            for max_batch sequences up front (0: the pool grows as needed) */
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

/* What a gr_gen_pull returns. */
enum { GR_PULL_END = 0, GR_PULL_OK = 1, GR_PULL_WAIT = 2 };
/* The next request of a stream: sets *req (the caller's memory, prompt and
 * stream filled in, untouched until done() gets it) and returns GR_PULL_OK;
 * GR_PULL_END when there will be no more; GR_PULL_WAIT when there is none to
 * give now (asked again after the next forward step: only while sequences are
 * running, else it is an error); -1 with err to stop generation with an error.
 * Called whenever a slot is free, before each forward step. */
typedef int (*gr_gen_pull)(void *ud, gr_gen_req **req, gr_err *err);

/* Generates for every request pull gives; done gets each as it finishes with
 * its 0-based pull number. A pulled request the pool has no blocks for yet
 * waits (it is admitted first when blocks come back). Returns 0 (everything
 * pulled finished, or o->step stopped it early: unfinished requests keep stop
 * GR_STOP_NONE), or -1 with err. */
int gr_generate_stream(gr_ctx *c, const gr_gen_opts *o, gr_gen_pull pull, gr_gen_done done, void *ud,
                       gr_err *err);
#endif
