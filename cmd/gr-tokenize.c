/* gr-tokenize: records -> token ids (training records through a prompt
 * template, or plain text), and ids -> text. */
#include <errno.h>
#include <getopt.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <math.h>
#include "gr_cli.h"
#include "gr_io.h"
#include "template.h"
#include "tokenizer.h"

static const char usage_text[] =
    "Usage: gr-tokenize [OPTIONS] [FILE...]\n"
    "Turns records into token ids. Training records, by kind:\n"
    "  alpaca (instruction, input, output) -> {id, ids, n_prompt, template}\n"
    "      ids = prompt ++ response; the first n_prompt ids carry no loss, the\n"
    "      response and its end-of-turn token do\n"
    "  pair (instruction, input, chosen, rejected, sample_weight)\n"
    "      -> {id, prompt_ids, chosen_ids, rejected_ids, weight, template}\n"
    "Long records are cut as LLaMA-Factory cuts them (infer_seqlen).\n"
    "\n"
    "  -t, --tokenizer PATH  tokenizer: HF folder, tokenizer.json, tiktoken\n"
    "                        tokenizer.model, or .gguf (default $GR_MODEL)\n"
    "  --template NAME       raw, llama3, chatml (default: llama3 when the tokenizer\n"
    "                        has <|start_header_id|>, chatml when it has <|im_start|>)\n"
    "  --system TEXT         a system turn (llama3, chatml)\n"
    "  --cutoff N            most ids per record (default 2048)\n"
    "  --drop-long           drop records longer than the cutoff instead of cutting\n"
    "  --text                encode the `text` field as it is into `ids` (no\n"
    "                        template, no special tokens); other fields pass through\n"
    "  --count               with --text: add only `n_tokens`\n"
    "  --decode              turn `ids` back into `text` (other fields pass through)\n"
    "  --skip-special        with --decode: leave out special tokens\n"
    "  --threads N           tokenizing threads (default 1)\n"
    "  --map PROGRAM         jq program applied to every input record\n"
    "  --replace-invalid     replace invalid UTF-8 in the input by U+FFFD\n"
    "  -o, --output FILE     write to FILE (atomically; .zst compresses)\n"
    "  --zstd                compress the output\n"
    "  -q, --quiet           no report on stderr\n"
    "  -h, --help            this help;   --version   the version\n"
    "\n"
    "Special-token strings inside the text (\"<|eot_id|>\") stay text; templates\n"
    "insert control tokens by id.\n"
    "\n"
    "Examples:\n"
    "  gr-tokenize -t Llama-3.2-1B/ --template llama3 train.jsonl -o train.tok.jsonl\n"
    "  echo '{\"text\":\"Hello world\"}' | gr-tokenize -t tokenizer.model --text\n";

enum { OPT_TEMPLATE = 256, OPT_SYSTEM, OPT_CUTOFF, OPT_DROP, OPT_TEXT, OPT_COUNT, OPT_DECODE,
       OPT_SKIP, OPT_THREADS, OPT_MAP, OPT_REPLACE, OPT_ZSTD, OPT_VERSION };

typedef enum { MODE_TRAIN, MODE_TEXT, MODE_COUNT, MODE_DECODE } mode_t_;

typedef struct opts {
    const gr_tokenizer *tok;
    gr_template_kind tmpl;
    const char *system;
    size_t cutoff;
    int drop_long, skip_special;
    mode_t_ mode;
} opts;

/* One record's work, prepared by the main thread (workers touch no jv). */
typedef struct job {
    long line;
    int kind;               /* 0 alpaca, 1 pair, 2 text, 3 decode */
    char *id_json;          /* the record's id as JSON */
    char *head;             /* pass-through modes: the record as JSON without its last '}' */
    int head_empty;         /* the record had no other field */
    char *instruction, *input, *output, *chosen, *rejected, *text;
    size_t text_len;
    double weight;
    int weight_null;        /* NaN (GuardReasoner's max == min case) -> null */
    char weight_json[64];
    int32_t *in_ids;
    size_t n_in_ids;
    /* results */
    gr_buf out;
    int dropped, truncated;
    size_t n_tokens;
    char err[2200];
} job;

static void put_ids(gr_buf *b, const int32_t *v, size_t n) {
    gr_buf_putc(b, '[');
    for (size_t i = 0; i < n; i++) {
        char tmp[16];
        int k = snprintf(tmp, sizeof tmp, i ? ",%d" : "%d", (int)v[i]);
        gr_buf_append(b, tmp, (size_t)k);
    }
    gr_buf_putc(b, ']');
}

/* A JSON string of valid UTF-8 s[0..n). (Workers do not use libjq: jq 1.6's
 * jv is not safe to use from several threads.) */
static void put_str(gr_buf *b, const char *s, size_t n) {
    gr_buf_putc(b, '"');
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        switch (c) {
        case '"': gr_buf_append(b, "\\\"", 2); break;
        case '\\': gr_buf_append(b, "\\\\", 2); break;
        case '\n': gr_buf_append(b, "\\n", 2); break;
        case '\t': gr_buf_append(b, "\\t", 2); break;
        case '\r': gr_buf_append(b, "\\r", 2); break;
        default:
            if (c < 0x20 || c == 0x7F) gr_buf_printf(b, "\\u%04x", c);
            else gr_buf_putc(b, (char)c);
        }
    }
    gr_buf_putc(b, '"');
}

static void run_job(const opts *o, job *j) {
    gr_err err = {{0}};
    gr_buf *b = &j->out;
    if (j->kind == 2 || j->kind == 3) {
        gr_buf_append(b, j->head, strlen(j->head));
        if (!j->head_empty) gr_buf_putc(b, ',');
        if (j->kind == 2) {
            gr_ids ids = {0};
            gr_tokenizer_encode(o->tok, j->text, j->text_len, &ids, &err);
            j->n_tokens = ids.n;
            if (o->mode == MODE_COUNT) gr_buf_printf(b, "\"n_tokens\":%zu}", ids.n);
            else { gr_buf_append(b, "\"ids\":", 6); put_ids(b, ids.v, ids.n); gr_buf_putc(b, '}'); }
            gr_ids_free(&ids);
        } else {
            gr_tok_decoder *d = gr_tok_decoder_new(o->tok, o->skip_special);
            gr_buf text = {0};
            for (size_t i = 0; i < j->n_in_ids; i++) {
                if (gr_tok_decoder_put(d, j->in_ids[i], &text, &err) < 0) {
                    snprintf(j->err, sizeof j->err, "ids[%zu]: %s", i, err.msg);
                    break;
                }
            }
            gr_tok_decoder_flush(d, &text);
            gr_tok_decoder_free(d);
            gr_buf_append(b, "\"text\":", 7);
            put_str(b, text.data ? text.data : "", text.len);
            gr_buf_putc(b, '}');
            gr_buf_free(&text);
            j->n_tokens = j->n_in_ids;
        }
        return;
    }
    gr_ids p = {0}, r1 = {0}, r2 = {0};
    if (j->kind == 1) { /* a pair: the shared pairwise encoding, cut as LLaMA-Factory cuts */
        if (gr_template_pair(o->tok, o->tmpl, o->system, j->instruction, j->input, j->chosen,
                             j->rejected, o->cutoff, &p, &r1, &r2, &j->truncated, &err) < 0) {
            snprintf(j->err, sizeof j->err, "%s", err.msg);
            return;
        }
    } else if (gr_template_prompt(o->tok, o->tmpl, o->system, j->instruction, j->input, &p, &err) < 0) {
        snprintf(j->err, sizeof j->err, "%s", err.msg);
        return;
    }
    const char *tname = gr_template_name(o->tmpl);
    if (j->kind == 0) {
        gr_template_response(o->tok, o->tmpl, j->output, &r1, &err);
        size_t S, T;
        gr_infer_seqlen(p.n, r1.n, o->cutoff, &S, &T);
        j->truncated = S < p.n || T < r1.n;
        if (j->truncated && o->drop_long) { j->dropped = 1; goto out; }
        gr_buf_printf(b, "{\"id\":%s,\"ids\":", j->id_json);
        gr_ids all = {0};
        gr_ids_append(&all, p.v, S);
        gr_ids_append(&all, r1.v, T);
        put_ids(b, all.v, all.n);
        j->n_tokens = all.n;
        gr_ids_free(&all);
        gr_buf_printf(b, ",\"n_prompt\":%zu,\"template\":\"%s\"%s}", S, tname,
                      j->truncated ? ",\"truncated\":true" : "");
    } else {
        if (j->truncated && o->drop_long) { j->dropped = 1; goto out; }
        size_t S = p.n, tc = r1.n, tr = r2.n;
        gr_buf_printf(b, "{\"id\":%s,\"prompt_ids\":", j->id_json);
        put_ids(b, p.v, S);
        gr_buf_append(b, ",\"chosen_ids\":", 14);
        put_ids(b, r1.v, tc);
        gr_buf_append(b, ",\"rejected_ids\":", 16);
        put_ids(b, r2.v, tr);
        if (j->weight_null) gr_buf_append(b, ",\"weight\":null", 14);
        else gr_buf_printf(b, ",\"weight\":%s", j->weight_json);
        gr_buf_printf(b, ",\"template\":\"%s\"%s}", tname, j->truncated ? ",\"truncated\":true" : "");
        j->n_tokens = S + tc + tr;
    }
out:
    gr_ids_free(&p);
    gr_ids_free(&r1);
    gr_ids_free(&r2);
}

static void job_free(job *j) {
    free(j->id_json); free(j->head); free(j->instruction); free(j->input); free(j->output);
    free(j->chosen); free(j->rejected); free(j->text); free(j->in_ids);
    gr_buf_free(&j->out);
    memset(j, 0, sizeof *j);
}

/* A copy of the string field, or NULL. *nul is set when it holds a NUL
 * character (templates take C strings; such a record is refused). */
static char *dup_field(jv rec, const char *key, int *nul) {
    const char *s = gr_jv_str(rec, key);
    if (!s) return NULL;
    jv v = jv_object_get(jv_copy(rec), jv_string(key));
    if ((size_t)jv_string_length_bytes(jv_copy(v)) != strlen(s)) *nul = 1;
    jv_free(v);
    return gr_xstrdup(s);
}

/* Fills j from rec (consumed). 0, or -1 with why in j->err. */
static int prepare(const opts *o, jv rec, long seq, job *j) {
    if (o->mode == MODE_TEXT || o->mode == MODE_COUNT || o->mode == MODE_DECODE) {
        if (o->mode == MODE_DECODE) {
            jv ids = jv_object_get(jv_copy(rec), jv_string("ids"));
            if (jv_get_kind(ids) != JV_KIND_ARRAY) {
                jv_free(ids);
                jv_free(rec);
                snprintf(j->err, sizeof j->err, "no `ids` array");
                return -1;
            }
            j->kind = 3;
            j->n_in_ids = (size_t)jv_array_length(jv_copy(ids));
            j->in_ids = gr_xmalloc((j->n_in_ids + 1) * sizeof *j->in_ids);
            for (size_t i = 0; i < j->n_in_ids; i++) {
                jv x = jv_array_get(jv_copy(ids), (int)i);
                double d = jv_get_kind(x) == JV_KIND_NUMBER ? jv_number_value(x) : -1;
                jv_free(x);
                if (d < 0 || d > 2147483647.0 || d != floor(d)) {
                    jv_free(ids);
                    jv_free(rec);
                    snprintf(j->err, sizeof j->err, "ids[%zu] is not a token id", i);
                    return -1;
                }
                j->in_ids[i] = (int32_t)d;
            }
            jv_free(ids);
            rec = jv_object_delete(rec, jv_string("text"));
        } else {
            const char *t = gr_jv_str(rec, "text");
            if (!t) {
                jv_free(rec);
                snprintf(j->err, sizeof j->err, "no string `text` field");
                return -1;
            }
            j->kind = 2;
            jv tv = jv_object_get(jv_copy(rec), jv_string("text"));
            j->text_len = (size_t)jv_string_length_bytes(jv_copy(tv)); /* may hold NUL */
            j->text = gr_xmalloc(j->text_len + 1);
            memcpy(j->text, t, j->text_len + 1);
            jv_free(tv);
            rec = jv_object_delete(rec, jv_string(o->mode == MODE_COUNT ? "n_tokens" : "ids"));
        }
        j->head_empty = jv_object_length(jv_copy(rec)) == 0;
        jv d = jv_dump_string(rec, 0);
        const char *s = jv_string_value(d);
        size_t n = strlen(s);
        j->head = gr_xstrndup(s, n - 1); /* without the closing brace */
        jv_free(d);
        return 0;
    }
    jv id = jv_object_get(jv_copy(rec), jv_string("id"));
    if (jv_is_valid(id) && jv_get_kind(id) != JV_KIND_NULL) {
        jv d = jv_dump_string(id, 0);
        j->id_json = gr_xstrdup(jv_string_value(d));
        jv_free(d);
    } else {
        jv_free(id);
        char tmp[32];
        snprintf(tmp, sizeof tmp, "%ld", seq);
        j->id_json = gr_xstrdup(tmp);
    }
    int nul = 0;
    j->instruction = dup_field(rec, "instruction", &nul);
    j->input = dup_field(rec, "input", &nul);
    int is_pair = gr_jv_has(rec, "chosen") || gr_jv_has(rec, "rejected");
    int rc = 0;
    if (!j->instruction && !j->input) {
        snprintf(j->err, sizeof j->err, "no `instruction` or `input` string");
        rc = -1;
    } else if (is_pair) {
        j->kind = 1;
        j->chosen = dup_field(rec, "chosen", &nul);
        j->rejected = dup_field(rec, "rejected", &nul);
        if (!j->chosen || !j->rejected) {
            snprintf(j->err, sizeof j->err, "a pair record needs string `chosen` and `rejected`");
            rc = -1;
        }
        jv w = jv_object_get(jv_copy(rec), jv_string("sample_weight"));
        if (jv_get_kind(w) == JV_KIND_NUMBER) {
            j->weight = jv_number_value(w);
            j->weight_null = isnan(j->weight) || isinf(j->weight);
            /* jq's shortest round-trip form (0.9, not 0.90000000000000002) */
            jv d = jv_dump_string(jv_number(j->weight), 0);
            snprintf(j->weight_json, sizeof j->weight_json, "%s", jv_string_value(d));
            jv_free(d);
        } else if (!jv_is_valid(w) || jv_get_kind(w) == JV_KIND_NULL) {
            j->weight = 1.0; /* an unweighted pair */
            snprintf(j->weight_json, sizeof j->weight_json, "1");
        } else {
            snprintf(j->err, sizeof j->err, "`sample_weight` is not a number");
            rc = -1;
        }
        jv_free(w);
    } else {
        j->kind = 0;
        j->output = dup_field(rec, "output", &nul);
        if (!j->output) {
            snprintf(j->err, sizeof j->err, "no string `output` field");
            rc = -1;
        }
    }
    if (!rc && nul) {
        snprintf(j->err, sizeof j->err, "a text field holds a NUL character (\\u0000)");
        rc = -1;
    }
    jv_free(rec);
    return rc;
}

/* ---- the batch pipeline -------------------------------------------------- */
#define BATCH 512
typedef struct worker { const opts *o; job *jobs; size_t n, first, step; } worker;

static void *work(void *arg) {
    worker *w = arg;
    for (size_t i = w->first; i < w->n; i += w->step) run_job(w->o, &w->jobs[i]);
    return NULL;
}

typedef struct stats { long records, truncated, dropped; size_t tokens, max_len; } stats;

static int flush_batch(const opts *o, job *jobs, size_t n, int threads, gr_writer *w,
                       const char *src, stats *st) {
    if (threads > 1 && n > 1) {
        pthread_t th[64];
        worker ws[64];
        int k = threads;
        for (int t = 0; t < k; t++) {
            ws[t] = (worker){o, jobs, n, (size_t)t, (size_t)k};
            if (pthread_create(&th[t], NULL, work, &ws[t])) gr_die(GR_EXIT_FAIL, "cannot start a thread");
        }
        for (int t = 0; t < k; t++) pthread_join(th[t], NULL);
    } else {
        for (size_t i = 0; i < n; i++) run_job(o, &jobs[i]);
    }
    int rc = 0;
    for (size_t i = 0; i < n; i++) {
        job *j = &jobs[i];
        if (!rc && j->err[0]) {
            gr_msg("%s:%ld: %s", src, j->line, j->err);
            rc = -1;
        }
        if (!rc) {
            st->records++;
            st->truncated += j->truncated && !j->dropped;
            st->dropped += j->dropped;
            if (!j->dropped) {
                gr_err err = {{0}};
                st->tokens += j->n_tokens;
                if (j->n_tokens > st->max_len) st->max_len = j->n_tokens;
                if (gr_writer_put_line(w, j->out.data, j->out.len, &err) < 0) {
                    gr_msg("%s", err.msg);
                    rc = -1;
                }
            }
        }
        job_free(j);
    }
    return rc;
}

int main(int argc, char **argv) {
    gr_prog = "gr-tokenize";
    static const struct option longopts[] = {
        {"tokenizer", required_argument, 0, 't'}, {"template", required_argument, 0, OPT_TEMPLATE},
        {"system", required_argument, 0, OPT_SYSTEM}, {"cutoff", required_argument, 0, OPT_CUTOFF},
        {"drop-long", no_argument, 0, OPT_DROP}, {"text", no_argument, 0, OPT_TEXT},
        {"count", no_argument, 0, OPT_COUNT}, {"decode", no_argument, 0, OPT_DECODE},
        {"skip-special", no_argument, 0, OPT_SKIP}, {"threads", required_argument, 0, OPT_THREADS},
        {"map", required_argument, 0, OPT_MAP}, {"replace-invalid", no_argument, 0, OPT_REPLACE},
        {"output", required_argument, 0, 'o'}, {"zstd", no_argument, 0, OPT_ZSTD},
        {"quiet", no_argument, 0, 'q'}, {"help", no_argument, 0, 'h'},
        {"version", no_argument, 0, OPT_VERSION}, {0, 0, 0, 0}};
    const char *tok_path = getenv("GR_MODEL"), *tmpl_name = NULL, *out_path = NULL;
    opts o = {0};
    o.cutoff = 2048;
    int threads = 1, quiet = 0, text = 0, count = 0, decode = 0, cutoff_set = 0;
    gr_reader_opts ro = {0};
    gr_writer_opts wo = {0};
    int c;
    while ((c = getopt_long(argc, argv, "t:o:qh", longopts, NULL)) != -1) {
        switch (c) {
        case 't': tok_path = optarg; break;
        case OPT_TEMPLATE: tmpl_name = optarg; break;
        case OPT_SYSTEM: o.system = optarg; break;
        case OPT_CUTOFF: o.cutoff = (size_t)gr_parse_long("--cutoff", optarg, 1, 1L << 30); cutoff_set = 1; break;
        case OPT_DROP: o.drop_long = 1; break;
        case OPT_TEXT: text = 1; break;
        case OPT_COUNT: count = 1; break;
        case OPT_DECODE: decode = 1; break;
        case OPT_SKIP: o.skip_special = 1; break;
        case OPT_THREADS: threads = (int)gr_parse_long("--threads", optarg, 1, 64); break;
        case OPT_MAP: {
            gr_err err = {{0}};
            if (gr_map_check(optarg, &err) < 0) gr_usage_error("--map: %s", err.msg);
            ro.map = optarg;
            break;
        }
        case OPT_REPLACE: ro.replace_invalid_utf8 = 1; break;
        case 'o': out_path = optarg; break;
        case OPT_ZSTD: wo.zstd = 1; break;
        case 'q': quiet = 1; break;
        case 'h': fputs(usage_text, stdout); gr_close_stdout(); return 0;
        case OPT_VERSION: printf("gr-tokenize %s\n", GR_VERSION); gr_close_stdout(); return 0;
        default: gr_usage_error("unknown option");
        }
    }
    if (text + decode > 1) gr_usage_error("--text and --decode exclude each other");
    if (count && !text) gr_usage_error("--count goes with --text");
    if (o.skip_special && !decode) gr_usage_error("--skip-special goes with --decode");
    if ((text || decode) && (tmpl_name || o.system || o.drop_long || cutoff_set))
        gr_usage_error("--template/--system/--cutoff/--drop-long are for training records, not --text/--decode");
    o.mode = decode ? MODE_DECODE : count ? MODE_COUNT : text ? MODE_TEXT : MODE_TRAIN;
    if (!tok_path || !*tok_path) gr_usage_error("no tokenizer: give -t PATH or set GR_MODEL");
    gr_err err = {{0}};
    gr_tokenizer *tok = gr_tokenizer_load(tok_path, &err);
    if (!tok) gr_die(GR_EXIT_FAIL, "%s", err.msg);
    o.tok = tok;
    if (tmpl_name) {
        if (gr_template_parse(tmpl_name, &o.tmpl, &err) < 0) gr_usage_error("--template: %s", err.msg);
    } else if (gr_tokenizer_token_id(tok, "<|start_header_id|>") >= 0) {
        o.tmpl = GR_TEMPLATE_LLAMA3;
    } else if (gr_tokenizer_token_id(tok, "<|im_start|>") >= 0) {
        o.tmpl = GR_TEMPLATE_CHATML;
    } else {
        o.tmpl = GR_TEMPLATE_RAW;
    }
    if (o.mode == MODE_TRAIN && o.tmpl == GR_TEMPLATE_RAW && o.system && *o.system)
        gr_usage_error("--system: the raw template has no system turn");
    if (o.mode == MODE_TRAIN) { /* fail early when the template cannot be built */
        gr_ids probe = {0};
        if (gr_template_prompt(tok, o.tmpl, o.system, "x", "y", &probe, &err) < 0 ||
            gr_template_eot(tok, o.tmpl) < 0) {
            if (!err.msg[0]) snprintf(err.msg, sizeof err.msg, "no end-of-turn token");
            gr_die(GR_EXIT_FAIL, "template %s: %s", gr_template_name(o.tmpl), err.msg);
        }
        gr_ids_free(&probe);
    }
    gr_writer *w = gr_writer_open(out_path, &wo, &err);
    if (!w) gr_die(GR_EXIT_FAIL, "%s", err.msg);
    int nfiles = argc - optind;
    const char *stdin_only[1] = {"-"};
    const char **files = nfiles ? (const char **)argv + optind : stdin_only;
    if (!nfiles) nfiles = 1;
    stats st = {0};
    job *jobs = gr_xcalloc(BATCH, sizeof *jobs);
    int rc = 0;
    long seq = 0;
    for (int f = 0; f < nfiles && !rc; f++) {
        gr_reader *r = gr_reader_open(files[f], &ro, &err);
        if (!r) { gr_msg("%s", err.msg); rc = -1; break; }
        size_t n = 0;
        jv rec;
        int k;
        while ((k = gr_reader_next(r, &rec, &err)) == 1) {
            job *j = &jobs[n];
            j->line = gr_reader_line(r);
            if (prepare(&o, rec, seq++, j) < 0) {
                gr_msg("%s:%ld: %s", gr_reader_name(r), j->line, j->err);
                job_free(j);
                for (size_t i = 0; i < n; i++) job_free(&jobs[i]);
                n = 0;
                rc = -1;
                break;
            }
            if (++n == BATCH) {
                if (flush_batch(&o, jobs, n, threads, w, gr_reader_name(r), &st)) { rc = -1; n = 0; break; }
                n = 0;
            }
        }
        if (k < 0) { gr_msg("%s", err.msg); rc = -1; }
        if (n && flush_batch(&o, jobs, n, rc ? 1 : threads, w, gr_reader_name(r), &st)) rc = -1;
        gr_reader_close(r);
    }
    free(jobs);
    if (rc) {
        gr_writer_abort(w);
        gr_tokenizer_free(tok);
        return GR_EXIT_FAIL;
    }
    if (gr_writer_commit(w, &err) < 0) {
        gr_msg("%s", err.msg);
        gr_tokenizer_free(tok);
        return GR_EXIT_FAIL;
    }
    if (!quiet) {
        long kept = st.records - st.dropped;
        if (o.mode == MODE_TRAIN)
            fprintf(stderr, "gr-tokenize: %ld records, %zu tokens, %ld truncated, %ld dropped (cutoff %zu, template %s), "
                    "max length %zu, mean %.1f\n", st.records, st.tokens, st.truncated, st.dropped, o.cutoff,
                    gr_template_name(o.tmpl), st.max_len, kept ? (double)st.tokens / (double)kept : 0.0);
        else
            fprintf(stderr, "gr-tokenize: %ld records, %zu tokens, max length %zu, mean %.1f\n", st.records,
                    st.tokens, st.max_len, st.records ? (double)st.tokens / (double)st.records : 0.0);
    }
    gr_tokenizer_free(tok);
    if (!out_path) gr_close_stdout();
    return GR_EXIT_OK;
}
