/* gr-classify: the guard. Interaction or alpaca records in, verdict records out. */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include "backend.h"
#include "classify_incr.h"
#include "gr_cli.h"
#include "gr_lock.h"
#include "guard_policy.h"
#include "guard_run.h"
#include "guard_run_cli.h"
#include "guard_verdict.h"

static const char usage_text[] =
    "Usage: gr-classify [OPTIONS] [FILE...]\n"
    "Runs the guard model over records and writes verdict records: the input record\n"
    "plus reasoning, pred {request, completion, response}, scores (probability of\n"
    "harmful / refusal where the model wrote the answer), parse_ok, model, tokens.\n"
    "Input: interaction records (prompt, response) or alpaca records (instruction,\n"
    "input: the benchmark files); any other shape through --map.\n"
    "\n"
    "  -m, --model PATH      Hugging Face folder or .gguf (default $GR_MODEL)\n"
    "  -t, --tokenizer PATH  tokenizer (default: the model's)\n"
    "  --template NAME       raw (default: instruction + \"\\n\" + input, as the released\n"
    "                        GuardReasoner models are prompted), llama3, chatml\n"
    "  --batch N             sequences decoding together (default 16)\n"
    "  --max-tokens N        most generated tokens per record (default 2048)\n"
    "  --ignore-eos          do not stop at an end token: exactly --max-tokens per record\n"
    "                        (benchmarks)\n"
    "  --threads N           CPU threads (default: all cores)\n"
    "  --exact               keep activations f32 with quantized weights (slower; matches\n"
    "                        transformers on the dequantized weights to ~1e-6)\n"
    "  --device NAME         cpu (default) or cuda[:N] (GPU N; builds with CUDA, see --version)\n"
    "  --temperature T       default 0 (greedy, as the reference evaluation)\n"
    "  --top-p P, --top-k K  sampling filters (with --temperature > 0)\n"
    "  --seed N              random seed (default 0)\n"
    "  --logprobs            add token_logprobs (log p of each generated token)\n"
    "  --model-name NAME     the `model` field (default: the model's file name)\n"
    "  --map PROGRAM         jq program applied to every input record\n"
    "  --strict              fail on a bad record instead of skipping it\n"
    "  --mode MODE           reason (default: write the reasoning, then the answers),\n"
    "                        verdict (no reasoning: read the answer words' probabilities\n"
    "                        after \"Answers: \\nRequest:\"), tiered (verdict, then reason\n"
    "                        for records with a score in the --escalate band)\n"
    "  --escalate LO:HI      tiered: the band of scores sent to reason mode (e.g. 0.1:0.9)\n"
    "  --instruction FILE    the guard instruction (policy) for interaction records;\n"
    "                        every verdict's `policy` is its sha256\n"
    "  -o, --output FILE     write to FILE (atomically; .zst compresses); locked\n"
    "                        (FILE.lock): a second run on it exits 4\n"
    "  --resume              with -o: append, skipping records already in FILE\n"
    "                        (each verdict flushed as soon as all before it are done)\n"
    "  --token-ids           add token_ids (the generated ids)\n"
    "  --replace-invalid     replace invalid UTF-8 in the input by U+FFFD (counted)\n"
    "  --fail-on WHAT        exit 3 when a verdict is WHAT: harmful (request or\n"
    "                        response), refusal, unverified (no answer read), any;\n"
    "                        repeatable\n"
    "  --summary-json FILE   the end-of-run summary as JSON (for monitoring)\n"
    "  --progress            progress on stderr even when it is not a terminal\n"
    "  --log FILE            one JSON line per forward step (appended)\n"
    "  --state FILE          moderate only what each LOG gained since the last run with\n"
    "                        this state (appending to -o); rotation and truncation safe\n"
    "  --rotated-glob PAT    where rotated logs go (default LOG.1), for --state\n"
    "  --rejects FILE        lines that are not JSON or that --map or the guard cannot\n"
    "                        read, with source and reason (appended; --state)\n"
    "  --wait                with --state: wait for a run holding the lock (default: exit 4)\n"
    "  --shard K/N           only the records whose id hashes to shard K of N\n"
    "  -q, --quiet           no progress, no summary on stderr\n"
    "  -h, --help            this help;   --version   the version\n"
    "\n"
    "Exit status: 0 ok, 1 failure, 2 usage, 3 --fail-on matched, 4 output locked,\n"
    "130/143 stopped by "
    "SIGINT/SIGTERM (what was complete kept with --resume).\n"
    "\n"
    "Example:\n"
    "  gr-classify -m GuardReasoner-1B/ logs.jsonl --map '{id:.ts, prompt:.q, response:.a}' \\\n"
    "      -o verdicts.jsonl --resume\n"
    "  gr-classify -m guard.gguf --state app.state --rejects rejects.jsonl \\\n"
    "      -o verdicts.jsonl /var/log/app.jsonl          # from cron, every minute\n";

enum { OPT_TEMPLATE = 256, OPT_BATCH, OPT_MAXTOK, OPT_THREADS, OPT_TEMP, OPT_TOPP, OPT_TOPK,
       OPT_SEED, OPT_LOGPROBS, OPT_NAME, OPT_MAP, OPT_STRICT, OPT_RESUME, OPT_DEVICE, OPT_EXACT, OPT_VERSION,
       OPT_TOKEN_IDS, OPT_REPLACE, OPT_FAIL_ON, OPT_SUMMARY_JSON, OPT_PROGRESS, OPT_LOG,
       OPT_STATE, OPT_ROTATED, OPT_REJECTS, OPT_WAIT, OPT_SHARD, OPT_IGNORE_EOS,
       OPT_MODE, OPT_ESCALATE, OPT_INSTRUCTION };

static void warn_cb(void *ud, const char *msg) {
    (void)ud;
    gr_msg("%s (skipped)", msg);
}

/* Rejects and rotation warnings say what happened themselves. */
static void state_warn(void *ud, const char *msg) {
    (void)ud;
    gr_msg("%s", msg);
}

/* --summary-json with --state: the run's summary (gr_run_cli) gains a `state`
 * object with what the logs held. */
/* --summary-json's "state" object: what the logs held */
static jv state_summary(const gr_incr_stats *st) {
    const gr_feed_stats *fs = &st->feed;
    jv s = jv_object();
    s = jv_object_set(s, jv_string("logs"), jv_number(st->logs));
    s = jv_object_set(s, jv_string("lines"), jv_number(fs->lines));
    s = jv_object_set(s, jv_string("records"), jv_number(fs->records));
    s = jv_object_set(s, jv_string("rejects"), jv_number(fs->rejects));
    s = jv_object_set(s, jv_string("blank"), jv_number(fs->blank));
    s = jv_object_set(s, jv_string("dropped_by_map"), jv_number(fs->dropped));
    s = jv_object_set(s, jv_string("other_shards"), jv_number(fs->other_shard));
    s = jv_object_set(s, jv_string("done_by_interrupted_run"), jv_number(fs->done_before));
    s = jv_object_set(s, jv_string("logs_with_lost_content"), jv_number(st->lost));
    return s;
}

/* gr-classify --state: classify_incr.h does the work; this prints (a line on
 * the logs, then the run's summary) and gives the exit status. */
static int run_state(gr_run_cli *cli, gr_run_opts *o, const gr_incr_opts *io, char *const *logs, int n_logs) {
    gr_run_cli_start(cli, o, NULL, 0);
    cli->total = -1; /* the new lines are not known before they are read */
    gr_catch_stop_signals();
    o->stop = &gr_stop_signal;
    gr_incr_stats st;
    gr_err err;
    int rc = gr_classify_incremental(o, io, logs, n_logs, state_warn, NULL, &st, &err);
    const gr_feed_stats *f = &st.feed;
    /* one summary line: what the logs held, then the run's own figures */
    char preface[512];
    snprintf(preface, sizeof preface,
             "%s: %ld logs, %ld new lines: %ld records, %ld rejected, %ld blank, %ld dropped by --map, "
             "%ld other shards, %ld already written by an interrupted run%s",
             io->state_path, st.logs, f->lines, f->records, f->rejects, f->blank, f->dropped, f->other_shard,
             f->done_before, st.lost ? ", content LOST to rotation (see above)" : "");
    cli->preface = preface;
    cli->summary_state = state_summary(&st);
    cli->has_summary_state = 1;
    cli->unverified_lines = f->rejects;
    int status = gr_run_cli_finish(cli, o, rc, &err, &st.run, io->out_path, 1);
    if (status != GR_EXIT_OK && status != GR_EXIT_FLAGGED) return status;
    gr_close_stdout();
    return status;
}

int main(int argc, char **argv) {
    gr_prog = "gr-classify";
    static const struct option longopts[] = {
        {"model", required_argument, 0, 'm'}, {"tokenizer", required_argument, 0, 't'},
        {"template", required_argument, 0, OPT_TEMPLATE}, {"batch", required_argument, 0, OPT_BATCH},
        {"max-tokens", required_argument, 0, OPT_MAXTOK}, {"threads", required_argument, 0, OPT_THREADS},
        {"temperature", required_argument, 0, OPT_TEMP}, {"top-p", required_argument, 0, OPT_TOPP},
        {"top-k", required_argument, 0, OPT_TOPK}, {"seed", required_argument, 0, OPT_SEED},
        {"logprobs", no_argument, 0, OPT_LOGPROBS}, {"model-name", required_argument, 0, OPT_NAME},
        {"map", required_argument, 0, OPT_MAP}, {"strict", no_argument, 0, OPT_STRICT},
        {"device", required_argument, 0, OPT_DEVICE}, {"exact", no_argument, 0, OPT_EXACT}, {"output", required_argument, 0, 'o'}, {"resume", no_argument, 0, OPT_RESUME},
        {"quiet", no_argument, 0, 'q'}, {"help", no_argument, 0, 'h'},
        {"token-ids", no_argument, 0, OPT_TOKEN_IDS}, {"replace-invalid", no_argument, 0, OPT_REPLACE},
        {"summary-json", required_argument, 0, OPT_SUMMARY_JSON}, {"progress", no_argument, 0, OPT_PROGRESS},
        {"log", required_argument, 0, OPT_LOG},
        {"fail-on", required_argument, 0, OPT_FAIL_ON},
        {"state", required_argument, 0, OPT_STATE}, {"rotated-glob", required_argument, 0, OPT_ROTATED},
        {"rejects", required_argument, 0, OPT_REJECTS}, {"wait", no_argument, 0, OPT_WAIT},
        {"shard", required_argument, 0, OPT_SHARD},
        {"version", no_argument, 0, OPT_VERSION}, {"ignore-eos", no_argument, 0, OPT_IGNORE_EOS},
        {"mode", required_argument, 0, OPT_MODE}, {"escalate", required_argument, 0, OPT_ESCALATE},
        {"instruction", required_argument, 0, OPT_INSTRUCTION}, {0, 0, 0, 0}};
    gr_run_opts o = {.mode = GR_RUN_CLASSIFY, .model_path = getenv("GR_MODEL"), .batch = 16,
                     .max_tokens = 2048, .sampler = {0.0f, 1.0f, 0}, .k = 1};
    gr_reader_opts ro = {0};
    const char *out_path = NULL;
    gr_incr_opts io = {0};
    gr_shard shard = {0, 0};
    int resume = 0, escalate = 0, c;
    gr_guard_mode guard_mode = GR_GUARD_REASON;
    gr_policy policy = {0};
    gr_run_cli cli = {.sample_mode = 0, .progress = -1};
    gr_err err;
    while ((c = getopt_long(argc, argv, "m:t:o:qh", longopts, NULL)) != -1) {
        switch (c) {
        case 'm': o.model_path = optarg; break;
        case 't': o.tokenizer_path = optarg; break;
        case OPT_TEMPLATE:
            if (gr_template_parse(optarg, &o.tmpl, &err)) gr_usage_error("--template: %s", err.msg);
            break;
        case OPT_BATCH: o.batch = (int)gr_parse_long("--batch", optarg, 1, 4096); break;
        case OPT_MAXTOK: o.max_tokens = (int)gr_parse_long("--max-tokens", optarg, 1, 1 << 20); break;
        case OPT_THREADS: o.threads = (int)gr_parse_long("--threads", optarg, 1, 256); break;
        case OPT_TEMP: o.sampler.temperature = (float)gr_parse_double("--temperature", optarg, 0, 100); break;
        case OPT_TOPP: o.sampler.top_p = (float)gr_parse_double("--top-p", optarg, 1e-9, 1); break;
        case OPT_TOPK: o.sampler.top_k = (int)gr_parse_long("--top-k", optarg, 0, 1 << 24); break;
        case OPT_SEED: o.seed = (uint64_t)gr_parse_long("--seed", optarg, 0, 0x7fffffffffffffffL); break;
        case OPT_LOGPROBS: o.logprobs = 1; break;
        case OPT_NAME: o.model_name = optarg; break;
        case OPT_MAP:
            if (gr_map_check(optarg, &err)) gr_usage_error("--map: %s", err.msg);
            ro.map = optarg;
            break;
        case OPT_STRICT: o.strict = 1; break;
        case OPT_EXACT: o.exact = 1; break;
        case OPT_IGNORE_EOS: o.ignore_eos = 1; break;
        case OPT_DEVICE:
            if (gr_device_check(optarg, &err)) gr_usage_error("%s", err.msg);
            o.device = optarg;
            break;
        case OPT_MODE:
            if (gr_guard_mode_parse(optarg, &guard_mode)) gr_usage_error("--mode %s: want reason, verdict or tiered", optarg);
            o.guard_mode = (int)guard_mode;
            break;
        case OPT_ESCALATE:
            if (gr_escalate_parse(optarg, &o.escalate_lo, &o.escalate_hi, &err)) gr_usage_error("--escalate %s", err.msg);
            escalate = 1;
            break;
        case OPT_INSTRUCTION: {
            int invalid;
            gr_policy_free(&policy);
            if (gr_policy_load(optarg, &policy, &invalid, &err)) {
                if (invalid) gr_usage_error("--instruction %s", err.msg);
                gr_die(1, "--instruction %s", err.msg);
            }
            o.policy = &policy;
            break;
        }
        case 'o': out_path = optarg; break;
        case OPT_RESUME: resume = 1; break;
        case OPT_STATE: io.state_path = optarg; break;
        case OPT_ROTATED: io.rotated_glob = optarg; break;
        case OPT_REJECTS: io.rejects_path = optarg; break;
        case OPT_WAIT: io.wait = 1; break;
        case OPT_SHARD:
            if (gr_shard_parse(optarg, &shard, &err)) gr_usage_error("--shard %s", err.msg);
            break;
        case 'q': cli.quiet = 1; break;
        case OPT_TOKEN_IDS: o.token_ids = 1; break;
        case OPT_REPLACE: ro.replace_invalid_utf8 = 1; break;
        case OPT_SUMMARY_JSON: cli.summary_json = optarg; break;
        case OPT_PROGRESS: cli.progress = 1; break;
        case OPT_LOG: cli.log_path = optarg; break;
        case OPT_FAIL_ON: o.fail_on |= gr_run_cli_fail_on(optarg); break;
        case 'h': fputs(usage_text, stdout); gr_close_stdout(); return 0;
        case OPT_VERSION: printf("gr-classify %s (backends: %s)\n%s\n", GR_VERSION, gr_backends_built(), gr_cpu_describe()); gr_close_stdout(); return 0;
        default: gr_usage_error("unknown option");
        }
    }
    if (!o.model_path || !*o.model_path) gr_usage_error("no model: give -m PATH or set GR_MODEL");
    if (guard_mode == GR_GUARD_TIERED && !escalate) gr_usage_error("--mode tiered needs --escalate LO:HI");
    if (escalate && guard_mode != GR_GUARD_TIERED) gr_usage_error("--escalate goes with --mode tiered");
    if (o.logprobs && guard_mode != GR_GUARD_REASON)
        gr_usage_error("--logprobs needs --mode reason (verdict mode samples no tokens)");
    if (resume && (!out_path || strcmp(out_path, "-") == 0)) gr_usage_error("--resume needs -o FILE");
    o.reader = &ro;
    if (cli.progress < 0) cli.progress = isatty(2);
    if (io.state_path) {
        if (!out_path || strcmp(out_path, "-") == 0) gr_usage_error("--state needs -o FILE (the verdicts are appended to it)");
        if (optind >= argc) gr_usage_error("--state needs the logs to read (FILE...; not stdin)");
        for (int i = optind; i < argc; i++)
            if (strcmp(argv[i], "-") == 0) gr_usage_error("--state reads files, not stdin");
        io.out_path = out_path;
        io.feed.map = ro.map;
        io.feed.replace_invalid = ro.replace_invalid_utf8;
        io.feed.shard = shard.n ? &shard : NULL;
        /* none of the files written may be one of the logs read */
        gr_refuse_output_as_input(out_path, argv + optind, argc - optind);
        gr_refuse_output_as_input(io.state_path, argv + optind, argc - optind);
        if (io.rejects_path) gr_refuse_output_as_input(io.rejects_path, argv + optind, argc - optind);
        if (io.rejects_path && strcmp(io.rejects_path, out_path) == 0)
            gr_usage_error("--rejects and -o name the same file");
        return run_state(&cli, &o, &io, argv + optind, argc - optind);
    }
    if (io.rejects_path || io.rotated_glob || io.wait)
        gr_usage_error("--rejects, --rotated-glob and --wait go with --state");
    if (shard.n) o.shard = &shard;
    char *stdin_only[] = {"-"};
    char **files = optind < argc ? argv + optind : stdin_only;
    int n_files = optind < argc ? argc - optind : 1;
    gr_refuse_output_as_input(out_path, files, n_files);
    gr_run_cli_start(&cli, &o, files, n_files);
    gr_catch_stop_signals();
    o.stop = &gr_stop_signal;
    gr_run_stats st = {0};
    int rc = gr_run_to_path(&o, files, n_files, out_path, resume, warn_cb, NULL, &st, &err);
    gr_policy_free(&policy);
    int status = gr_run_cli_finish(&cli, &o, rc, &err, &st, out_path, resume);
    if (status != GR_EXIT_OK && status != GR_EXIT_FLAGGED) return status;
    gr_close_stdout();
    return status;
}
