/* gr-sample: k sampled guard outputs per record, for hard-sample mining. */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include "backend.h"
#include "gr_cli.h"
#include "gr_lock.h"
#include "guard_run.h"
#include "guard_run_cli.h"

static const char usage_text[] =
    "Usage: gr-sample [OPTIONS] [FILE...]\n"
    "Samples k outputs of a guard model per alpaca record (instruction, input,\n"
    "output) and writes sample records in the GuardReasoner form: prompt\n"
    "(instruction + \"\\n\" + input), label (the record's output), predict (the\n"
    "generated text), plus id, k (0..k-1), model, tokens. gr-mine reads them.\n"
    "\n"
    "  -m, --model PATH      Hugging Face folder or .gguf (default $GR_MODEL)\n"
    "  -t, --tokenizer PATH  tokenizer (default: the model's)\n"
    "  -k N                  samples per record (default 4)\n"
    "  --temperature T       default 0.7   (the reference's settings)\n"
    "  --top-p P             default 0.95\n"
    "  --top-k K             default 0 (off)\n"
    "  --seed N              random seed (default 0); a sample depends only on the\n"
    "                        seed, the record's position and k: not on --batch or --threads\n"
    "  --template NAME       raw (default), llama3, chatml\n"
    "  --batch N             sequences decoding together (default 16)\n"
    "  --max-tokens N        most generated tokens per sample (default 2048)\n"
    "  --threads N           CPU threads (default: all cores)\n"
    "  --exact               keep activations f32 with quantized weights (slower; matches\n"
    "                        transformers on the dequantized weights to ~1e-6)\n"
    "  --device NAME         cpu (default) or cuda[:N] (GPU N; builds with CUDA, see --version)\n"
    "  --model-name NAME     the `model` field (default: the model's file name)\n"
    "  --map PROGRAM         jq program applied to every input record\n"
    "  --strict              fail on a bad record instead of skipping it\n"
    "  -o, --output FILE     write to FILE (atomically; .zst compresses); locked\n"
    "                        (FILE.lock): a second run on it exits 4\n"
    "  --resume              with -o: append, skipping (id, k) already in FILE\n"
    "                        (each sample flushed as soon as all before it are done)\n"
    "  --shard K/N           only the records whose id hashes to shard K of N (gr-classify(1))\n"
    "  --token-ids           add token_ids (the generated ids)\n"
    "  --replace-invalid     replace invalid UTF-8 in the input by U+FFFD (counted)\n"
    "  --summary-json FILE   the end-of-run summary as JSON (for monitoring)\n"
    "  --progress            progress on stderr even when it is not a terminal\n"
    "  --log FILE            one JSON line per forward step (appended)\n"
    "  --shard K/N           only the records whose id hashes to shard K of N (gr-classify(1))\n"
    "  -q, --quiet           no progress, no summary on stderr\n"
    "  -h, --help            this help;   --version   the version\n"
    "\n"
    "Exit status: 0 ok, 1 failure, 2 usage, 4 output locked, 130/143 stopped by\n"
    "SIGINT/SIGTERM (what was complete kept with --resume).\n"
    "\n"
    "Example:\n"
    "  gr-sample -m R-SFT-1B/ -k 4 train.jsonl -o samples.jsonl --resume\n";

enum { OPT_TEMPLATE = 256, OPT_BATCH, OPT_MAXTOK, OPT_THREADS, OPT_TEMP, OPT_TOPP, OPT_TOPK,
       OPT_SEED, OPT_NAME, OPT_MAP, OPT_STRICT, OPT_RESUME, OPT_DEVICE, OPT_EXACT, OPT_VERSION,
       OPT_TOKEN_IDS, OPT_REPLACE, OPT_FAIL_ON, OPT_SUMMARY_JSON, OPT_PROGRESS, OPT_LOG,
       OPT_SHARD };

static void warn_cb(void *ud, const char *msg) {
    (void)ud;
    gr_msg("%s (skipped)", msg);
}

int main(int argc, char **argv) {
    gr_prog = "gr-sample";
    static const struct option longopts[] = {
        {"model", required_argument, 0, 'm'}, {"tokenizer", required_argument, 0, 't'},
        {"template", required_argument, 0, OPT_TEMPLATE}, {"batch", required_argument, 0, OPT_BATCH},
        {"max-tokens", required_argument, 0, OPT_MAXTOK}, {"threads", required_argument, 0, OPT_THREADS},
        {"temperature", required_argument, 0, OPT_TEMP}, {"top-p", required_argument, 0, OPT_TOPP},
        {"top-k", required_argument, 0, OPT_TOPK}, {"seed", required_argument, 0, OPT_SEED},
        {"model-name", required_argument, 0, OPT_NAME},
        {"map", required_argument, 0, OPT_MAP}, {"strict", no_argument, 0, OPT_STRICT},
        {"device", required_argument, 0, OPT_DEVICE}, {"exact", no_argument, 0, OPT_EXACT}, {"output", required_argument, 0, 'o'}, {"resume", no_argument, 0, OPT_RESUME},
        {"quiet", no_argument, 0, 'q'}, {"help", no_argument, 0, 'h'},
        {"token-ids", no_argument, 0, OPT_TOKEN_IDS}, {"replace-invalid", no_argument, 0, OPT_REPLACE},
        {"summary-json", required_argument, 0, OPT_SUMMARY_JSON}, {"progress", no_argument, 0, OPT_PROGRESS},
        {"log", required_argument, 0, OPT_LOG},
        {"shard", required_argument, 0, OPT_SHARD},
        {"version", no_argument, 0, OPT_VERSION}, {0, 0, 0, 0}};
    gr_run_opts o = {.mode = GR_RUN_SAMPLE, .model_path = getenv("GR_MODEL"), .batch = 16,
                     .max_tokens = 2048, .sampler = {0.7f, 0.95f, 0}, .k = 4};
    gr_reader_opts ro = {0};
    const char *out_path = NULL;
    gr_shard shard = {0, 0};
    int resume = 0, c;
    gr_run_cli cli = {.sample_mode = 1, .progress = -1};
    gr_err err;
    while ((c = getopt_long(argc, argv, "m:t:o:k:qh", longopts, NULL)) != -1) {
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
        case 'k': o.k = (int)gr_parse_long("-k", optarg, 1, 1000); break;
        case OPT_NAME: o.model_name = optarg; break;
        case OPT_MAP:
            if (gr_map_check(optarg, &err)) gr_usage_error("--map: %s", err.msg);
            ro.map = optarg;
            break;
        case OPT_STRICT: o.strict = 1; break;
        case OPT_EXACT: o.exact = 1; break;
        case OPT_DEVICE:
            if (gr_device_check(optarg, &err)) gr_usage_error("%s", err.msg);
            o.device = optarg;
            break;
        case 'o': out_path = optarg; break;
        case OPT_RESUME: resume = 1; break;
        case OPT_SHARD:
            if (gr_shard_parse(optarg, &shard, &err)) gr_usage_error("--shard %s", err.msg);
            o.shard = &shard;
            break;
        case 'q': cli.quiet = 1; break;
        case OPT_TOKEN_IDS: o.token_ids = 1; break;
        case OPT_REPLACE: ro.replace_invalid_utf8 = 1; break;
        case OPT_SUMMARY_JSON: cli.summary_json = optarg; break;
        case OPT_PROGRESS: cli.progress = 1; break;
        case OPT_LOG: cli.log_path = optarg; break;
        case 'h': fputs(usage_text, stdout); gr_close_stdout(); return 0;
        case OPT_VERSION: printf("gr-sample %s (backends: %s)\n%s\n", GR_VERSION, gr_backends_built(), gr_cpu_describe()); gr_close_stdout(); return 0;
        default: gr_usage_error("unknown option");
        }
    }
    if (!o.model_path || !*o.model_path) gr_usage_error("no model: give -m PATH or set GR_MODEL");
    if (resume && (!out_path || strcmp(out_path, "-") == 0)) gr_usage_error("--resume needs -o FILE");
    o.reader = &ro;
    if (cli.progress < 0) cli.progress = isatty(2);
    char *stdin_only[] = {"-"};
    char **files = optind < argc ? argv + optind : stdin_only;
    int n_files = optind < argc ? argc - optind : 1;
    gr_refuse_output_as_input(out_path, files, n_files);
    gr_run_cli_start(&cli, &o, files, n_files);
    gr_catch_stop_signals();
    o.stop = &gr_stop_signal;
    gr_run_stats st = {0};
    int rc = gr_run_to_path(&o, files, n_files, out_path, resume, warn_cb, NULL, &st, &err);
    int status = gr_run_cli_finish(&cli, &o, rc, &err, &st, out_path, resume);
    if (status != GR_EXIT_OK && status != GR_EXIT_FLAGGED) return status;
    gr_close_stdout();
    return status;
}
