/* gr-mine: hard samples -> weighted preference pairs for HS-DPO. */
#include "gr_cli.h"
#include "gr_io.h"
#include "mine.h"
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char usage_text[] =
    "Usage: gr-mine [OPTIONS] --self FILE [--other FILE]...\n"
    "Finds the hard samples among k sampled outputs per training example (some\n"
    "samples right, some wrong for a task) and writes weighted preference pairs\n"
    "(instruction, input, chosen, rejected, sample_weight) for gr-dpo.\n"
    "Follows GuardReasoner's train/hard_sample_mining.py (see gr-mine(1) for the\n"
    "differences). Inputs are sample records (gr-sample output, or GuardReasoner's\n"
    "generated_predictions.jsonl form), grouped by `id` (or by prompt and label)\n"
    "and ordered by `k`; sources are merged by input text.\n"
    "\n"
    "  --self FILE            samples of the model being trained (H_self)\n"
    "  --other FILE           samples of another model (H_ensemble); repeatable\n"
    "  -o, --output FILE      pair records (default stdout; .zst compresses)\n"
    "  --gamma G              weights in [1-G, 1+G] (default 0.2)\n"
    "  --pick MODE            longest (default: the longest correct / incorrect\n"
    "                         sample, as the reference) or random (with --seed)\n"
    "  --seed N               seed of --pick random (default 0)\n"
    "  --normalize MODE       source (default: weights normalised per source, as\n"
    "                         the reference) or union\n"
    "  --split MODE           reference (default: GuardReasoner's DPO prompt split,\n"
    "                         one newline fewer) or exact\n"
    "  --answers MODE         script (default: the first Request:/Completion:/\n"
    "                         Response: word anywhere, any word, all three needed,\n"
    "                         as the reference) or eval (as gr-eval scores: label\n"
    "                         words in the last 300 characters, each task alone)\n"
    "  --label-task TASK      task of a bare harmful/unharmful gold label\n"
    "                         (default request)\n"
    "  --map PROGRAM          jq program applied to every sample record\n"
    "  --replace-invalid      replace invalid UTF-8 by U+FFFD instead of failing\n"
    "  --zstd                 compress the output\n"
    "  -q, --quiet            no statistics on stderr\n"
    "  -h, --help, --version\n"
    "\n"
    "Example:\n"
    "  gr-mine --self samples-1B.jsonl --other samples-1B_1.jsonl -o pairs.jsonl\n";

enum { OPT_SELF = 256, OPT_OTHER, OPT_GAMMA, OPT_PICK, OPT_SEED, OPT_NORM, OPT_SPLIT, OPT_ANSWERS, OPT_LABEL_TASK,
       OPT_MAP, OPT_REPLACE, OPT_ZSTD, OPT_VERSION };

int main(int argc, char **argv) {
    gr_prog = "gr-mine";
    static const struct option longopts[] = {
        {"self", required_argument, 0, OPT_SELF},       {"other", required_argument, 0, OPT_OTHER},
        {"output", required_argument, 0, 'o'},          {"gamma", required_argument, 0, OPT_GAMMA},
        {"pick", required_argument, 0, OPT_PICK},       {"seed", required_argument, 0, OPT_SEED},
        {"normalize", required_argument, 0, OPT_NORM},  {"split", required_argument, 0, OPT_SPLIT},
        {"answers", required_argument, 0, OPT_ANSWERS}, {"label-task", required_argument, 0, OPT_LABEL_TASK},
        {"map", required_argument, 0, OPT_MAP},         {"replace-invalid", no_argument, 0, OPT_REPLACE},
        {"zstd", no_argument, 0, OPT_ZSTD},             {"quiet", no_argument, 0, 'q'},
        {"help", no_argument, 0, 'h'},                  {"version", no_argument, 0, OPT_VERSION},
        {0, 0, 0, 0},
    };
    gr_mine_opts o = {.gamma = 0.2, .label_task = -1, .tail_chars = 300};
    const char *self = NULL, *out = NULL;
    const char **others = gr_xcalloc((size_t)argc, sizeof *others);
    int n_others = 0, quiet = 0;
    gr_writer_opts wo = {0};
    int c;
    while ((c = getopt_long(argc, argv, "o:qh", longopts, NULL)) != -1) {
        switch (c) {
        case OPT_SELF:
            if (self) gr_usage_error("--self given twice");
            self = optarg;
            break;
        case OPT_OTHER: others[n_others++] = optarg; break;
        case 'o': out = optarg; break;
        case OPT_GAMMA: o.gamma = gr_parse_double("--gamma", optarg, 0.0, 1.0); break;
        case OPT_PICK:
            if (!strcmp(optarg, "longest")) o.pick = GR_PICK_LONGEST;
            else if (!strcmp(optarg, "random")) o.pick = GR_PICK_RANDOM;
            else gr_usage_error("--pick: '%s' (longest or random)", optarg);
            break;
        case OPT_SEED: o.seed = (uint64_t)gr_parse_long("--seed", optarg, 0, 0x7fffffffffffffffL); break;
        case OPT_NORM:
            if (!strcmp(optarg, "source")) o.norm = GR_NORM_SOURCE;
            else if (!strcmp(optarg, "union")) o.norm = GR_NORM_UNION;
            else gr_usage_error("--normalize: '%s' (source or union)", optarg);
            break;
        case OPT_SPLIT:
            if (!strcmp(optarg, "reference")) o.split = GR_SPLIT_REFERENCE;
            else if (!strcmp(optarg, "exact")) o.split = GR_SPLIT_EXACT;
            else gr_usage_error("--split: '%s' (reference or exact)", optarg);
            break;
        case OPT_ANSWERS:
            if (!strcmp(optarg, "script")) o.answers = GR_ANSWERS_SCRIPT;
            else if (!strcmp(optarg, "eval")) o.answers = GR_ANSWERS_EVAL;
            else gr_usage_error("--answers: '%s' (script or eval)", optarg);
            break;
        case OPT_LABEL_TASK:
            o.label_task = gr_task_from_name(optarg);
            if (o.label_task < 0 || o.label_task == GR_TASK_COMPLETION)
                gr_usage_error("--label-task: '%s' (request or response)", optarg);
            break;
        case OPT_MAP: {
            gr_err err;
            if (gr_map_check(optarg, &err) < 0) gr_usage_error("%s", err.msg);
            o.map = optarg;
            break;
        }
        case OPT_REPLACE: o.replace_invalid_utf8 = 1; break;
        case OPT_ZSTD: wo.zstd = 1; break;
        case 'q': quiet = 1; break;
        case 'h': fputs(usage_text, stdout); gr_close_stdout(); return 0;
        case OPT_VERSION: printf("gr-mine %s\n", GR_VERSION); gr_close_stdout(); return 0;
        default: gr_usage_error("bad option");
        }
    }
    if (optind < argc) {
        if (self || optind + 1 < argc) gr_usage_error("unexpected argument '%s' (inputs go with --self / --other)", argv[optind]);
        self = argv[optind];
    }
    if (!self) gr_usage_error("no input: give --self FILE");
    gr_miner *m = gr_miner_new(&o);
    gr_err err;
    if (gr_miner_add_file(m, self, self, &err) < 0) gr_die(GR_EXIT_FAIL, "%s", err.msg);
    for (int i = 0; i < n_others; i++)
        if (gr_miner_add_file(m, others[i], others[i], &err) < 0) gr_die(GR_EXIT_FAIL, "%s", err.msg);
    gr_mine_stats st;
    jv pairs = gr_miner_pairs(m, &st);
    gr_writer *w = gr_writer_open(out, &wo, &err);
    if (!w) gr_die(GR_EXIT_FAIL, "%s", err.msg);
    int n = jv_array_length(jv_copy(pairs));
    for (int i = 0; i < n; i++) {
        if (gr_writer_put(w, jv_array_get(jv_copy(pairs), i), &err) < 0) {
            gr_writer_abort(w);
            gr_die(GR_EXIT_FAIL, "%s", err.msg);
        }
    }
    jv_free(pairs);
    if (gr_writer_commit(w, &err) < 0) gr_die(GR_EXIT_FAIL, "%s", err.msg);
    if (!quiet)
        fprintf(stderr,
                "gr-mine: %ld sample records, %ld examples (%d source%s); hard: request %ld, response %ld, "
                "completion %ld; not hard %ld, fewer than 2 parseable samples %ld, no gold label %ld; "
                "samples without %s %ld; %ld pairs written (%ld with an input already taken dropped)\n",
                st.records, st.examples, 1 + n_others, n_others ? "s" : "", st.hard[GR_TASK_REQUEST],
                st.hard[GR_TASK_RESPONSE], st.hard[GR_TASK_COMPLETION], st.not_hard, st.too_few, st.no_gold,
                o.answers == GR_ANSWERS_SCRIPT ? "all three answers" : "an answer", st.unparsed_samples, st.pairs,
                st.duplicates);
    gr_miner_free(m);
    free(others);
    gr_close_stdout();
    return 0;
}
