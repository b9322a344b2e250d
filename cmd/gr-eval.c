/* gr-eval: scores guard predictions per benchmark and task, as the paper does. */
#include "gr_cli.h"
#include "gr_eval.h"
#include "gr_io.h"
#include <getopt.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

static const char usage_text[] =
    "Usage: gr-eval [OPTIONS] NAME:TASK=FILE...\n"
    "       gr-eval [OPTIONS] --layout guardreasoner [MODEL=]DIR...\n"
    "Scores guard predictions (sample records with `predict`, or verdict records\n"
    "with `pred`) against their gold labels: F1 per benchmark, the per-task average\n"
    "weighted by benchmark size, and the mean over the three tasks.\n"
    "TASK is prompt (request harmfulness), response (response harmfulness) or refusal.\n"
    "\n"
    "  --layout guardreasoner   DIR holds GuardReasoner's data/test/<size>/ folders\n"
    "                           (ToxicChat/generated_predictions.jsonl, ...)\n"
    "  --model NAME             model name for the NAME:TASK=FILE arguments after it\n"
    "  --format FMT             table (default), markdown, csv, json\n"
    "  --parse-failures MODE    reference (default: evaluate.py's counting), wrong\n"
    "                           (each counted once as a wrong answer), skip\n"
    "  --wildguard-gold FILE    gold labels of WildGuardTest (default:\n"
    "                           DIR/../../benchmark/0_4_wild_guard_test.json)\n"
    "  --map PROGRAM            jq program applied to every prediction record\n"
    "  --replace-invalid        replace invalid UTF-8 by U+FFFD instead of failing\n"
    "  -o, --output FILE        write the report to FILE (atomically)\n"
    "  -h, --help               this help;   --version   the version\n"
    "\n"
    "Example:\n"
    "  gr-eval --layout guardreasoner 1B=testdata/predictions/1B\n"
    "  gr-eval --format json SimpleSafetyTests:prompt=verdicts.jsonl | jq .averages\n";

enum { OPT_LAYOUT = 256, OPT_MODEL, OPT_FORMAT, OPT_PF, OPT_WG, OPT_MAP, OPT_REPLACE, OPT_VERSION };

typedef enum { FMT_TABLE, FMT_MARKDOWN, FMT_CSV, FMT_JSON } format;

/* The GuardReasoner repository's test folders -> the 13 benchmark/task pairs of
 * the paper's Table 3, in the order of its evaluate.py and tables. */
static const struct {
    const char *dir;
    gr_task task;
    const char *gold_field; /* WildGuardTest: gold labels from the benchmark file */
} layout_gr[] = {
    {"ToxicChat", GR_TASK_REQUEST, NULL},
    {"HarmBenchPrompt", GR_TASK_REQUEST, NULL},
    {"OpenAIModeration", GR_TASK_REQUEST, NULL},
    {"AegisSafetyTest", GR_TASK_REQUEST, NULL},
    {"SimpleSafetyTests", GR_TASK_REQUEST, NULL},
    {"WildGuardTest", GR_TASK_REQUEST, "prompt_harm_label"},
    {"HarmBenchResponse", GR_TASK_RESPONSE, NULL},
    {"SafeRLHF", GR_TASK_RESPONSE, NULL},
    {"BeaverTails", GR_TASK_RESPONSE, NULL},
    {"XSTestReponseHarmful", GR_TASK_RESPONSE, NULL},
    {"WildGuardTest", GR_TASK_RESPONSE, "response_harm_label"},
    {"XSTestResponseRefusal", GR_TASK_COMPLETION, NULL},
    {"WildGuardTest", GR_TASK_COMPLETION, "response_refusal_label"},
};
#define N_LAYOUT (sizeof layout_gr / sizeof layout_gr[0])

static const gr_task task_order[GR_NTASKS] = {GR_TASK_REQUEST, GR_TASK_RESPONSE, GR_TASK_COMPLETION};
static const char *task_heading[GR_NTASKS] = {"Prompt harmfulness detection", "Refusal detection",
                                              "Response harmfulness detection"};

typedef struct results {
    gr_bench_result *r;
    size_t n, cap;
    char **models;
    size_t n_models;
} results;

static gr_bench_result *results_add(results *rs, const char *model, const char *name, gr_task task) {
    if (rs->n == rs->cap) {
        rs->cap = rs->cap ? 2 * rs->cap : 16;
        rs->r = gr_xrealloc(rs->r, rs->cap * sizeof *rs->r);
    }
    gr_bench_result *r = &rs->r[rs->n++];
    memset(r, 0, sizeof *r);
    r->model = gr_xstrdup(model);
    r->name = gr_xstrdup(name);
    r->task = task;
    size_t i;
    for (i = 0; i < rs->n_models; i++)
        if (strcmp(rs->models[i], model) == 0) break;
    if (i == rs->n_models) {
        rs->models = gr_xrealloc(rs->models, (rs->n_models + 1) * sizeof *rs->models);
        rs->models[rs->n_models++] = gr_xstrdup(model);
    }
    return r;
}

static int file_exists(const char *p) {
    struct stat st;
    return stat(p, &st) == 0 && S_ISREG(st.st_mode);
}

static void score(gr_bench_result *r, const char *path, const gr_eval_opts *o) {
    gr_err err;
    if (gr_eval_file(path, o, r, &err) < 0) gr_die(GR_EXIT_FAIL, "%s", err.msg);
}

/* --layout guardreasoner [MODEL=]DIR */
static void eval_layout(results *rs, const char *arg, gr_eval_opts *o, const char *wg_gold) {
    const char *eq = strchr(arg, '=');
    char *model, *dir;
    if (eq) {
        model = gr_xstrndup(arg, (size_t)(eq - arg));
        dir = gr_xstrdup(eq + 1);
    } else {
        dir = gr_xstrdup(arg);
        size_t n = strlen(dir);
        while (n > 1 && dir[n - 1] == '/') dir[--n] = 0;
        const char *slash = strrchr(dir, '/');
        model = gr_xstrdup(slash ? slash + 1 : dir);
    }
    struct stat st;
    if (stat(dir, &st) != 0 || !S_ISDIR(st.st_mode)) gr_die(GR_EXIT_FAIL, "%s: not a folder", dir);
    gr_buf path = {0}, gold = {0}, missing = {0};
    int found = 0;
    for (size_t i = 0; i < N_LAYOUT; i++) {
        path.len = 0;
        gr_buf_printf(&path, "%s/%s/generated_predictions.jsonl", dir, layout_gr[i].dir);
        if (!file_exists(gr_buf_cstr(&path))) {
            gr_buf_printf(&path, ".zst");
            if (!file_exists(gr_buf_cstr(&path))) {
                if (!layout_gr[i].gold_field || layout_gr[i].task == GR_TASK_REQUEST)
                    gr_buf_printf(&missing, "%s%s", missing.len ? ", " : "", layout_gr[i].dir);
                continue;
            }
        }
        gr_eval_opts lo = *o;
        if (layout_gr[i].gold_field) {
            gold.len = 0;
            if (wg_gold) gr_buf_printf(&gold, "%s", wg_gold);
            else gr_buf_printf(&gold, "%s/../../benchmark/0_4_wild_guard_test.json", dir);
            if (!file_exists(gr_buf_cstr(&gold)))
                gr_die(GR_EXIT_FAIL, "%s: WildGuardTest takes its gold labels from the benchmark file, "
                       "and %s is missing (give it with --wildguard-gold FILE)", dir, gr_buf_cstr(&gold));
            lo.gold_file = gr_buf_cstr(&gold);
            lo.gold_field = layout_gr[i].gold_field;
        }
        gr_bench_result *r = results_add(rs, model, layout_gr[i].dir, layout_gr[i].task);
        score(r, gr_buf_cstr(&path), &lo);
        found++;
    }
    if (!found) gr_die(GR_EXIT_FAIL, "%s: no benchmark folder with generated_predictions.jsonl in it", dir);
    if (missing.len) gr_msg("%s: not present, not scored: %s", dir, gr_buf_cstr(&missing));
    gr_buf_free(&path);
    gr_buf_free(&gold);
    gr_buf_free(&missing);
    free(model);
    free(dir);
}

/* NAME:TASK=FILE */
static void eval_spec(results *rs, const char *arg, const char *model, gr_eval_opts *o) {
    const char *colon = strchr(arg, ':'), *eq = colon ? strchr(colon, '=') : NULL;
    if (!colon || !eq || colon == arg || eq[1] == 0)
        gr_usage_error("'%s': expected NAME:TASK=FILE (or --layout guardreasoner DIR)", arg);
    char *name = gr_xstrndup(arg, (size_t)(colon - arg));
    char *task = gr_xstrndup(colon + 1, (size_t)(eq - colon - 1));
    int t = gr_task_from_name(task);
    if (t < 0) gr_usage_error("'%s': unknown task '%s' (prompt, response or refusal)", arg, task);
    gr_bench_result *r = results_add(rs, model, name, (gr_task)t);
    score(r, eq + 1, o);
    free(name);
    free(task);
}

/* ---- report ---------------------------------------------------------------- */
static double pct(double x) { return 100.0 * x; }

/* The benchmark of model m and name/task, or NULL. */
static gr_bench_result *find(results *rs, const char *model, const char *name, gr_task t) {
    for (size_t i = 0; i < rs->n; i++)
        if (rs->r[i].task == t && strcmp(rs->r[i].model, model) == 0 && strcmp(rs->r[i].name, name) == 0) return &rs->r[i];
    return NULL;
}

/* Weighted F1 (%) of a model over a task, NaN when it has no benchmark there. */
static double weighted_f1(results *rs, const char *model, gr_task t) {
    double s = 0, w = 0;
    for (size_t i = 0; i < rs->n; i++) {
        gr_bench_result *r = &rs->r[i];
        if (r->task != t || strcmp(r->model, model) != 0) continue;
        s += pct(gr_f1(&r->cm)) * (double)r->n;
        w += (double)r->n;
    }
    return w > 0 ? s / w : NAN;
}

/* Mean of the task averages a model has; *k gets their number. */
static double overall(results *rs, const char *model, int *k) {
    double s = 0;
    *k = 0;
    for (int t = 0; t < GR_NTASKS; t++) {
        double f = weighted_f1(rs, model, (gr_task)t);
        if (!isnan(f)) { s += f; (*k)++; }
    }
    return *k ? s / *k : NAN;
}

/* Distinct benchmark names of a task, in order of appearance. */
static size_t task_columns(results *rs, gr_task t, const char **cols) {
    size_t k = 0;
    for (size_t i = 0; i < rs->n; i++) {
        if (rs->r[i].task != t) continue;
        size_t j;
        for (j = 0; j < k; j++)
            if (strcmp(cols[j], rs->r[i].name) == 0) break;
        if (j == k) cols[k++] = rs->r[i].name;
    }
    return k;
}

static void cell(gr_buf *b, format f, int first, int width, const char *s) {
    if (f == FMT_MARKDOWN) gr_buf_printf(b, "%s %s ", first ? "|" : "|", s);
    else gr_buf_printf(b, first ? "%-*s" : "  %*s", width, s);
}

static void row_end(gr_buf *b, format f) { gr_buf_printf(b, f == FMT_MARKDOWN ? "|\n" : "\n"); }

static void report_tables(results *rs, gr_buf *b, format f) {
    const char **cols = gr_xmalloc((rs->n + 1) * sizeof *cols);
    int mw = 5;
    for (size_t m = 0; m < rs->n_models; m++)
        if ((int)strlen(rs->models[m]) > mw) mw = (int)strlen(rs->models[m]);
    char num[64];
    for (int ti = 0; ti < GR_NTASKS; ti++) {
        gr_task t = task_order[ti];
        size_t nc = task_columns(rs, t, cols);
        if (!nc) continue;
        gr_buf_printf(b, f == FMT_MARKDOWN ? "### %s (F1, %%)\n\n" : "%s (F1, %%)\n", task_heading[t]);
        cell(b, f, 1, mw, "Model");
        for (size_t c = 0; c < nc; c++) cell(b, f, 0, (int)strlen(cols[c]), cols[c]);
        cell(b, f, 0, 13, "Weighted Avg.");
        row_end(b, f);
        if (f == FMT_MARKDOWN) {
            gr_buf_printf(b, "|---");
            for (size_t c = 0; c <= nc; c++) gr_buf_printf(b, "|---:");
            gr_buf_printf(b, "|\n");
        }
        for (size_t m = 0; m < rs->n_models; m++) {
            cell(b, f, 1, mw, rs->models[m]);
            for (size_t c = 0; c < nc; c++) {
                gr_bench_result *r = find(rs, rs->models[m], cols[c], t);
                if (r) snprintf(num, sizeof num, "%.2f", pct(gr_f1(&r->cm)));
                else snprintf(num, sizeof num, "-");
                cell(b, f, 0, (int)strlen(cols[c]), num);
            }
            double w = weighted_f1(rs, rs->models[m], t);
            if (isnan(w)) snprintf(num, sizeof num, "-");
            else snprintf(num, sizeof num, "%.2f", w);
            cell(b, f, 0, 13, num);
            row_end(b, f);
        }
        if (f == FMT_MARKDOWN) gr_buf_printf(b, "\n");
        /* parse failures, and AUPRC where the records carried scores */
        for (size_t m = 0; m < rs->n_models; m++) {
            gr_buf_printf(b, "%sparse failures (%s):", f == FMT_MARKDOWN ? "" : "  ", rs->models[m]);
            for (size_t c = 0; c < nc; c++) {
                gr_bench_result *r = find(rs, rs->models[m], cols[c], t);
                if (r) gr_buf_printf(b, " %s %ld%s", cols[c], r->parse_failures, c + 1 < nc ? "," : "");
            }
            gr_buf_printf(b, f == FMT_MARKDOWN ? "  \n" : "\n");
            int any = 0;
            for (size_t c = 0; c < nc; c++) {
                gr_bench_result *r = find(rs, rs->models[m], cols[c], t);
                if (!r || !r->has_scores) continue;
                if (!any) gr_buf_printf(b, "%sAUPRC (%s, %%):", f == FMT_MARKDOWN ? "" : "  ", rs->models[m]);
                any = 1;
                gr_buf_printf(b, " %s %.2f", cols[c], pct(r->auprc));
            }
            if (any) gr_buf_printf(b, f == FMT_MARKDOWN ? "  \n" : "\n");
        }
        gr_buf_printf(b, "\n");
    }
    /* the three-task summary of the paper's Table 10 */
    gr_buf_printf(b, f == FMT_MARKDOWN ? "### Average over the tasks (weighted F1, %%)\n\n"
                                       : "Average over the tasks (weighted F1, %%)\n");
    cell(b, f, 1, mw, "Model");
    static const char *hdr[GR_NTASKS] = {"Prompt", "Response", "Refusal"};
    for (int ti = 0; ti < GR_NTASKS; ti++) cell(b, f, 0, 8, hdr[ti]);
    cell(b, f, 0, 8, "Average");
    row_end(b, f);
    if (f == FMT_MARKDOWN) gr_buf_printf(b, "|---|---:|---:|---:|---:|\n");
    for (size_t m = 0; m < rs->n_models; m++) {
        cell(b, f, 1, mw, rs->models[m]);
        for (int ti = 0; ti < GR_NTASKS; ti++) {
            double w = weighted_f1(rs, rs->models[m], task_order[ti]);
            if (isnan(w)) snprintf(num, sizeof num, "-");
            else snprintf(num, sizeof num, "%.2f", w);
            cell(b, f, 0, 8, num);
        }
        int k;
        double o = overall(rs, rs->models[m], &k);
        if (isnan(o)) snprintf(num, sizeof num, "-");
        else if (k < GR_NTASKS) snprintf(num, sizeof num, "%.2f*", o);
        else snprintf(num, sizeof num, "%.2f", o);
        cell(b, f, 0, 8, num);
        row_end(b, f);
    }
    for (size_t m = 0; m < rs->n_models; m++) {
        int k;
        overall(rs, rs->models[m], &k);
        if (k < GR_NTASKS) {
            gr_buf_printf(b, "* the mean of the tasks present only\n");
            break;
        }
    }
    free(cols);
}

static void csv_field(gr_buf *b, const char *s) {
    if (strpbrk(s, ",\"\n\r")) {
        gr_buf_putc(b, '"');
        for (; *s; s++) {
            if (*s == '"') gr_buf_putc(b, '"');
            gr_buf_putc(b, *s);
        }
        gr_buf_putc(b, '"');
    } else {
        gr_buf_printf(b, "%s", s);
    }
}

static void report_csv(results *rs, gr_buf *b) {
    gr_buf_printf(b, "kind,model,task,name,n,f1,precision,recall,accuracy,tp,fp,tn,fn,parse_failures,no_label,auprc\n");
    for (size_t i = 0; i < rs->n; i++) {
        gr_bench_result *r = &rs->r[i];
        gr_buf_printf(b, "benchmark,");
        csv_field(b, r->model);
        gr_buf_printf(b, ",%s,", gr_task_eval_name(r->task));
        csv_field(b, r->name);
        gr_buf_printf(b, ",%ld,%.4f,%.4f,%.4f,%.4f,%ld,%ld,%ld,%ld,%ld,%ld,", r->n, pct(gr_f1(&r->cm)),
                      pct(gr_precision(&r->cm)), pct(gr_recall(&r->cm)), pct(gr_accuracy(&r->cm)), r->cm.tp, r->cm.fp,
                      r->cm.tn, r->cm.fn, r->parse_failures, r->no_label);
        if (r->has_scores && !isnan(r->auprc)) gr_buf_printf(b, "%.4f", pct(r->auprc));
        gr_buf_printf(b, "\n");
    }
    for (size_t m = 0; m < rs->n_models; m++)
        for (int ti = 0; ti < GR_NTASKS; ti++) {
            double w = weighted_f1(rs, rs->models[m], task_order[ti]);
            if (isnan(w)) continue;
            gr_buf_printf(b, "task_average,");
            csv_field(b, rs->models[m]);
            gr_buf_printf(b, ",%s,Weighted Avg.,,%.4f,,,,,,,,,,\n", gr_task_eval_name(task_order[ti]), w);
        }
    for (size_t m = 0; m < rs->n_models; m++) {
        int k;
        double o = overall(rs, rs->models[m], &k);
        gr_buf_printf(b, "overall,");
        csv_field(b, rs->models[m]);
        gr_buf_printf(b, ",all,Average,,%.4f,,,,,,,,,,\n", o);
    }
}

static jv num_or_null(double x) { return isnan(x) ? jv_null() : jv_number(x); }

static void report_json(results *rs, gr_buf *b) {
    jv bench = jv_array(), avgs = jv_array(), all = jv_array();
    for (size_t i = 0; i < rs->n; i++) {
        gr_bench_result *r = &rs->r[i];
        jv o = jv_object();
        o = jv_object_set(o, jv_string("name"), jv_string(r->name));
        o = jv_object_set(o, jv_string("task"), jv_string(gr_task_eval_name(r->task)));
        o = jv_object_set(o, jv_string("model"), jv_string(r->model));
        o = jv_object_set(o, jv_string("file"), jv_string(r->path));
        o = jv_object_set(o, jv_string("n"), jv_number((double)r->n));
        o = jv_object_set(o, jv_string("f1"), jv_number(pct(gr_f1(&r->cm))));
        o = jv_object_set(o, jv_string("precision"), jv_number(pct(gr_precision(&r->cm))));
        o = jv_object_set(o, jv_string("recall"), jv_number(pct(gr_recall(&r->cm))));
        o = jv_object_set(o, jv_string("accuracy"), jv_number(pct(gr_accuracy(&r->cm))));
        o = jv_object_set(o, jv_string("tp"), jv_number((double)r->cm.tp));
        o = jv_object_set(o, jv_string("fp"), jv_number((double)r->cm.fp));
        o = jv_object_set(o, jv_string("tn"), jv_number((double)r->cm.tn));
        o = jv_object_set(o, jv_string("fn"), jv_number((double)r->cm.fn));
        o = jv_object_set(o, jv_string("parse_failures"), jv_number((double)r->parse_failures));
        o = jv_object_set(o, jv_string("parse_failures_dropped"), jv_number((double)r->dropped));
        o = jv_object_set(o, jv_string("no_label"), jv_number((double)r->no_label));
        o = jv_object_set(o, jv_string("auprc"), r->has_scores ? num_or_null(pct(r->auprc)) : jv_null());
        bench = jv_array_append(bench, o);
    }
    for (size_t m = 0; m < rs->n_models; m++) {
        for (int ti = 0; ti < GR_NTASKS; ti++) {
            double w = weighted_f1(rs, rs->models[m], task_order[ti]);
            if (isnan(w)) continue;
            jv o = jv_object();
            o = jv_object_set(o, jv_string("task"), jv_string(gr_task_eval_name(task_order[ti])));
            o = jv_object_set(o, jv_string("model"), jv_string(rs->models[m]));
            o = jv_object_set(o, jv_string("weighted_f1"), jv_number(w));
            avgs = jv_array_append(avgs, o);
        }
        int k;
        double ov = overall(rs, rs->models[m], &k);
        jv o = jv_object();
        o = jv_object_set(o, jv_string("model"), jv_string(rs->models[m]));
        o = jv_object_set(o, jv_string("average_f1"), num_or_null(ov));
        o = jv_object_set(o, jv_string("tasks"), jv_number(k));
        all = jv_array_append(all, o);
    }
    jv doc = jv_object();
    doc = jv_object_set(doc, jv_string("benchmarks"), bench);
    doc = jv_object_set(doc, jv_string("averages"), avgs);
    doc = jv_object_set(doc, jv_string("overall"), all);
    jv s = jv_dump_string(doc, JV_PRINT_PRETTY | JV_PRINT_SPACE1);
    gr_buf_printf(b, "%s\n", jv_string_value(s));
    jv_free(s);
}

int main(int argc, char **argv) {
    gr_prog = "gr-eval";
    static const struct option longopts[] = {
        {"layout", required_argument, 0, OPT_LAYOUT},
        {"model", required_argument, 0, OPT_MODEL},
        {"format", required_argument, 0, OPT_FORMAT},
        {"parse-failures", required_argument, 0, OPT_PF},
        {"wildguard-gold", required_argument, 0, OPT_WG},
        {"map", required_argument, 0, OPT_MAP},
        {"replace-invalid", no_argument, 0, OPT_REPLACE},
        {"output", required_argument, 0, 'o'},
        {"help", no_argument, 0, 'h'},
        {"version", no_argument, 0, OPT_VERSION},
        {0, 0, 0, 0},
    };
    gr_eval_opts eo = {0};
    format fmt = FMT_TABLE;
    int layout = 0;
    const char *out = NULL, *wg_gold = NULL;
    /* `--model NAME` applies to the specs after it: remember it per argument */
    const char **spec_model = gr_xcalloc((size_t)argc, sizeof *spec_model);
    const char *model = "model";
    int c;
    /* "-" first: non-options are returned in order (as argument 1), so --model
     * can apply to the specs that follow it */
    char **specs = gr_xcalloc((size_t)argc, sizeof *specs);
    int n_specs = 0;
    while ((c = getopt_long(argc, argv, "-o:h", longopts, NULL)) != -1) {
        switch (c) {
        case 1:
            specs[n_specs] = optarg;
            spec_model[n_specs++] = model;
            break;
        case OPT_LAYOUT:
            if (strcmp(optarg, "guardreasoner") != 0) gr_usage_error("--layout: unknown layout '%s' (guardreasoner)", optarg);
            layout = 1;
            break;
        case OPT_MODEL: model = optarg; break;
        case OPT_FORMAT:
            if (!strcmp(optarg, "table")) fmt = FMT_TABLE;
            else if (!strcmp(optarg, "markdown")) fmt = FMT_MARKDOWN;
            else if (!strcmp(optarg, "csv")) fmt = FMT_CSV;
            else if (!strcmp(optarg, "json")) fmt = FMT_JSON;
            else gr_usage_error("--format: unknown format '%s' (table, markdown, csv, json)", optarg);
            break;
        case OPT_PF:
            if (!strcmp(optarg, "reference")) eo.parse_failures = GR_PF_REFERENCE;
            else if (!strcmp(optarg, "wrong")) eo.parse_failures = GR_PF_WRONG;
            else if (!strcmp(optarg, "skip")) eo.parse_failures = GR_PF_SKIP;
            else gr_usage_error("--parse-failures: unknown mode '%s' (reference, wrong, skip)", optarg);
            break;
        case OPT_WG: wg_gold = optarg; break;
        case OPT_MAP: {
            gr_err err;
            if (gr_map_check(optarg, &err) < 0) gr_usage_error("%s", err.msg);
            eo.map = optarg;
            break;
        }
        case OPT_REPLACE: eo.replace_invalid_utf8 = 1; break;
        case 'o': out = optarg; break;
        case 'h': fputs(usage_text, stdout); gr_close_stdout(); return 0;
        case OPT_VERSION: printf("gr-eval %s\n", GR_VERSION); gr_close_stdout(); return 0;
        default: gr_usage_error("bad option");
        }
    }
    if (n_specs == 0)
        gr_usage_error(layout ? "--layout guardreasoner needs at least one DIR" : "nothing to score: give NAME:TASK=FILE");
    results rs = {0};
    for (int i = 0; i < n_specs; i++) {
        if (layout) eval_layout(&rs, specs[i], &eo, wg_gold);
        else eval_spec(&rs, specs[i], spec_model[i], &eo);
    }
    gr_buf report = {0};
    switch (fmt) {
    case FMT_TABLE:
    case FMT_MARKDOWN: report_tables(&rs, &report, fmt); break;
    case FMT_CSV: report_csv(&rs, &report); break;
    case FMT_JSON: report_json(&rs, &report); break;
    }
    gr_err err;
    if (out) {
        if (gr_write_file_atomic(out, report.data, report.len, &err) < 0) gr_die(GR_EXIT_FAIL, "%s", err.msg);
    } else {
        fwrite(report.data, 1, report.len, stdout);
    }
    gr_buf_free(&report);
    for (size_t i = 0; i < rs.n; i++) gr_bench_result_free(&rs.r[i]);
    for (size_t m = 0; m < rs.n_models; m++) free(rs.models[m]);
    free(rs.models);
    free(rs.r);
    free(specs);
    free(spec_model);
    gr_close_stdout();
    return 0;
}
