/* gr-classify / gr-sample: progress, logs, summary, exit status (guard_run_cli.h). */
#include "guard_run_cli.h"
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include "gr_cli.h"
#include "gr_lock.h"

unsigned gr_run_cli_fail_on(const char *s) {
    unsigned bits = 0;
    const char *p = s;
    while (*p) {
        size_t n = strcspn(p, ",");
        if (n == 7 && !strncmp(p, "harmful", n)) bits |= GR_FLAG_HARMFUL;
        else if (n == 7 && !strncmp(p, "refusal", n)) bits |= GR_FLAG_REFUSAL;
        else if (n == 10 && !strncmp(p, "unverified", n)) bits |= GR_FLAG_UNVERIFIED;
        else if (n == 3 && !strncmp(p, "any", n)) bits |= GR_FLAG_ANY;
        else gr_usage_error("--fail-on: '%.*s' is not harmful, refusal, unverified or any", (int)n, p);
        p += n;
        if (*p == ',') p++;
    }
    if (!bits) gr_usage_error("--fail-on: empty");
    return bits;
}

/* Records in a JSON Lines file (lines that start an object), or -1 when it
 * cannot be told cheaply: stdin, zstd, a JSON array. */
static long count_records(const char *path) {
    if (strcmp(path, "-") == 0) return -1;
    FILE *f = fopen(path, "rb");
    if (!f) return -1;
    unsigned char magic[4] = {0};
    if (fread(magic, 1, 4, f) == 4 && magic[0] == 0x28 && magic[1] == 0xb5 && magic[2] == 0x2f && magic[3] == 0xfd) {
        fclose(f);
        return -1;
    }
    rewind(f);
    long n = 0;
    int c, at_start = 1, first = 1;
    while ((c = getc(f)) != EOF) {
        if (c == '\n') {
            at_start = 1;
            continue;
        }
        if (!at_start || c == ' ' || c == '\t' || c == '\r') continue;
        at_start = 0;
        if (first && c == '[') {
            n = -1;
            break;
        }
        first = 0;
        n += c == '{';
    }
    fclose(f);
    return n;
}

static double now_s(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + 1e-9 * (double)t.tv_nsec;
}

static void fmt_eta(char *buf, size_t n, double s) {
    long t = (long)(s + 0.5);
    if (t >= 3600) snprintf(buf, n, "%ldh%02ldm", t / 3600, t / 60 % 60);
    else if (t >= 60) snprintf(buf, n, "%ldm%02lds", t / 60, t % 60);
    else snprintf(buf, n, "%lds", t);
}

static void on_step(void *ud, const gr_run_stats *st, int n_seqs, int n_fed) {
    gr_run_cli *c = ud;
    double t = now_s();
    if (n_seqs && c->first_step == 0) c->first_step = t;
    if (c->log && n_seqs) {
        fprintf(c->log, "{\"step\":%ld,\"seqs\":%d,\"fed\":%d,\"records\":%ld,\"tokens\":%ld,\"elapsed\":%.3f}\n",
                st->steps, n_seqs, n_fed, st->written, st->sampled_tokens, st->seconds);
        fflush(c->log);
    }
    if (!c->progress || c->first_step == 0) return;
    /* at most one line a second, except that the first finished output is shown at
     * once: that is when the rate and the ETA become known */
    int first_rate = st->written > 0 && !c->rate_shown;
    if (t - c->last_print < 1.0 && !first_rate) return;
    c->last_print = t;
    if (st->written > 0) c->rate_shown = 1;
    double el = t - c->first_step;
    double rps = el > 0 ? (double)st->written / el : 0, tps = el > 0 ? (double)st->sampled_tokens / el : 0;
    long done = st->written + st->skipped_done;
    char line[256], eta[32] = "";
    int k = snprintf(line, sizeof line, "%s: ", gr_prog);
    if (c->total > 0) k += snprintf(line + k, sizeof line - (size_t)k, "%ld/%ld", done, c->total);
    else k += snprintf(line + k, sizeof line - (size_t)k, "%ld", done);
    k += snprintf(line + k, sizeof line - (size_t)k, " %s, %.2f %s/s, %.1f tokens/s", c->sample_mode ? "samples" : "records",
                  rps, c->sample_mode ? "samples" : "records", tps);
    if (c->total > 0 && rps > 0 && c->total > done) {
        fmt_eta(eta, sizeof eta, (double)(c->total - done) / rps);
        snprintf(line + k, sizeof line - (size_t)k, ", ETA %s", eta);
    }
    if (c->tty) fprintf(stderr, "\r%s\033[K", line);
    else fprintf(stderr, "%s\n", line);
    c->printed = 1;
}

void gr_run_cli_start(gr_run_cli *c, gr_run_opts *o, char *const *files, int n_files) {
    c->tty = isatty(2);
    if (c->quiet) c->progress = 0;
    c->total = -1;
    /* (with --shard, which records are ours is known only once their ids are read:
     * the total stays unknown rather than counting every shard's) */
    if (c->progress && !(o->reader && o->reader->map) && !o->shard) {
        c->total = 0;
        for (int i = 0; i < n_files && c->total >= 0; i++) {
            long n = count_records(files[i]);
            c->total = n < 0 ? -1 : c->total + n;
        }
        if (c->total > 0 && c->sample_mode) c->total *= o->k;
    }
    if (c->log_path) {
        c->log = fopen(c->log_path, "a");
        if (!c->log) gr_die(GR_EXIT_FAIL, "--log %s: %s", c->log_path, strerror(errno));
    }
    if (c->progress || c->log) {
        o->on_step = on_step;
        o->step_ud = c;
    }
}

static double rate(long n, double s) { return s > 0 ? (double)n / s : 0.0; }

static void write_summary_json(const gr_run_cli *c, const gr_run_stats *st, int status, const char *stopped,
                               const char *error) {
    jv j = jv_object();
    j = jv_object_set(j, jv_string("tool"), jv_string(gr_prog));
    j = jv_object_set(j, jv_string("records"), jv_number(st->records));
    j = jv_object_set(j, jv_string(c->sample_mode ? "samples_written" : "written"), jv_number(st->written));
    j = jv_object_set(j, jv_string("already_done"), jv_number(st->skipped_done));
    j = jv_object_set(j, jv_string("skipped_bad"), jv_number(st->skipped_bad));
    j = jv_object_set(j, jv_string("rejected"), jv_number(st->rejected));
    j = jv_object_set(j, jv_string("unverified"), jv_number(st->unparsed));
    j = jv_object_set(j, jv_string("truncated"), jv_number(st->truncated));
    j = jv_object_set(j, jv_string("replaced_utf8"), jv_number(st->replaced));
    if (!c->sample_mode) {
        jv fl = jv_object();
        fl = jv_object_set(fl, jv_string("request"), jv_number(st->flagged[0]));
        fl = jv_object_set(fl, jv_string("completion"), jv_number(st->flagged[1]));
        fl = jv_object_set(fl, jv_string("response"), jv_number(st->flagged[2]));
        j = jv_object_set(j, jv_string("flagged"), fl);
        j = jv_object_set(j, jv_string("fail_on_matched"), jv_number(st->matched));
    }
    j = jv_object_set(j, jv_string("prompt_tokens"), jv_number(st->prompt_tokens));
    j = jv_object_set(j, jv_string("generated_tokens"), jv_number(st->generated_tokens));
    j = jv_object_set(j, jv_string("seconds"), jv_number(st->seconds));
    j = jv_object_set(j, jv_string("records_per_s"), jv_number(rate(st->written, st->seconds)));
    j = jv_object_set(j, jv_string("tokens_per_s"), jv_number(rate(st->generated_tokens, st->seconds)));
    if (c->has_summary_state) j = jv_object_set(j, jv_string("state"), jv_copy(c->summary_state));
    j = jv_object_set(j, jv_string("exit_status"), jv_number(status));
    j = jv_object_set(j, jv_string("stopped_by"), stopped ? jv_string(stopped) : jv_null());
    j = jv_object_set(j, jv_string("error"), error ? jv_string(error) : jv_null());
    jv d = jv_dump_string(j, 0);
    gr_buf b = {0};
    gr_buf_printf(&b, "%s\n", jv_string_value(d));
    jv_free(d);
    gr_err err;
    if (gr_write_file_atomic(c->summary_json, b.data, b.len, &err)) gr_msg("--summary-json: %s", err.msg);
    gr_buf_free(&b);
}

int gr_run_cli_finish(gr_run_cli *c, const gr_run_opts *o, int rc, const gr_err *err,
                      const gr_run_stats *st, const char *out_path, int resume) {
    if (c->printed && c->tty) fputc('\n', stderr);
    if (c->log) fclose(c->log);
    c->log = NULL;
    int to_file = out_path && strcmp(out_path, "-") != 0;
    if (st->cut_bytes && !c->quiet) gr_msg("%s: cut a torn last line (%zu bytes)", out_path, st->cut_bytes);
    int status = GR_EXIT_OK;
    const char *stopped = NULL, *error = NULL;
    if (rc == GR_LOCK_BUSY) {
        /* another run is at work: its summary is the one that counts */
        gr_msg("%s", err->msg);
        status = GR_EXIT_LOCKED;
        goto done;
    } else if (rc == GR_RUN_STOPPED) {
        int sig = gr_stop_signal;
        stopped = sig == SIGINT ? "SIGINT" : "SIGTERM";
        status = gr_exit_for_signal(sig);
        if (!to_file || resume)
            gr_msg("stopped by %s: %ld %s written%s", stopped, st->written, c->sample_mode ? "samples" : "verdicts",
                   resume ? "; --resume goes on" : "");
        else
            gr_msg("stopped by %s: nothing written (%s untouched; with --resume a stopped run keeps what it wrote)",
                   stopped, out_path);
    } else if (rc) {
        gr_msg("%s", err->msg);
        error = err->msg;
        status = GR_EXIT_FAIL;
    } else if (st->matched > 0) {
        status = GR_EXIT_FLAGGED;
    }
    if (!c->quiet && status != GR_EXIT_FAIL) {
        char flagged[160] = "";
        if (!c->sample_mode)
            snprintf(flagged, sizeof flagged, "flagged: request harmful %ld, completion refusal %ld, response harmful %ld; ",
                     st->flagged[0], st->flagged[1], st->flagged[2]);
        char replaced[64] = "";
        if (st->replaced) snprintf(replaced, sizeof replaced, "%ld invalid UTF-8 sequences replaced; ", st->replaced);
        gr_msg("%s%s%ld records: %ld %swritten, %ld already done, %ld %sskipped as bad, %ld rejected as too long; %s"
               "%ld unverified (no answer read), %ld cut at --max-tokens; %s%ld prompt + %ld generated tokens "
               "in %.1f s (%.2f %s/s, %.1f tokens/s)",
               c->preface ? c->preface : "", c->preface ? "; " : "", st->records, st->written, c->sample_mode ? "samples " : "", st->skipped_done, st->skipped_bad,
               c->sample_mode ? "records " : "", st->rejected, flagged, st->unparsed, st->truncated, replaced,
               st->prompt_tokens, st->generated_tokens, st->seconds, rate(st->written, st->seconds),
               c->sample_mode ? "samples" : "records", rate(st->generated_tokens, st->seconds));
        if (status == GR_EXIT_FLAGGED) gr_msg("%ld verdicts matched --fail-on: exit status %d", st->matched, status);
    }
    /* --fail-on unverified: an input line no verdict covers (rejected by --state's
     * reader) is unverified too */
    if (status == GR_EXIT_OK && (o->fail_on & GR_FLAG_UNVERIFIED) && c->unverified_lines > 0) {
        status = GR_EXIT_FLAGGED;
        if (!c->quiet)
            gr_msg("%ld lines rejected, --fail-on unverified: exit status %d", c->unverified_lines, status);
    }
    if (c->summary_json) write_summary_json(c, st, status, stopped, error);
done:
    if (c->has_summary_state) jv_free(c->summary_state);
    c->has_summary_state = 0;
    return status;
}
