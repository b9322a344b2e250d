/* gr-classify: the guard. Interaction or alpaca records in, verdict records out. */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "gr_cli.h"
#include "guard_policy.h"
#include "guard_run.h"
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
    "  --threads N           CPU threads (default: all cores)\n"
    "  --exact               keep activations f32 with quantized weights (slower; matches\n"
    "                        transformers on the dequantized weights to ~1e-6)\n"
    "  --device NAME         cpu (the only backend in this build)\n"
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
    "  -o, --output FILE     write to FILE (atomically; .zst compresses)\n"
    "  --resume              with -o: append, skipping ids already in FILE\n"
    "  -q, --quiet           no summary on stderr\n"
    "  -h, --help            this help;   --version   the version\n"
    "\n"
    "Example:\n"
    "  gr-classify -m GuardReasoner-1B/ logs.jsonl --map '{id:.ts, prompt:.q, response:.a}' \\\n"
    "      -o verdicts.jsonl --resume\n";

enum { OPT_TEMPLATE = 256, OPT_BATCH, OPT_MAXTOK, OPT_THREADS, OPT_TEMP, OPT_TOPP, OPT_TOPK,
       OPT_SEED, OPT_LOGPROBS, OPT_NAME, OPT_MAP, OPT_STRICT, OPT_RESUME, OPT_DEVICE, OPT_EXACT, OPT_VERSION,
       OPT_MODE, OPT_ESCALATE, OPT_INSTRUCTION };

static void warn_cb(void *ud, const char *msg) {
    (void)ud;
    gr_msg("%s (skipped)", msg);
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
        {"version", no_argument, 0, OPT_VERSION}, {"mode", required_argument, 0, OPT_MODE},
        {"escalate", required_argument, 0, OPT_ESCALATE}, {"instruction", required_argument, 0, OPT_INSTRUCTION},
        {0, 0, 0, 0}};
    gr_run_opts o = {.mode = GR_RUN_CLASSIFY, .model_path = getenv("GR_MODEL"), .batch = 16,
                     .max_tokens = 2048, .sampler = {0.0f, 1.0f, 0}, .k = 1};
    gr_reader_opts ro = {0};
    const char *out_path = NULL;
    int resume = 0, quiet = 0, escalate = 0, c;
    gr_guard_mode guard_mode = GR_GUARD_REASON;
    gr_policy policy = {0};
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
        case OPT_DEVICE:
            if (strcmp(optarg, "cpu") != 0)
                gr_usage_error("--device %s: this build has only the cpu backend", optarg);
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
        case 'q': quiet = 1; break;
        case 'h': fputs(usage_text, stdout); gr_close_stdout(); return 0;
        case OPT_VERSION: printf("gr-classify %s\n", GR_VERSION); gr_close_stdout(); return 0;
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
    char *stdin_only[] = {"-"};
    char **files = optind < argc ? argv + optind : stdin_only;
    int n_files = optind < argc ? argc - optind : 1;
    gr_run_stats st = {0};
    int rc = gr_run_to_path(&o, files, n_files, out_path, resume, warn_cb, NULL, &st, &err);
    if (st.cut_bytes && !quiet) gr_msg("%s: cut a torn last line (%zu bytes)", out_path, st.cut_bytes);
    gr_policy_free(&policy);
    if (rc) gr_die(1, "%s", err.msg);
    if (!quiet)
        gr_msg("%ld records: %ld written, %ld already done, %ld skipped as bad, %ld without an "
               "answer, %ld cut at --max-tokens; %ld prompt + %ld generated tokens in %.1f s "
               "(%.1f tokens/s)", st.records, st.written, st.skipped_done, st.skipped_bad,
               st.unparsed, st.truncated, st.prompt_tokens, st.generated_tokens, st.seconds,
               st.seconds > 0 ? (double)st.generated_tokens / st.seconds : 0.0);
    gr_close_stdout();
    return 0;
}
