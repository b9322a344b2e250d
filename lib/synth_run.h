/* gr-synth's driver: reads interaction records, keeps up to `concurrency`
 * chat-completions requests in flight on one thread (libcurl's multi
 * interface, keep-alive connections), validates every answer, and appends
 * accepted alpaca records to the output and refused ones to the rejects file,
 * one whole flushed line each, so that a killed run loses at most a torn last
 * line (cut and redone by the next run).
 *
 * Record states. Every input record ends in exactly one of: the output
 * (accepted), the rejects file (its answers failed validation max_attempts
 * times, or the server refused it with 400/413/422), or neither (failed: the
 * server kept erroring past max_retries, or the run was stopped) — and only
 * the last are requested again by the next run with the same output.
 *
 * Retries. 408, 409, 429, 5xx, timeouts, dropped connections and malformed
 * replies are retried with exponential backoff and jitter (Retry-After
 * honoured; a 429 also pauses every new request for that long). Any other 4xx
 * (401, 403, 404, ...) is a configuration error: the run stops.
 *
 * The library never prints: messages about single records go to `note`. */
#ifndef SYNTH_RUN_H
#define SYNTH_RUN_H
#include <signal.h>
#include <stdint.h>
#include "gr_common.h"
#include "synth_request.h"

typedef struct synth_stats {
    long read;              /* records read from the input */
    long skipped_done;      /* already in the output or rejects (resume) */
    long invalid;           /* unusable input records (no prompt, bad label, duplicate id) */
    long accepted, rejected, failed;
    long unstarted;         /* left for the next run because the run stopped */
    long records_retried;   /* records that needed more than one request */
    long answer_retries;    /* requests repeated because the answer was refused */
    long server_retries;    /* requests repeated after a server or transport error */
    long requests;          /* requests completed (any outcome) */
    long steps;             /* reasoning steps in accepted answers */
    long step_chars;        /* their code points */
    long prompt_tokens, completion_tokens; /* usage over every reply (paid) */
    long planned;           /* --dry-run: requests it would make */
    long est_prompt_tokens; /* --dry-run: request bytes/4 summed */
    long resumed_cut;       /* torn bytes cut from the output and rejects */
    int stopped;            /* a signal stopped the run (stop_signal: which) */
    int locked;             /* -1 because another run holds the output's lock */
    double seconds;         /* wall time of the run */
} synth_stats;

typedef struct synth_config {
    const char *endpoint;      /* base URL ("http://127.0.0.1:8080/v1") or a full
                                  ".../chat/completions" URL */
    const char *api_key;       /* NULL: no Authorization header. Never printed. */
    synth_params params;
    const char *system_tmpl;   /* the synthesis prompt, with {request} etc. */
    const char *const *inputs; /* files; NULL/0 or "-": stdin */
    int ninputs;
    const char *map;           /* jq program for the input, or NULL */
    const char *output;        /* NULL/"-": stdout (no resume) */
    const char *rejects;       /* NULL: refused records are only noted */
    int resume;                /* skip ids already in output/rejects (needs a file) */
    int concurrency;
    double rpm, tpm;           /* 0: unlimited */
    long est_completion_tokens;/* completion tokens assumed per request (tpm, cost) */
    double timeout;            /* seconds per request */
    double connect_timeout;
    int max_attempts;          /* answers per record before it is rejected */
    int max_retries;           /* server/transport errors per record before it fails */
    double backoff_base, backoff_max;
    uint64_t seed;             /* jitter */
    int strict;                /* an invalid record stops the run */
    int dry_run;               /* build the requests, send nothing */
    char *dry_first_body;      /* out (dry run): the first request body, malloc'ed */
    volatile sig_atomic_t *stop; /* 1: stop new requests; 2: abandon those in flight */
    void (*note)(void *ctx, const char *msg);
    void (*progress)(void *ctx, const synth_stats *st, int in_flight);
    void *ctx;
} synth_config;

/* 0 when the run ended normally or by a signal (stats->stopped); -1 on a
 * fatal error (unreadable input, write error, a 401...), err saying why. The
 * stats are filled in both cases. */
int synth_run(synth_config *cfg, synth_stats *stats, gr_err *err);
#endif
