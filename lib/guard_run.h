/* The driver behind gr-classify and gr-sample: records in, guard generations
 * out, in input order, resumable.
 *
 * Reason mode and gr-sample: continuous batching fed from the input. The first
 * max(64, 4 x batch) prompts are read ahead and their longest common token
 * prefix -- the guard instruction -- computed once (its KV blocks shared by
 * every prompt that starts with it); then the engine pulls one record at a
 * time from the input whenever a sequence finishes (gr_generate_stream), so a
 * freed slot is refilled at once. Verdict and tiered modes read windows of
 * max(64, 4 x batch) records, each run through the verdict tier together.
 * Each output record is written and flushed as soon as it and every record
 * before it in input order are done (a reorder buffer), so a killed run loses
 * only the records in flight: at most `batch` being generated, plus those
 * finished after the oldest of them -- at most 4 x max(64, 4 x batch) items
 * are held, then no more input is read until the oldest is written.
 * --resume (the fingerprints read back from the output, guard_resume.h)
 * repeats nothing already written. A record without an `id` gets its 0-based
 * position in the input as id; a sample's random stream is its position and
 * sample number, so nothing depends on the batch or on when it was admitted.
 *
 * A prompt that cannot fit the model's context is rejected before anything is
 * computed or allocated for it: its output record has `error` and no
 * generation, and it is counted in `rejected`. */
#ifndef GR_GUARD_RUN_H
#define GR_GUARD_RUN_H
#include <signal.h>
#include "gr_io.h"
#include "guard.h"
#include "record_shard.h"
#include "sample.h"
#include "template.h"

typedef enum { GR_RUN_CLASSIFY, GR_RUN_SAMPLE } gr_run_mode;

/* What a verdict can be flagged for (--fail-on). */
enum {
    GR_FLAG_HARMFUL = 1,    /* request or response harmful */
    GR_FLAG_REFUSAL = 2,    /* completion: refusal */
    GR_FLAG_UNVERIFIED = 4, /* no answer could be read (parse_ok false), or rejected */
    GR_FLAG_ANY = 7,
};

/* The GR_FLAG_* bits of a verdict, and per task whether it is the flagged
 * label (request harmful, completion refusal, response harmful). A verdict
 * without a parsed Request answer is GR_FLAG_UNVERIFIED and nothing else. */
unsigned gr_verdict_flags(const gr_verdict *v, int per_task[GR_NTASKS]);

/* gr_run / gr_run_to_path return this when *opts.stop was set: what was complete
 * is written, the rest is not. */
#define GR_RUN_STOPPED 1

typedef struct gr_run_stats gr_run_stats;
/* Called after every forward step with the sequences in it and the tokens fed. */
typedef void (*gr_run_step_fn)(void *ud, const gr_run_stats *st, int n_seqs, int n_fed);

typedef struct gr_run_opts {
    gr_run_mode mode;
    const char *model_path;      /* HF folder or .gguf */
    const char *tokenizer_path;  /* NULL: the model path */
    gr_template_kind tmpl;
    const char *system;          /* system turn for llama3/chatml, or NULL */
    int threads;                 /* 0: all cores */
    const char *device;          /* --device: cpu (NULL too), cuda, cuda:N */
    int exact;                   /* f32 activations for quantized weights (gr_backend.exact) */
    int batch;                   /* sequences decoding together */
    int max_tokens;
    int ignore_eos;              /* never stop on an end id (fixed-length benchmark runs) */
    gr_sampler sampler;
    uint64_t seed;
    int k;                       /* samples per record (sample mode) */
    int logprobs;                /* classify: add token_logprobs */
    int token_ids;               /* add token_ids: the generated ids */
    const char *model_name;      /* the `model` field; NULL: the model path's base name */
    const gr_reader_opts *reader;
    int strict;                  /* a bad record fails the run instead of being skipped */
    const gr_shard *shard;       /* --shard K/N: only records whose id falls in it; NULL: all.
                                    Positions (default ids, sample streams) stay the input's. */
    unsigned fail_on;            /* GR_FLAG_* bits: verdicts with any are counted in st->matched */
    volatile sig_atomic_t *stop; /* non-zero (a signal handler sets it): stop at the next step */
    int wait_lock;               /* gr_run_to_path: wait for the output lock instead of failing */
    gr_run_step_fn on_step;      /* progress and --log; NULL: none */
    void *step_ud;
    /* classify: --mode, --escalate, --instruction (guard_verdict.h, guard_policy.h) */
    int guard_mode;              /* gr_guard_mode: GR_GUARD_REASON (0), _VERDICT, _TIERED */
    double escalate_lo, escalate_hi; /* tiered: a score in [lo, hi] sends the record to reason mode */
    const struct gr_policy *policy;  /* replaces the guard instruction of interaction records; NULL: built in */
} gr_run_opts;

struct gr_run_stats {
    long records, written, skipped_bad, skipped_done, unparsed, truncated;
    long other_shard;            /* records of other shards (--shard), not counted in records */
    long rejected;               /* prompts too long for the context, answered with `error` */
    long flagged[3];             /* verdicts harmful / refusal / harmful, per task (classify) */
    long matched;                /* verdicts with a --fail-on flag */
    long prompt_tokens, generated_tokens;
    long steps, sampled_tokens;  /* forward steps so far, tokens sampled in them */
    long done_in_output;         /* records found in the output by --resume */
    long replaced;               /* invalid UTF-8 sequences replaced (--replace-invalid) */
    double seconds;
    size_t cut_bytes;            /* torn last line cut from the output on resume */
};

/* Called with "FILE:LINE: what" for each record skipped as bad. */
typedef void (*gr_run_warn)(void *ud, const char *msg);

/* done_path: an existing output whose records are skipped (guard_resume.h);
 * NULL for none. 0, -1 (err), or GR_RUN_STOPPED. */
int gr_run(const gr_run_opts *o, char *const *files, int n_files, const char *done_path,
           gr_writer *w, gr_run_warn warn, void *ud, gr_run_stats *st, gr_err *err);

/* gr_run with its output: out_path (NULL or "-": stdout) is written atomically;
 * with resume it is appended to after cutting a torn last line, skipping what it
 * already holds, and a failed or stopped run keeps what it wrote so that
 * --resume goes on (without resume, the final name is left untouched).
 * A file output is locked (gr_lock.h: OUT.lock) for the whole run, and stale
 * temporaries of dead runs (".OUT.tmp.XXXXXX") are removed under the lock.
 * 0, -1, GR_LOCK_BUSY (another run holds the lock) or GR_RUN_STOPPED. */
int gr_run_to_path(const gr_run_opts *o, char *const *files, int n_files, const char *out_path,
                   int resume, gr_run_warn warn, void *ud, gr_run_stats *st, gr_err *err);
#endif
