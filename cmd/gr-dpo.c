/* gr-dpo: hard-sample DPO (HS-DPO) of an R-SFT model on weighted preference
 * pairs, with checkpoints that resume bit for bit. */
#include "backend.h"
#include "checkpoint.h"
#include "dp.h"
#include "dpo.h"
#include "gr_cli.h"
#include "gr_io.h"
#include "train_run.h"
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <malloc.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static const char usage_text[] =
    "Usage: gr-dpo --base MODEL --pairs PAIRS --out DIR [OPTIONS]\n"
    "Trains MODEL (the R-SFT checkpoint: a Hugging Face folder or a .gguf file) on\n"
    "preference pairs with the weighted DPO loss of GuardReasoner's HS-DPO:\n"
    "  w·(−log σ(β·h)) + ftx·(−log πθ(c)/|c|),  h = (log πθ(c) − log πθ(r)) − (log πref(c) − log πref(r))\n"
    "Pairs are raw records (instruction, input, chosen, rejected, sample_weight:\n"
    "what gr-mine writes), tokenized here as gr-tokenize does, or pre-tokenized\n"
    "records (prompt_ids, chosen_ids, rejected_ids, weight). The reference model's\n"
    "log-probabilities are computed once, before training, and kept in\n"
    "DIR/dpo_reference.bin. Writes DIR/checkpoint-STEP folders and the final model.\n"
    "\n"
    "  --base MODEL             the model to start from (default $GR_MODEL)\n"
    "  --pairs FILE             pair records (JSONL/JSON/zstd, - = stdin)\n"
    "  --out DIR                output folder (created)\n"
    "  --beta X                 DPO β (0.01)\n"
    "  --ftx X                  weight of the chosen responses' SFT loss (2.0)\n"
    "  --no-weights             plain DPO: every pair's weight is 1\n"
    "  --lr X                   peak learning rate (5e-6)\n"
    "  --epochs N               epochs (2)\n"
    "  --micro-batch N          pairs per micro-batch (1)\n"
    "  --grad-accum N           micro-batches per optimizer step (64)\n"
    "  --max-grad-norm X        global gradient-norm clipping, 0 = off (1.0)\n"
    "  --warmup-steps N         linear warmup steps (0)\n"
    "  --weight-decay X         AdamW weight decay (0)\n"
    "  --seed N                 data-order seed (42)\n"
    "  --max-steps N            stop after N steps (the schedule keeps its length)\n"
    "  -t, --tokenizer PATH     tokenizer for raw pairs (default: the base model's)\n"
    "  --template NAME          raw, llama3, chatml (default: llama3 when the tokenizer\n"
    "                           has <|start_header_id|>, chatml when it has <|im_start|>)\n"
    "  --system TEXT            a system turn (llama3, chatml)\n"
    "  --cutoff N               most ids of a prompt and its longer response (2048):\n"
    "                           raw pairs are cut as LLaMA-Factory cuts them, longer\n"
    "                           pre-tokenized pairs are an error\n"
    "  --save-every N           checkpoint every N steps (0: only at the end)\n"
    "  --save-dtype TYPE        bf16 (default) or f32 weights in model.safetensors\n"
    "  --no-save                write no checkpoint and no model (benchmarks)\n"
    "  --resume                 continue from the newest checkpoint in --out\n"
    "  --eval-every N           the loss and rewards over all training pairs every N\n"
    "                           steps and at the end (0: never)\n"
    "  --log FILE               one JSON line per step (appended; cut back on --resume)\n"
    "  --replace-invalid        replace invalid UTF-8 in the pairs by U+FFFD\n"
    "  --recompute              keep only each layer's input and recompute the rest\n"
    "                           in the backward pass (less memory, more arithmetic)\n"
    "  --threads N              CPU threads (0 = all cores)\n"
    "  --device NAME            cpu (default) or cuda[:N] (GPU N; builds with CUDA, see\n"
    "                           --version); under MPI, cuda = the process's local GPU\n"
    "  --precision P            fp32 (default) or bf16: matmul operands rounded to bf16,\n"
    "                           fp32 accumulation, master weights and optimizer (CPU)\n"
    "  --progress, --quiet      force / silence the progress line on stderr\n"
    "  -h, --help               this help;   --version   the version\n"
    "\n"
    "Example:\n"
    "  gr-mine --self samples.jsonl -o pairs.jsonl\n"
    "  gr-dpo --base rsft --pairs pairs.jsonl --out hsdpo --log hsdpo/log.jsonl --save-every 20\n";

enum {
    O_BASE = 256, O_PAIRS, O_OUT, O_BETA, O_FTX, O_NOW, O_LR, O_EPOCHS, O_MB, O_GA, O_MGN, O_WARM,
    O_WD, O_SEED, O_MAXSTEPS, O_TEMPLATE, O_SYSTEM, O_CUTOFF, O_SAVE, O_SAVEDT, O_NOSAVE,
    O_RESUME, O_EVALEVERY, O_LOG, O_THREADS, O_RECOMPUTE, O_DEVICE, O_PRECISION, O_PROGRESS, O_QUIET, O_VERSION, O_REPLACE
};

static double now_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + ts.tv_nsec * 1e-9;
}

static void log_line(gr_writer *w, const char *s) {
    gr_err err;
    if (w && gr_writer_put_line(w, s, strlen(s), &err)) gr_die(GR_EXIT_FAIL, "%s", err.msg);
    if (w && gr_writer_flush(w, &err)) gr_die(GR_EXIT_FAIL, "%s", err.msg);
}

/* 0 when path can be appended to (an existing file) or created (then removed
 * again); -1 with "PATH: why" otherwise. */
static int check_writable(const char *path, gr_err *err) {
    int fd = open(path, O_WRONLY | O_APPEND);
    int created = 0;
    if (fd < 0 && errno == ENOENT) {
        fd = open(path, O_WRONLY | O_CREAT | O_EXCL, 0644);
        created = fd >= 0;
    }
    if (fd < 0) return gr_errf(err, "%s: %s", path, strerror(errno));
    close(fd);
    if (created) unlink(path);
    return 0;
}

static void ref_progress(int i, int n, void *arg) {
    if (*(int *)arg && (i == n || i % 16 == 0))
        fprintf(stderr, "\rgr-dpo: reference log-probs %d/%d   %s", i, n, i == n ? "\n" : "");
}

static void metrics_json(char *line, size_t n, const char *prefix, const gr_dpo_info *in) {
    snprintf(line, n,
             "\"%sloss\":%.9g,\"%sdpo_loss\":%.9g,\"%ssft_loss\":%.9g,"
             "\"%srewards/chosen\":%.9g,\"%srewards/rejected\":%.9g,\"%srewards/accuracies\":%.9g,"
             "\"%srewards/margins\":%.9g,\"%slogps/chosen\":%.9g,\"%slogps/rejected\":%.9g",
             prefix, in->loss, prefix, in->dpo_loss, prefix, in->sft_loss, prefix, in->reward_c,
             prefix, in->reward_r, prefix, in->accuracy, prefix, in->margin, prefix, in->logp_c,
             prefix, in->logp_r);
}

static void eval_log(gr_dpo *s, gr_writer *lw, int quiet) {
    gr_err err;
    gr_dpo_info ev;
    if (gr_dpo_eval(s, &ev, &err)) gr_die(GR_EXIT_FAIL, "%s", err.msg);
    char m[1024], line[1200];
    metrics_json(m, sizeof m, "eval_", &ev);
    snprintf(line, sizeof line, "{\"step\":%lld,%s,\"eval_pairs\":%lld}", (long long)s->step, m,
             (long long)ev.pairs);
    log_line(lw, line);
    if (!quiet)
        gr_msg("eval at step %lld: loss %.6f, margin %.6g, accuracy %.4f", (long long)s->step,
               ev.loss, ev.margin, ev.accuracy);
}

int main(int argc, char **argv) {
    gr_prog = "gr-dpo";
    int rank = 0;
    gr_dp_transport *mpi = NULL; /* data parallelism (dp.h): the MPI build only */
#ifdef GR_MPI
    {
        gr_err e;
        if (!(mpi = gr_dp_mpi_open(&argc, &argv, &e))) gr_die(GR_EXIT_FAIL, "%s", e.msg);
        rank = mpi->rank;
    }
#endif
    mallopt(M_MMAP_THRESHOLD, 1 << 30); /* as gr-sft: large scratch stays on the heap */
    mallopt(M_TRIM_THRESHOLD, 1 << 30);
    gr_dpo_opts o;
    gr_dpo_opts_default(&o);
    const char *base = getenv("GR_MODEL"), *pairs = NULL, *out = NULL, *log_path = NULL,
               *tok_path = NULL, *tmpl_name = NULL, *system = NULL;
    long cutoff = 2048, save_every = 0, eval_every = 0, threads = 0;
    const char *device = "cpu";
    int resume = 0, f32 = 0, bf16 = 0, progress = isatty(2), quiet = 0, no_save = 0;
    static const struct option longopts[] = {
        {"base", 1, 0, O_BASE}, {"pairs", 1, 0, O_PAIRS}, {"out", 1, 0, O_OUT},
        {"beta", 1, 0, O_BETA}, {"ftx", 1, 0, O_FTX}, {"no-weights", 0, 0, O_NOW},
        {"lr", 1, 0, O_LR}, {"epochs", 1, 0, O_EPOCHS}, {"micro-batch", 1, 0, O_MB},
        {"grad-accum", 1, 0, O_GA}, {"max-grad-norm", 1, 0, O_MGN},
        {"warmup-steps", 1, 0, O_WARM}, {"weight-decay", 1, 0, O_WD}, {"seed", 1, 0, O_SEED},
        {"max-steps", 1, 0, O_MAXSTEPS}, {"tokenizer", 1, 0, 't'},
        {"template", 1, 0, O_TEMPLATE}, {"system", 1, 0, O_SYSTEM}, {"cutoff", 1, 0, O_CUTOFF},
        {"save-every", 1, 0, O_SAVE}, {"save-dtype", 1, 0, O_SAVEDT}, {"no-save", 0, 0, O_NOSAVE},
        {"resume", 0, 0, O_RESUME}, {"eval-every", 1, 0, O_EVALEVERY}, {"log", 1, 0, O_LOG},
        {"replace-invalid", 0, 0, O_REPLACE}, {"threads", 1, 0, O_THREADS}, {"recompute", 0, 0, O_RECOMPUTE}, {"device", 1, 0, O_DEVICE}, {"precision", 1, 0, O_PRECISION},
        {"progress", 0, 0, O_PROGRESS}, {"quiet", 0, 0, O_QUIET}, {"help", 0, 0, 'h'},
        {"version", 0, 0, O_VERSION}, {0, 0, 0, 0}};
    int c;
    gr_err err = {{0}};
    gr_template_kind tmpl = GR_TEMPLATE_RAW;
    while ((c = getopt_long(argc, argv, "ht:", longopts, NULL)) != -1) {
        switch (c) {
        case O_BASE: base = optarg; break;
        case O_PAIRS: pairs = optarg; break;
        case O_OUT: out = optarg; break;
        case O_BETA: o.beta = gr_parse_double("--beta", optarg, 1e-12, 1e6); break;
        case O_FTX: o.ftx = gr_parse_double("--ftx", optarg, 0, 1e6); break;
        case O_NOW: o.use_weights = 0; break;
        case O_LR: o.lr = gr_parse_double("--lr", optarg, 0, 1e3); break;
        case O_EPOCHS: o.epochs = (int)gr_parse_long("--epochs", optarg, 1, 1000000); break;
        case O_MB: o.micro_batch = (int)gr_parse_long("--micro-batch", optarg, 1, 65536); break;
        case O_GA: o.grad_accum = (int)gr_parse_long("--grad-accum", optarg, 1, 1 << 20); break;
        case O_MGN: o.max_grad_norm = gr_parse_double("--max-grad-norm", optarg, 0, 1e30); break;
        case O_WARM: o.warmup_steps = gr_parse_long("--warmup-steps", optarg, 0, 1L << 40); break;
        case O_WD: o.weight_decay = gr_parse_double("--weight-decay", optarg, 0, 1e3); break;
        case O_SEED: o.seed = (uint64_t)gr_parse_long("--seed", optarg, 0, 0x7fffffffffffffffL); break;
        case O_MAXSTEPS: o.max_steps = gr_parse_long("--max-steps", optarg, 1, 1L << 40); break;
        case 't': tok_path = optarg; break;
        case O_TEMPLATE:
            if (gr_template_parse(optarg, &tmpl, &err) < 0) gr_usage_error("--template: %s", err.msg);
            tmpl_name = optarg;
            break;
        case O_SYSTEM: system = optarg; break;
        case O_CUTOFF: cutoff = gr_parse_long("--cutoff", optarg, 2, 1 << 24); break;
        case O_SAVE: save_every = gr_parse_long("--save-every", optarg, 0, 1L << 40); break;
        case O_SAVEDT:
            if (!strcmp(optarg, "bf16")) f32 = 0;
            else if (!strcmp(optarg, "f32")) f32 = 1;
            else gr_usage_error("--save-dtype: 'bf16' or 'f32', not '%s'", optarg);
            break;
        case O_NOSAVE: no_save = 1; break;
        case O_RESUME: resume = 1; break;
        case O_EVALEVERY: eval_every = gr_parse_long("--eval-every", optarg, 0, 1L << 40); break;
        case O_LOG: log_path = optarg; break;
        case O_REPLACE: gr_reader_replace_invalid_all(1); break;
        case O_THREADS: threads = gr_parse_long("--threads", optarg, 0, 4096); break;
        case O_RECOMPUTE: o.recompute = 1; break;
        case O_PRECISION:
            if (!strcmp(optarg, "bf16")) bf16 = 1;
            else if (!strcmp(optarg, "fp32")) bf16 = 0;
            else gr_usage_error("--precision: 'fp32' or 'bf16', not '%s'", optarg);
            break;
        case O_DEVICE: {
            gr_err de;
            if (gr_device_check(optarg, &de)) gr_usage_error("%s", de.msg);
            device = optarg;
            break;
        }
        case O_PROGRESS: progress = 1; break;
        case O_QUIET: quiet = 1; break;
        case 'h': fputs(usage_text, stdout); gr_close_stdout(); return 0;
        case O_VERSION: printf("gr-dpo %s (backends: %s)\n%s\n", GR_VERSION, gr_backends_built(), gr_cpu_describe()); gr_close_stdout(); return 0;
        default: gr_usage_error("unknown option");
        }
    }
    if (optind < argc) gr_usage_error("unexpected argument '%s'", argv[optind]);
    if (!base || !*base) gr_usage_error("--base MODEL is required (or set GR_MODEL)");
    if (!pairs) gr_usage_error("--pairs FILE is required");
    if (!out) gr_usage_error("--out DIR is required");
    if (rank > 0) { /* rank 0 alone reports, logs and writes */
        quiet = 1;
        log_path = NULL;
        no_save = 1;
        save_every = 0;
    }
    if (quiet) progress = 0;
    if (no_save && rank == 0 && (save_every || resume)) gr_usage_error("--no-save goes with neither --save-every nor --resume");

    if (rank == 0) { /* one run per output folder: a second exits GR_EXIT_LOCKED */
        if (gr_mkdir_p(out, &err)) gr_die(GR_EXIT_FAIL, "%s", err.msg);
        gr_lock_output_or_die(out, 1);
    }
    uint64_t have = 0;
    char ckpt[4096];
    if (gr_checkpoint_latest(out, &have, ckpt, sizeof ckpt, &err)) gr_die(GR_EXIT_FAIL, "%s", err.msg);
    if (have && !resume)
        gr_die(GR_EXIT_FAIL, "%s already holds checkpoints (newest %s): use --resume or another --out",
               out, ckpt);
    if (gr_mkdir_p(out, &err)) gr_die(GR_EXIT_FAIL, "%s", err.msg);
    /* the reference pass can take long: a --log that cannot be written fails now */
    if (log_path && check_writable(log_path, &err)) gr_die(GR_EXIT_FAIL, "--log %s", err.msg);

    gr_model *gm = gr_model_load(base, &err);
    if (!gm) gr_die(GR_EXIT_FAIL, "%s", err.msg);
    /* The tokenizer is needed only for raw pair records: load it when one can
     * be found, and let the loader report raw records without it. */
    gr_tokenizer *tok = NULL;
    if (tok_path || tmpl_name || system) {
        tok = gr_tokenizer_load(tok_path ? tok_path : base, &err);
        if (!tok) gr_die(GR_EXIT_FAIL, "%s", err.msg);
    } else {
        tok = gr_tokenizer_load(base, &err); /* may be absent: pre-tokenized pairs */
    }
    if (tok && !tmpl_name) {
        if (gr_tokenizer_token_id(tok, "<|start_header_id|>") >= 0) tmpl = GR_TEMPLATE_LLAMA3;
        else if (gr_tokenizer_token_id(tok, "<|im_start|>") >= 0) tmpl = GR_TEMPLATE_CHATML;
        else tmpl = GR_TEMPLATE_RAW;
    }
    gr_pdata pd;
    gr_pdata_opts po = {gm->cfg.vocab_size, (int)cutoff, tok, tmpl, system, o.use_weights};
    if (gr_pdata_load(pairs, &po, &pd, &err)) gr_die(GR_EXIT_FAIL, "%s", err.msg);
    gr_backend *be = gr_train_backend_open(device, (int)threads, mpi ? mpi->world : 1, &err);
    if (!be) gr_die(GR_EXIT_FAIL, "%s", err.msg);
    if (gr_train_set_precision(be, bf16, &err)) gr_die(GR_EXIT_FAIL, "%s", err.msg);
    gr_train_model *tm = gr_train_model_new(gm, be, &err);
    if (!tm) gr_die(GR_EXIT_FAIL, "%s", err.msg);
    gr_model_free(gm); /* the training copy is all we need */
    gm = NULL;
    gr_dp dp;
    if (mpi && mpi->world > 1) {
        gr_dp_transport *grad = mpi; /* on GPUs the gradients go through NCCL */
        if (!be->host_memory && !(grad = gr_dp_nccl_open(mpi, be, &err))) gr_die(GR_EXIT_FAIL, "%s", err.msg);
        gr_dp_init(&dp, grad, mpi, 0);
        o.dp = &dp;
    }
    gr_dpo s;
    if (gr_dpo_init(&s, tm, &pd, &o, &err)) gr_die(GR_EXIT_FAIL, "%s", err.msg);
    int64_t last = gr_dpo_last_step(&s);
    if (!quiet)
        gr_msg("%d pairs (%d tokenized here with template %s, %d cut to %ld), %lld steps "
               "(%lld/epoch), %lld params, %lld bytes of activations/token (twice: chosen and rejected)", pd.n, pd.n_raw, gr_template_name(tmpl),
               pd.n_truncated, cutoff, (long long)s.plan.T, (long long)s.plan.steps_per_epoch,
               (long long)tm->n_params, (long long)gr_tact_bytes_per_token(&tm->cfg, o.recompute));

    /* The reference: the starting weights' log-probs, stored beside the
     * checkpoints so that --resume reuses them. */
    char ref_path[4200];
    snprintf(ref_path, sizeof ref_path, "%s/dpo_reference.bin", out);
    uint64_t model_sum = gr_dpo_model_checksum(tm);
    int got = resume ? gr_dpo_ref_read(&s, ref_path, model_sum, &err) : 0;
    if (got < 0) gr_die(GR_EXIT_FAIL, "%s", err.msg);
    if (!got) {
        if (have) gr_die(GR_EXIT_FAIL, "%s: missing or made for other pairs or another base model; "
                                       "resume with the run's --pairs and --base", ref_path);
        double t0 = now_s();
        if (gr_dpo_reference(&s, ref_progress, &progress, &err)) gr_die(GR_EXIT_FAIL, "%s", err.msg);
        if (!no_save && gr_dpo_ref_write(&s, ref_path, model_sum, &err)) gr_die(GR_EXIT_FAIL, "%s", err.msg);
        if (!quiet)
            gr_msg("reference log-probs of %d pairs in %.1fs (%lld bytes kept instead of a second "
                   "model of %lld bytes)", pd.n, now_s() - t0, (long long)(16 * (int64_t)pd.n),
                   (long long)(4 * tm->n_params));
    } else if (!quiet) {
        gr_msg("reference log-probs read from %s", ref_path);
    }

    /* The loss settings are not in trainer_state.bin: kept beside it, checked on --resume. */
    char set_path[4200], settings[256];
    snprintf(set_path, sizeof set_path, "%s/dpo_settings.json", out);
    snprintf(settings, sizeof settings, "{\"beta\":%.17g,\"ftx\":%.17g,\"weights\":%s}\n", o.beta,
             o.ftx, o.use_weights ? "true" : "false");
    if (resume && have) {
        char old[256] = "";
        FILE *f = fopen(set_path, "rb");
        size_t k = f ? fread(old, 1, sizeof old - 1, f) : 0;
        if (f) fclose(f);
        old[k] = 0;
        if (strcmp(old, settings) != 0)
            gr_die(GR_EXIT_FAIL, "%s: the run was made with %s; resume with the same --beta, --ftx "
                                 "and weights", set_path, old[0] ? old : "(missing)");
    } else if (!no_save && gr_write_file_atomic(set_path, settings, strlen(settings), &err)) {
        gr_die(GR_EXIT_FAIL, "%s", err.msg);
    }

    double elapsed0 = 0;
    if (resume && have) {
        gr_train_state want = {.n_params = tm->n_params, .seed = o.seed, .n_examples = (uint64_t)pd.n,
                               .micro_batch = (uint64_t)o.micro_batch, .grad_accum = (uint64_t)o.grad_accum,
                               .epochs = (uint64_t)o.epochs, .T = (uint64_t)s.plan.T, .lr = o.lr, .precision = (uint64_t)bf16};
        if (gr_train_state_restore(ckpt, &want, "pair count", tm, &s.opt, &s.step, &err))
            gr_die(GR_EXIT_FAIL, "%s", err.msg);
        if (log_path && gr_train_log_cut(log_path, have, &elapsed0, &err))
            gr_die(GR_EXIT_FAIL, "%s", err.msg);
        if (!quiet) gr_msg("resuming from %s (step %llu of %lld)", ckpt, (unsigned long long)have, (long long)last);
    } else if (resume && !quiet) {
        gr_msg("no checkpoint in %s: starting from step 0", out);
    }
    gr_writer *lw = NULL;
    if (log_path && !(lw = gr_train_log_open(log_path, !(resume && have), &err))) gr_die(GR_EXIT_FAIL, "%s", err.msg);
    const char *kill_env = getenv("GR_DPO_TEST_KILL_AT_STEP"); /* for the resume test */
    long kill_at = kill_env ? strtol(kill_env, NULL, 10) : -1;

    double t0 = now_s();
    int64_t pairs_run = 0;
    char line[2048], m[1024];
    while (s.step < last) {
        double ts = now_s();
        gr_dpo_info in;
        if (gr_dpo_step(&s, &in, &err)) gr_die(GR_EXIT_FAIL, "%s", err.msg);
        double dt = now_s() - ts, el = elapsed0 + now_s() - t0;
        pairs_run += in.pairs;
        metrics_json(m, sizeof m, "", &in);
        snprintf(line, sizeof line,
                 "{\"step\":%lld,\"epoch\":%.6g,%s,\"lr\":%.9g,\"grad_norm\":%.9g,\"pairs\":%lld,"
                 "\"tokens\":%lld,\"pairs_per_s\":%.6g,\"tokens_per_s\":%.6g,\"elapsed_s\":%.6g}",
                 (long long)in.step, in.epoch, m, in.lr, in.grad_norm, (long long)in.pairs,
                 (long long)in.tokens, dt > 0 ? (double)in.pairs / dt : 0.0,
                 dt > 0 ? (double)in.tokens / dt : 0.0, el);
        log_line(lw, line);
        if (progress) {
            double rate = (double)pairs_run / (now_s() - t0);
            double eta = (now_s() - t0) / (double)(in.step - (int64_t)have) * (double)(last - in.step);
            fprintf(stderr, "\rgr-dpo: step %lld/%lld  loss %.4f  margin %.3g  acc %.2f  %.1f pairs/s  ETA %.0fs   ",
                    (long long)in.step, (long long)last, in.loss, in.margin, in.accuracy, rate, eta);
            if (in.step == last) fputc('\n', stderr);
        }
        if (kill_at >= 0 && in.step == kill_at) raise(SIGKILL);
        if (save_every > 0 && in.step % save_every == 0 && in.step < last) {
            gr_train_state st = {(uint64_t)s.step, o.seed, (uint64_t)pd.n, (uint64_t)o.micro_batch,
                                 (uint64_t)o.grad_accum, (uint64_t)o.epochs, (uint64_t)s.plan.T,
                                 (uint64_t)s.opt.t, o.lr, tm->n_params, tm->params, s.opt.m, s.opt.v, (uint64_t)bf16};
            if (gr_checkpoint_save(out, tm, base, f32, &st, &err)) gr_die(GR_EXIT_FAIL, "%s", err.msg);
        }
        if (eval_every > 0 && in.step % eval_every == 0 && in.step < last) eval_log(&s, lw, quiet);
    }
    gr_train_state st = {(uint64_t)s.step, o.seed, (uint64_t)pd.n, (uint64_t)o.micro_batch,
                         (uint64_t)o.grad_accum, (uint64_t)o.epochs, (uint64_t)s.plan.T,
                         (uint64_t)s.opt.t, o.lr, tm->n_params, tm->params, s.opt.m, s.opt.v, (uint64_t)bf16};
    if (!no_save && gr_checkpoint_save(out, tm, base, f32, &st, &err))
        gr_die(GR_EXIT_FAIL, "%s", err.msg);
    if (eval_every > 0) eval_log(&s, lw, quiet);
    if (!no_save && gr_hf_write(out, tm, base, f32, &err)) gr_die(GR_EXIT_FAIL, "%s", err.msg);
    if (lw && gr_writer_commit(lw, &err)) gr_die(GR_EXIT_FAIL, "%s", err.msg);
    if (!quiet) {
        if (no_save) gr_msg("done: %lld steps, nothing saved (--no-save)", (long long)s.step);
        else gr_msg("done: %lld steps, model in %s", (long long)s.step, out);
    }
    gr_dpo_free(&s);
    gr_train_model_free(tm);
    gr_pdata_free(&pd);
    gr_tokenizer_free(tok);
    gr_backend_free(be);
    if (o.dp && o.dp->grad != mpi) o.dp->grad->close(o.dp->grad);
    if (mpi) mpi->close(mpi);
    return 0;
}
