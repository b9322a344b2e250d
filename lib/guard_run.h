/* The driver behind gr-classify and gr-sample: records in, guard generations
 * out, in input order, resumable.
 *
 * Records are read in windows; each window's prompts are generated together
 * (continuous batching, `batch` sequences at a time; the longest common token
 * prefix of the window -- the guard instruction -- computed once), then written
 * in input order, so an interrupted run loses at most one window and --resume
 * (an `id` set read back from the output) repeats nothing already written.
 * A record without an `id` gets its 0-based position in the input as id. */
#ifndef GR_GUARD_RUN_H
#define GR_GUARD_RUN_H
#include "gr_io.h"
#include "record_shard.h"
#include "sample.h"
#include "template.h"

typedef enum { GR_RUN_CLASSIFY, GR_RUN_SAMPLE } gr_run_mode;

typedef struct gr_run_opts {
    gr_run_mode mode;
    const char *model_path;      /* HF folder or .gguf */
    const char *tokenizer_path;  /* NULL: the model path */
    gr_template_kind tmpl;
    const char *system;          /* system turn for llama3/chatml, or NULL */
    int threads;                 /* 0: all cores */
    int exact;                   /* f32 activations for quantized weights (gr_backend.exact) */
    int batch;                   /* sequences decoding together */
    int max_tokens;
    gr_sampler sampler;
    uint64_t seed;
    int k;                       /* samples per record (sample mode) */
    int logprobs;                /* classify: add token_logprobs */
    const char *model_name;      /* the `model` field; NULL: the model path's base name */
    const gr_reader_opts *reader;
    int strict;                  /* a bad record fails the run instead of being skipped */
    const gr_shard *shard;       /* --shard K/N: only records whose id falls in it; NULL: all.
                                    Positions (default ids, sample streams) stay the input's. */
    /* classify: --mode, --escalate, --instruction (guard_verdict.h, guard_policy.h) */
    int guard_mode;              /* gr_guard_mode: GR_GUARD_REASON (0), _VERDICT, _TIERED */
    double escalate_lo, escalate_hi; /* tiered: a score in [lo, hi] sends the record to reason mode */
    const struct gr_policy *policy;  /* replaces the guard instruction of interaction records; NULL: built in */
} gr_run_opts;

typedef struct gr_run_stats {
    long records, written, skipped_bad, skipped_done, unparsed, truncated;
    long other_shard;            /* records of other shards (--shard), not counted in records */
    long prompt_tokens, generated_tokens;
    double seconds;
    size_t cut_bytes;            /* torn last line cut from the output on resume */
} gr_run_stats;

/* Called with "FILE:LINE: what" for each record skipped as bad. */
typedef void (*gr_run_warn)(void *ud, const char *msg);

/* done_path: an existing output whose ids (and, in sample mode, (id, k)
 * pairs) are skipped; NULL for none. */
int gr_run(const gr_run_opts *o, char *const *files, int n_files, const char *done_path,
           gr_writer *w, gr_run_warn warn, void *ud, gr_run_stats *st, gr_err *err);

/* gr_run with its output: out_path (NULL or "-": stdout) is written atomically;
 * with resume it is appended to after cutting a torn last line, skipping what it
 * already holds, and a failed run keeps what it wrote so that --resume goes on. */
int gr_run_to_path(const gr_run_opts *o, char *const *files, int n_files, const char *out_path,
                   int resume, gr_run_warn warn, void *ud, gr_run_stats *st, gr_err *err);
#endif
