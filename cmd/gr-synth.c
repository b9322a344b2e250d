/* gr-synth: reasoning-data synthesis (paper §2.1) through any OpenAI-compatible
 * chat-completions API. Options and wiring only; the work is lib/synth_*. */
#include <errno.h>
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include "gr_cli.h"
#include "gr_io.h"
#include "synth_prompt.h"
#include "synth_resume.h"
#include "synth_run.h"

static const char usage_text[] =
    "Usage: gr-synth [OPTIONS] [FILE...]\n"
    "Asks a strong LLM for the reasoning steps behind each labelled interaction\n"
    "record (id, prompt, response, label {request, completion, response}) and\n"
    "writes alpaca records (instruction, input, output, id, model, usage) whose\n"
    "answers end with the ground-truth answer block. With -o, re-running the same\n"
    "command resumes: ids already in the output or the rejects file are skipped.\n"
    "\n"
    "  -o, --output FILE         append accepted records to FILE (default stdout)\n"
    "      --rejects FILE        records whose answers kept failing validation\n"
    "                            (default: OUTPUT minus .jsonl + .rejects.jsonl)\n"
    "      --resume              resume from the output (the default with -o)\n"
    "      --endpoint URL        API base URL (default $OPENAI_BASE_URL or\n"
    "                            https://api.openai.com/v1)\n"
    "      --model NAME          model (default gpt-4o)\n"
    "      --temperature X       sampling temperature (default 0)\n"
    "      --max-tokens N        max_tokens per answer (default: not sent)\n"
    "      --api-key-file FILE   API key from FILE (default $OPENAI_API_KEY; none\n"
    "                            for local servers)\n"
    "      --system-file FILE    system prompt with {request} {refusal} {response}\n"
    "                            (default: the paper's synthesis prompt)\n"
    "      --map PROGRAM         jq program turning each input record into an\n"
    "                            interaction record (see scripts/seeds/)\n"
    "  -j, --concurrency N       requests in flight (default 8)\n"
    "      --rpm N, --tpm N      requests / tokens per minute (default unlimited)\n"
    "      --timeout SEC         per request (default 300)\n"
    "      --connect-timeout SEC (default 20)\n"
    "      --max-attempts N      answers per record before it is rejected (default 3)\n"
    "      --max-retries N       server errors per record before it is left for a\n"
    "                            later run (default 10)\n"
    "      --backoff-base SEC    first retry delay (default 1; doubles, jittered)\n"
    "      --backoff-max SEC     longest retry delay (default 60)\n"
    "      --seed N              seed of the retry jitter\n"
    "      --dry-run             print the first request body and the request count\n"
    "      --price-in USD        price per million prompt tokens (prints the cost)\n"
    "      --price-out USD       price per million completion tokens\n"
    "      --est-completion N    completion tokens assumed per request for --tpm\n"
    "                            and --dry-run costs (default 600)\n"
    "      --strict              stop at the first unusable input record\n"
    "      --replace-invalid     replace invalid UTF-8 in the input by U+FFFD\n"
    "      --progress            progress on stderr even when not a terminal\n"
    "  -q, --quiet               no progress, no per-record notes, no summary\n"
    "  -h, --help                this help;   --version   the version\n"
    "\n"
    "Example:\n"
    "  gr-synth --map \"$(cat scripts/seeds/wildguardtrain.jq)\" --concurrency 32 \\\n"
    "      --tpm 800000 -o wildguard-r.jsonl wildguardtrain.jsonl\n";

enum {
    OPT_REJECTS = 256, OPT_RESUME, OPT_ENDPOINT, OPT_MODEL, OPT_TEMP, OPT_MAXTOK, OPT_KEYFILE,
    OPT_SYSFILE, OPT_MAP, OPT_RPM, OPT_TPM, OPT_TIMEOUT, OPT_CTIMEOUT, OPT_ATTEMPTS, OPT_RETRIES,
    OPT_BBASE, OPT_BMAX, OPT_SEED, OPT_DRY, OPT_PIN, OPT_POUT, OPT_ESTC, OPT_STRICT, OPT_PROGRESS,
    OPT_VERSION, OPT_REPLACE
};

static const struct option long_opts[] = {
    {"output", required_argument, 0, 'o'},     {"rejects", required_argument, 0, OPT_REJECTS},
    {"resume", no_argument, 0, OPT_RESUME},    {"endpoint", required_argument, 0, OPT_ENDPOINT},
    {"model", required_argument, 0, OPT_MODEL}, {"temperature", required_argument, 0, OPT_TEMP},
    {"max-tokens", required_argument, 0, OPT_MAXTOK},
    {"api-key-file", required_argument, 0, OPT_KEYFILE},
    {"system-file", required_argument, 0, OPT_SYSFILE}, {"map", required_argument, 0, OPT_MAP},
    {"concurrency", required_argument, 0, 'j'}, {"rpm", required_argument, 0, OPT_RPM},
    {"tpm", required_argument, 0, OPT_TPM},    {"timeout", required_argument, 0, OPT_TIMEOUT},
    {"connect-timeout", required_argument, 0, OPT_CTIMEOUT},
    {"max-attempts", required_argument, 0, OPT_ATTEMPTS},
    {"max-retries", required_argument, 0, OPT_RETRIES},
    {"backoff-base", required_argument, 0, OPT_BBASE}, {"backoff-max", required_argument, 0, OPT_BMAX},
    {"seed", required_argument, 0, OPT_SEED},  {"dry-run", no_argument, 0, OPT_DRY},
    {"price-in", required_argument, 0, OPT_PIN}, {"price-out", required_argument, 0, OPT_POUT},
    {"est-completion", required_argument, 0, OPT_ESTC}, {"strict", no_argument, 0, OPT_STRICT},
    {"progress", no_argument, 0, OPT_PROGRESS}, {"quiet", no_argument, 0, 'q'},
    {"replace-invalid", no_argument, 0, OPT_REPLACE},
    {"help", no_argument, 0, 'h'},             {"version", no_argument, 0, OPT_VERSION},
    {0, 0, 0, 0}};

static volatile sig_atomic_t stop_requests;
static volatile sig_atomic_t first_signal; /* the exit status names it (130 / 143) */

static void on_signal(int sig) {
    if (!first_signal) first_signal = sig;
    static const char first[] =
        "gr-synth: stopping: no new requests; finishing those in flight (signal again to abandon them)\n";
    if (stop_requests < 2) stop_requests++;
    if (stop_requests == 1) {
        ssize_t w = write(STDERR_FILENO, first, sizeof first - 1);
        (void)w;
    }
}

/* The whole file, NUL-terminated; exits on failure. */
static char *slurp(const char *path, size_t *n) {
    FILE *f = fopen(path, "rb");
    if (!f) gr_die(GR_EXIT_FAIL, "%s: %s", path, strerror(errno));
    gr_buf b = {0};
    char chunk[65536];
    size_t k;
    while ((k = fread(chunk, 1, sizeof chunk, f)) > 0) gr_buf_append(&b, chunk, k);
    int bad = ferror(f);
    fclose(f);
    if (bad) gr_die(GR_EXIT_FAIL, "%s: read error", path);
    gr_buf_cstr(&b);
    if (n) *n = b.len;
    return b.data;
}

/* The key: the first line of the file, without surrounding blanks. */
static char *read_key_file(const char *path) {
    size_t n;
    char *s = slurp(path, &n);
    if (strlen(s) != n) gr_die(GR_EXIT_FAIL, "%s: the key file holds a NUL byte", path);
    char *p = s;
    while (*p == ' ' || *p == '\t' || *p == '\r' || *p == '\n') p++;
    size_t k = strcspn(p, "\r\n");
    while (k && (p[k - 1] == ' ' || p[k - 1] == '\t')) k--;
    if (!k) gr_die(GR_EXIT_FAIL, "%s: the key file is empty", path);
    char *key = gr_xstrndup(p, k);
    memset(s, 0, n);
    free(s);
    return key;
}

typedef struct ui {
    int quiet, tty, progress, dirty;
} ui;

static void ui_note(void *ctx, const char *msg) {
    ui *u = ctx;
    if (u->quiet) return;
    if (u->dirty) fputc('\n', stderr), u->dirty = 0;
    gr_msg("%s", msg);
}

static void ui_progress(void *ctx, const synth_stats *st, int in_flight) {
    ui *u = ctx;
    double rate = st->seconds > 0 ? (double)st->requests / st->seconds : 0;
    fprintf(stderr, "%sgr-synth: %ld accepted, %ld rejected, %ld failed, %d in flight, %.1f req/s%s",
            u->tty ? "\r" : "", st->accepted, st->rejected, st->failed, in_flight, rate,
            u->tty ? "   " : "\n");
    u->dirty = u->tty;
}

static void summary(const synth_stats *st, const synth_config *c, double pin, double pout, int have_price) {
    gr_msg("%ld accepted, %ld rejected, %ld failed, %ld not started, %ld skipped (already done), "
           "%ld invalid input records",
           st->accepted, st->rejected, st->failed, st->unstarted, st->skipped_done, st->invalid);
    gr_msg("%ld records needed retries: %ld answers refused by validation, %ld server/transport errors",
           st->records_retried, st->answer_retries, st->server_retries);
    gr_msg("reasoning steps: %ld (mean %.2f per record, mean %.2f characters per step)", st->steps,
           st->accepted ? (double)st->steps / (double)st->accepted : 0.0,
           st->steps ? (double)st->step_chars / (double)st->steps : 0.0);
    gr_msg("%ld requests in %.1f s (%.2f requests/s); tokens: %ld prompt, %ld completion", st->requests,
           st->seconds, st->seconds > 0 ? (double)st->requests / st->seconds : 0.0, st->prompt_tokens,
           st->completion_tokens);
    if (have_price)
        gr_msg("cost: $%.4f (at $%g / $%g per million prompt / completion tokens)",
               (double)st->prompt_tokens / 1e6 * pin + (double)st->completion_tokens / 1e6 * pout, pin,
               pout);
    (void)c;
}

int main(int argc, char **argv) {
    gr_prog = "gr-synth";
    synth_config c;
    memset(&c, 0, sizeof c);
    c.params.model = "gpt-4o";
    c.params.temperature = 0;
    c.concurrency = 8;
    c.timeout = 300;
    c.connect_timeout = 20;
    c.max_attempts = 3;
    c.max_retries = 10;
    c.backoff_base = 1;
    c.backoff_max = 60;
    c.est_completion_tokens = 600;
    const char *key_file = NULL, *sys_file = NULL;
    double pin = 0, pout = 0;
    int have_price = 0, resume_flag = 0, progress = 0;
    ui u = {0};
    /* A key typed as an option would land in the shell history and in ps; and
     * getopt would take "--api-key" as short for --api-key-file. Refuse it
     * without echoing it. */
    for (int i = 1; i < argc && strcmp(argv[i], "--") != 0; i++) {
        const char *a = argv[i];
        if (strncmp(a, "--api-key", 9) == 0 && strncmp(a, "--api-key-file", 14) != 0)
            gr_usage_error("API keys are not taken on the command line: set OPENAI_API_KEY or use --api-key-file FILE");
        if (strncmp(a, "--api-key-f", 11) == 0 && strncmp(a, "--api-key-file", 14) != 0)
            gr_usage_error("write --api-key-file in full");
    }
    int opt;
    while ((opt = getopt_long(argc, argv, "o:j:qh", long_opts, NULL)) != -1) {
        switch (opt) {
        case 'o': c.output = optarg; break;
        case OPT_REJECTS: c.rejects = optarg; break;
        case OPT_RESUME: resume_flag = 1; break;
        case OPT_ENDPOINT: c.endpoint = optarg; break;
        case OPT_MODEL: c.params.model = optarg; break;
        case OPT_TEMP: c.params.temperature = gr_parse_double("--temperature", optarg, 0, 2); break;
        case OPT_MAXTOK: c.params.max_tokens = gr_parse_long("--max-tokens", optarg, 1, 10000000); break;
        case OPT_KEYFILE: key_file = optarg; break;
        case OPT_SYSFILE: sys_file = optarg; break;
        case OPT_MAP: c.map = optarg; break;
        case 'j': c.concurrency = (int)gr_parse_long("--concurrency", optarg, 1, 4096); break;
        case OPT_RPM: c.rpm = gr_parse_double("--rpm", optarg, 0, 1e9); break;
        case OPT_TPM: c.tpm = gr_parse_double("--tpm", optarg, 0, 1e12); break;
        case OPT_TIMEOUT: c.timeout = gr_parse_double("--timeout", optarg, 0.001, 86400); break;
        case OPT_CTIMEOUT: c.connect_timeout = gr_parse_double("--connect-timeout", optarg, 0.001, 3600); break;
        case OPT_ATTEMPTS: c.max_attempts = (int)gr_parse_long("--max-attempts", optarg, 1, 1000); break;
        case OPT_RETRIES: c.max_retries = (int)gr_parse_long("--max-retries", optarg, 0, 1000000); break;
        case OPT_BBASE: c.backoff_base = gr_parse_double("--backoff-base", optarg, 0, 3600); break;
        case OPT_BMAX: c.backoff_max = gr_parse_double("--backoff-max", optarg, 0, 86400); break;
        case OPT_SEED: c.seed = (uint64_t)gr_parse_long("--seed", optarg, 1, 0x7fffffffffffffffL); break;
        case OPT_DRY: c.dry_run = 1; break;
        case OPT_PIN: pin = gr_parse_double("--price-in", optarg, 0, 1e6); have_price = 1; break;
        case OPT_POUT: pout = gr_parse_double("--price-out", optarg, 0, 1e6); have_price = 1; break;
        case OPT_ESTC: c.est_completion_tokens = gr_parse_long("--est-completion", optarg, 0, 10000000); break;
        case OPT_STRICT: c.strict = 1; break;
        case OPT_REPLACE: gr_reader_replace_invalid_all(1); break;
        case OPT_PROGRESS: progress = 1; break;
        case 'q': u.quiet = 1; break;
        case 'h': fputs(usage_text, stdout); gr_close_stdout(); return GR_EXIT_OK;
        case OPT_VERSION: printf("gr-synth %s\n", GR_VERSION); gr_close_stdout(); return GR_EXIT_OK;
        default: gr_usage_error("unknown option");
        }
    }
    int to_file = c.output && strcmp(c.output, "-") != 0;
    if (resume_flag && !to_file) gr_usage_error("--resume needs -o FILE");
    if (c.backoff_max < c.backoff_base) gr_usage_error("--backoff-max is below --backoff-base");
    c.resume = to_file;
    char *own_rejects = NULL, *own_key = NULL, *own_system = NULL;
    if (to_file && !c.rejects) c.rejects = own_rejects = synth_default_rejects(c.output);
    if (c.rejects && to_file && strcmp(c.rejects, c.output) == 0)
        gr_usage_error("--rejects must differ from -o");
    if (c.map) {
        gr_err e;
        if (gr_map_check(c.map, &e) < 0) gr_usage_error("--map: %s", e.msg);
    }
    if (!c.endpoint) c.endpoint = getenv("OPENAI_BASE_URL");
    if (!c.endpoint || !*c.endpoint) c.endpoint = "https://api.openai.com/v1";
    if (key_file) {
        c.api_key = own_key = read_key_file(key_file);
    } else {
        const char *k = getenv("OPENAI_API_KEY");
        if (k && *k) c.api_key = k;
    }
    c.system_tmpl = sys_file ? (own_system = slurp(sys_file, NULL)) : synth_default_system;
    if (!c.seed) { /* different clients should not retry in step */
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        c.seed = ((uint64_t)ts.tv_sec * 1000000007ULL) ^ (uint64_t)ts.tv_nsec ^ ((uint64_t)getpid() << 32);
        if (!c.seed) c.seed = 1;
    }
    c.inputs = (const char *const *)(argv + optind);
    c.ninputs = argc - optind;
    u.tty = isatty(STDERR_FILENO);
    u.progress = !u.quiet && (progress || u.tty);
    c.note = ui_note;
    c.progress = u.progress && !c.dry_run ? ui_progress : NULL;
    c.ctx = &u;
    c.stop = &stop_requests;
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_signal;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);

    synth_stats st;
    gr_err err;
    int rc = synth_run(&c, &st, &err);
    if (u.dirty) fputc('\n', stderr);
    if (own_key) memset(own_key, 0, strlen(own_key));
    free(own_key);
    free(own_system);
    free(own_rejects);
    if (c.dry_run) {
        if (rc < 0) gr_die(st.locked ? GR_EXIT_LOCKED : GR_EXIT_FAIL, "%s", err.msg);
        if (c.dry_first_body) printf("%s\n", c.dry_first_body);
        free(c.dry_first_body);
        gr_close_stdout();
        long est_c = st.planned * c.est_completion_tokens;
        if (c.params.max_tokens > 0) est_c = st.planned * c.params.max_tokens;
        gr_msg("dry run: %ld requests to make (%ld already done, %ld invalid input records); "
               "about %ld prompt tokens (bytes/4) and %ld completion tokens (%ld each)",
               st.planned, st.skipped_done, st.invalid, st.est_prompt_tokens, est_c,
               c.params.max_tokens > 0 ? c.params.max_tokens : c.est_completion_tokens);
        if (have_price)
            gr_msg("estimated cost: $%.2f (at $%g / $%g per million prompt / completion tokens; "
                   "retries not counted)",
                   (double)st.est_prompt_tokens / 1e6 * pin + (double)est_c / 1e6 * pout, pin, pout);
        return GR_EXIT_OK;
    }
    if (!u.quiet) summary(&st, &c, pin, pout, have_price);
    if (rc < 0) gr_die(st.locked ? GR_EXIT_LOCKED : GR_EXIT_FAIL, "%s", err.msg);
    if (!to_file) gr_close_stdout();
    if (st.stopped) {
        gr_msg("interrupted; run the same command again to resume%s", to_file ? "" : " (needs -o FILE)");
        return gr_exit_for_signal(first_signal ? first_signal : SIGINT);
    }
    if (st.failed) {
        gr_msg("%ld records failed; run the same command again to retry them", st.failed);
        return GR_EXIT_FAIL;
    }
    return GR_EXIT_OK;
}
