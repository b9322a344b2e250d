/* gr-sft: reasoning supervised fine-tuning (R-SFT) of a LLaMA model on token
 * records, with checkpoints that resume bit for bit. */
#include "backend.h"
#include "checkpoint.h"
#include "gr_cli.h"
#include "gr_io.h"
#include "train_run.h"
#include "train_sft.h"
#include <errno.h>
#include <getopt.h>
#include <malloc.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>
#include "dp.h"
#include "gr_mmap.h"
#include "train_mem_plan.h"

static const char usage_text[] =
    "Usage: gr-sft --base MODEL --data TOKENS --out DIR [OPTIONS]\n"
    "Fine-tunes MODEL (a Hugging Face folder or a .gguf file) on token records\n"
    "(id, ids, n_prompt: what gr-tokenize writes) with the cross-entropy of the\n"
    "tokens after each prompt, AdamW and a cosine schedule, as the GuardReasoner\n"
    "R-SFT runs did. Writes DIR/checkpoint-STEP folders and, at the end, the final\n"
    "model (a Hugging Face folder) into DIR.\n"
    "\n"
    "  --base MODEL             the model to start from (default $GR_MODEL)\n"
    "  --data FILE              training token records (JSONL/JSON/zstd, - = stdin)\n"
    "  --out DIR                output folder (created)\n"
    "  --lr X                   peak learning rate (5e-5)\n"
    "  --epochs N               epochs (3)\n"
    "  --micro-batch N          sequences per micro-batch (6)\n"
    "  --grad-accum N           micro-batches per optimizer step (16)\n"
    "  --max-grad-norm X        global gradient-norm clipping, 0 = off (1.0)\n"
    "  --warmup-steps N         linear warmup steps (0)\n"
    "  --weight-decay X         AdamW weight decay (0)\n"
    "  --loss-average MODE      token: mean over every target token of the step\n"
    "                           (default); micro: mean of micro-batch means\n"
    "  --cutoff N               longest sequence accepted (2048); longer is an error\n"
    "  --seed N                 data-order seed (42)\n"
    "  --max-steps N            stop after N steps (the schedule keeps its length)\n"
    "  --save-every N           checkpoint every N steps (0: only at the end)\n"
    "  --save-dtype TYPE        bf16 (default) or f32 weights in model.safetensors\n"
    "  --no-save                write no checkpoint and no model (benchmarks)\n"
    "  --resume                 continue from the newest checkpoint in --out\n"
    "  --eval-data FILE         held-out token records: loss every --eval-every\n"
    "  --eval-every N           steps between evaluations (0: only at the end)\n"
    "  --eval-only              no training: print the loss of --base on --eval-data\n"
    "                           as {\"eval_loss\":X,\"targets\":N} on stdout\n"
    "  --log FILE               one JSON line per step (appended; cut back on --resume)\n"
    "  --replace-invalid        replace invalid UTF-8 in the records by U+FFFD\n"
    "  --recompute              keep only each layer's input and recompute the rest\n"
    "                           in the backward pass (less memory, ~1/3 more time)\n"
    "  --plan                   no training: print the memory plan (bytes per category:\n"
    "                           weights, gradients, moments, activations, scratch) for\n"
    "                           cpu and cuda, a micro-batch of --micro-batch sequences of\n"
    "                           --cutoff tokens, with the --recompute given; MODEL may\n"
    "                           be a config.json (no weights read)\n"
    "  --threads N              CPU threads (0 = all cores)\n"
    "  --device NAME            cpu (default) or cuda[:N] (GPU N; builds with CUDA, see\n"
    "                           --version); under MPI, cuda = the process's local GPU\n"
    "  --precision P            fp32 (default) or bf16: matmul operands rounded to bf16,\n"
    "                           fp32 accumulation, master weights and optimizer (CPU)\n"
    "  --progress, --quiet      force / silence the progress line on stderr\n"
    "  -h, --help               this help;   --version   the version\n"
    "\n"
    "Example:\n"
    "  gr-sft --base SmolLM2-135M --data train.tokens.jsonl.zst --out rsft \\\n"
    "         --log rsft/log.jsonl --save-every 50\n";

enum {
    O_BASE = 256, O_DATA, O_OUT, O_LR, O_EPOCHS, O_MB, O_GA, O_MGN, O_WARM, O_WD, O_LOSSAVG,
    O_CUTOFF, O_SEED, O_MAXSTEPS, O_SAVE, O_SAVEDT, O_RESUME, O_EVAL, O_EVALEVERY, O_LOG,
    O_THREADS, O_DEVICE, O_PRECISION, O_PROGRESS, O_QUIET, O_VERSION, O_NOSAVE, O_RECOMPUTE, O_EVALONLY, O_REPLACE, O_PLAN
};

/* The config for --plan: MODEL's config.json (a folder or the file itself),
 * or a loaded model's (GGUF). */
static int plan_config(const char *base, gr_model_config *cfg, gr_err *err) {
    char path[4096];
    struct stat st;
    size_t bl = strlen(base);
    if (stat(base, &st) == 0 && S_ISDIR(st.st_mode)) snprintf(path, sizeof path, "%s/config.json", base);
    else if (bl >= 5 && !strcmp(base + bl - 5, ".json")) snprintf(path, sizeof path, "%s", base);
    else {
        gr_model *m = gr_model_load(base, err);
        if (!m) return -1;
        *cfg = m->cfg;
        gr_model_free(m);
        return 0;
    }
    size_t n;
    void *map = gr_mmap_file(path, &n, err);
    if (!map) return -1;
    int rc = gr_config_parse(map, n, path, cfg, err);
    gr_munmap_file(map, n);
    return rc;
}

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

int main(int argc, char **argv) {
    gr_prog = "gr-sft";
    int rank = 0;
    gr_dp_transport *mpi = NULL; /* data parallelism (dp.h): the MPI build only */
#ifdef GR_MPI
    {
        gr_err e;
        if (!(mpi = gr_dp_mpi_open(&argc, &argv, &e))) gr_die(GR_EXIT_FAIL, "%s", e.msg);
        rank = mpi->rank;
    }
#endif
    /* The ops allocate large scratch matrices every call; keep them on the heap
     * (glibc would mmap and unmap them, paying page faults each time). */
    mallopt(M_MMAP_THRESHOLD, 1 << 30);
    mallopt(M_TRIM_THRESHOLD, 1 << 30);
    gr_sft_opts o;
    gr_sft_opts_default(&o);
    const char *base = getenv("GR_MODEL"), *data = NULL, *out = NULL, *eval_path = NULL,
               *log_path = NULL;
    long cutoff = 2048, save_every = 0, eval_every = 0, threads = 0;
    const char *device = "cpu";
    int resume = 0, f32 = 0, bf16 = 0, progress = isatty(2), quiet = 0, no_save = 0, eval_only = 0, plan = 0;
    static const struct option longopts[] = {
        {"base", 1, 0, O_BASE}, {"data", 1, 0, O_DATA}, {"out", 1, 0, O_OUT}, {"lr", 1, 0, O_LR},
        {"epochs", 1, 0, O_EPOCHS}, {"micro-batch", 1, 0, O_MB}, {"grad-accum", 1, 0, O_GA},
        {"max-grad-norm", 1, 0, O_MGN}, {"warmup-steps", 1, 0, O_WARM},
        {"weight-decay", 1, 0, O_WD}, {"loss-average", 1, 0, O_LOSSAVG},
        {"cutoff", 1, 0, O_CUTOFF}, {"seed", 1, 0, O_SEED}, {"max-steps", 1, 0, O_MAXSTEPS},
        {"save-every", 1, 0, O_SAVE}, {"no-save", 0, 0, O_NOSAVE},
        {"save-dtype", 1, 0, O_SAVEDT}, {"resume", 0, 0, O_RESUME},
        {"eval-data", 1, 0, O_EVAL}, {"eval-every", 1, 0, O_EVALEVERY},
        {"eval-only", 0, 0, O_EVALONLY}, {"log", 1, 0, O_LOG}, {"replace-invalid", 0, 0, O_REPLACE},
        {"threads", 1, 0, O_THREADS}, {"recompute", 0, 0, O_RECOMPUTE}, {"plan", 0, 0, O_PLAN}, {"device", 1, 0, O_DEVICE}, {"precision", 1, 0, O_PRECISION},
        {"progress", 0, 0, O_PROGRESS}, {"quiet", 0, 0, O_QUIET}, {"help", 0, 0, 'h'},
        {"version", 0, 0, O_VERSION}, {0, 0, 0, 0}};
    int c;
    while ((c = getopt_long(argc, argv, "h", longopts, NULL)) != -1) {
        switch (c) {
        case O_BASE: base = optarg; break;
        case O_DATA: data = optarg; break;
        case O_OUT: out = optarg; break;
        case O_LR: o.lr = gr_parse_double("--lr", optarg, 0, 1e3); break;
        case O_EPOCHS: o.epochs = (int)gr_parse_long("--epochs", optarg, 1, 1000000); break;
        case O_MB: o.micro_batch = (int)gr_parse_long("--micro-batch", optarg, 1, 65536); break;
        case O_GA: o.grad_accum = (int)gr_parse_long("--grad-accum", optarg, 1, 1 << 20); break;
        case O_MGN: o.max_grad_norm = gr_parse_double("--max-grad-norm", optarg, 0, 1e30); break;
        case O_WARM: o.warmup_steps = gr_parse_long("--warmup-steps", optarg, 0, 1L << 40); break;
        case O_WD: o.weight_decay = gr_parse_double("--weight-decay", optarg, 0, 1e3); break;
        case O_LOSSAVG:
            if (!strcmp(optarg, "token")) o.loss_micro = 0;
            else if (!strcmp(optarg, "micro")) o.loss_micro = 1;
            else gr_usage_error("--loss-average: 'token' or 'micro', not '%s'", optarg);
            break;
        case O_CUTOFF: cutoff = gr_parse_long("--cutoff", optarg, 2, 1 << 24); break;
        case O_SEED: o.seed = (uint64_t)gr_parse_long("--seed", optarg, 0, 0x7fffffffffffffffL); break;
        case O_MAXSTEPS: o.max_steps = gr_parse_long("--max-steps", optarg, 1, 1L << 40); break;
        case O_SAVE: save_every = gr_parse_long("--save-every", optarg, 0, 1L << 40); break;
        case O_SAVEDT:
            if (!strcmp(optarg, "bf16")) f32 = 0;
            else if (!strcmp(optarg, "f32")) f32 = 1;
            else gr_usage_error("--save-dtype: 'bf16' or 'f32', not '%s'", optarg);
            break;
        case O_RESUME: resume = 1; break;
        case O_NOSAVE: no_save = 1; break;
        case O_RECOMPUTE: o.recompute = 1; break;
        case O_PLAN: plan = 1; break;
        case O_EVALONLY: eval_only = 1; break;
        case O_EVAL: eval_path = optarg; break;
        case O_EVALEVERY: eval_every = gr_parse_long("--eval-every", optarg, 0, 1L << 40); break;
        case O_LOG: log_path = optarg; break;
        case O_REPLACE: gr_reader_replace_invalid_all(1); break;
        case O_THREADS: threads = gr_parse_long("--threads", optarg, 0, 4096); break;
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
        case O_VERSION: printf("gr-sft %s (backends: %s)\n%s\n", GR_VERSION, gr_backends_built(), gr_cpu_describe()); gr_close_stdout(); return 0;
        default: gr_usage_error("unknown option");
        }
    }
    if (optind < argc) gr_usage_error("unexpected argument '%s'", argv[optind]);
    if (!base || !*base) gr_usage_error("--base MODEL is required (or set GR_MODEL)");
    if (plan) {
        gr_err err;
        gr_model_config cfg;
        if (plan_config(base, &cfg, &err)) gr_die(GR_EXIT_FAIL, "%s", err.msg);
        gr_tmem_plan p;
        int64_t tokens = (int64_t)o.micro_batch * cutoff;
        gr_tmem_plan_make(&cfg, 0, tokens, o.micro_batch, o.recompute, 0, &p);
        gr_tmem_plan_print(stdout, "cpu", &p);
        gr_tmem_plan_make(&cfg, 1, tokens, o.micro_batch, o.recompute, (int64_t)1 << 30, &p);
        gr_tmem_plan_print(stdout, "cuda", &p);
        gr_close_stdout();
        return 0;
    }
    if (eval_only) {
        if (!eval_path) gr_usage_error("--eval-only needs --eval-data FILE");
        gr_err err;
        gr_model *gm = gr_model_load(base, &err);
        if (!gm) gr_die(GR_EXIT_FAIL, "%s", err.msg);
        gr_tdata ed;
        if (gr_tdata_load(eval_path, gm->cfg.vocab_size, (int)cutoff, &ed, &err))
            gr_die(GR_EXIT_FAIL, "%s", err.msg);
        gr_backend *be = gr_train_backend_open(device, (int)threads, 1, &err);
        if (!be) gr_die(GR_EXIT_FAIL, "%s", err.msg);
        if (gr_train_set_precision(be, bf16, &err)) gr_die(GR_EXIT_FAIL, "%s", err.msg);
        gr_train_model *tm = gr_train_model_new(gm, be, &err);
        if (!tm) gr_die(GR_EXIT_FAIL, "%s", err.msg);
        gr_tact *act = gr_tact_new(o.recompute);
        double loss;
        int64_t nt;
        if (gr_train_eval(tm, act, &ed, o.micro_batch, &loss, &nt, &err))
            gr_die(GR_EXIT_FAIL, "%s", err.msg);
        printf("{\"eval_loss\":%.9g,\"targets\":%lld}\n", loss, (long long)nt);
        gr_tact_free(act);
        gr_train_model_free(tm);
        gr_backend_free(be);
        gr_tdata_free(&ed);
        gr_model_free(gm);
        gr_close_stdout();
        return 0;
    }
    if (!data) gr_usage_error("--data FILE is required");
    if (!out) gr_usage_error("--out DIR is required");
    if (rank > 0) { /* rank 0 alone reports, logs and writes */
        quiet = 1;
        log_path = NULL;
        no_save = 1;
        save_every = 0;
    }
    if (quiet) progress = 0;
    if (no_save && rank == 0 && (save_every || resume))
        gr_usage_error("--no-save goes with neither --save-every nor --resume");

    gr_err err;
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

    gr_model *gm = gr_model_load(base, &err);
    if (!gm) gr_die(GR_EXIT_FAIL, "%s", err.msg);
    gr_tdata td, ed = {0};
    if (gr_tdata_load(data, gm->cfg.vocab_size, (int)cutoff, &td, &err))
        gr_die(GR_EXIT_FAIL, "%s", err.msg);
    if (eval_path && gr_tdata_load(eval_path, gm->cfg.vocab_size, (int)cutoff, &ed, &err))
        gr_die(GR_EXIT_FAIL, "%s", err.msg);
    gr_backend *be = gr_train_backend_open(device, (int)threads, mpi ? mpi->world : 1, &err);
    if (!be) gr_die(GR_EXIT_FAIL, "%s", err.msg);
    if (gr_train_set_precision(be, bf16, &err)) gr_die(GR_EXIT_FAIL, "%s", err.msg);
    gr_train_model *tm = gr_train_model_new(gm, be, &err);
    if (!tm) gr_die(GR_EXIT_FAIL, "%s", err.msg);
    gr_dp dp;
    if (mpi && mpi->world > 1) {
        gr_dp_transport *grad = mpi; /* on GPUs the gradients go through NCCL */
        if (!be->host_memory && !(grad = gr_dp_nccl_open(mpi, be, &err))) gr_die(GR_EXIT_FAIL, "%s", err.msg);
        gr_dp_init(&dp, grad, mpi, 0);
        o.dp = &dp;
    }
    gr_sft s;
    if (gr_sft_init(&s, tm, &td, &o, &err)) gr_die(GR_EXIT_FAIL, "%s", err.msg);
    int64_t last = gr_sft_last_step(&s);

    double elapsed0 = 0;
    if (resume && have) {
        gr_train_state want = {.n_params = tm->n_params, .seed = o.seed, .n_examples = (uint64_t)td.n,
                               .micro_batch = (uint64_t)o.micro_batch, .grad_accum = (uint64_t)o.grad_accum,
                               .epochs = (uint64_t)o.epochs, .T = (uint64_t)s.T, .lr = o.lr, .precision = (uint64_t)bf16};
        if (gr_train_state_restore(ckpt, &want, "data size", tm, &s.opt, &s.step, &err))
            gr_die(GR_EXIT_FAIL, "%s", err.msg);
        if (log_path && gr_train_log_cut(log_path, have, &elapsed0, &err))
            gr_die(GR_EXIT_FAIL, "%s", err.msg);
        if (!quiet) gr_msg("resuming from %s (step %llu of %lld)", ckpt, (unsigned long long)have, (long long)last);
    } else if (resume && !quiet) {
        gr_msg("no checkpoint in %s: starting from step 0", out);
    }
    gr_writer *lw = NULL;
    if (log_path && !(lw = gr_train_log_open(log_path, !(resume && have), &err))) gr_die(GR_EXIT_FAIL, "%s", err.msg);
    const char *kill_env = getenv("GR_SFT_TEST_KILL_AT_STEP"); /* for the resume test */
    long kill_at = kill_env ? strtol(kill_env, NULL, 10) : -1;

    if (!quiet)
        gr_msg("%d examples, %lld micro-batches/epoch, %lld steps (%lld/epoch), %lld params, %lld bytes of activations/token",
               td.n, (long long)s.M, (long long)s.T, (long long)s.steps_per_epoch,
               (long long)tm->n_params, (long long)gr_tact_bytes_per_token(&tm->cfg, o.recompute));
    double t0 = now_s();
    int64_t tok_run = 0;
    char line[1024];
    int saved_last = 0;
    while (s.step < last) {
        double ts = now_s();
        gr_sft_info in;
        if (gr_sft_step(&s, &in, &err)) gr_die(GR_EXIT_FAIL, "%s", err.msg);
        double dt = now_s() - ts, el = elapsed0 + now_s() - t0;
        tok_run += in.tokens;
        snprintf(line, sizeof line,
                 "{\"step\":%lld,\"epoch\":%.6g,\"loss\":%.9g,\"lr\":%.9g,\"grad_norm\":%.9g,"
                 "\"tokens\":%lld,\"targets\":%lld,\"tokens_per_s\":%.6g,\"elapsed_s\":%.6g}",
                 (long long)in.step, in.epoch, in.loss, in.lr, in.grad_norm, (long long)in.tokens,
                 (long long)in.targets, dt > 0 ? (double)in.tokens / dt : 0.0, el);
        log_line(lw, line);
        if (progress) {
            double rate = (double)tok_run / (now_s() - t0);
            double eta = (now_s() - t0) / (double)(in.step - (int64_t)have) * (double)(last - in.step);
            fprintf(stderr, "\rgr-sft: step %lld/%lld  loss %.4f  lr %.3g  %.0f tok/s  ETA %.0fs   ",
                    (long long)in.step, (long long)last, in.loss, in.lr, rate, eta);
            if (in.step == last) fputc('\n', stderr);
        }
        if (kill_at >= 0 && in.step == kill_at) raise(SIGKILL);
        saved_last = 0;
        if (save_every > 0 && in.step % save_every == 0 && in.step < last) {
            gr_train_state st = {(uint64_t)s.step, o.seed, (uint64_t)td.n, (uint64_t)o.micro_batch,
                                 (uint64_t)o.grad_accum, (uint64_t)o.epochs, (uint64_t)s.T,
                                 (uint64_t)s.opt.t, o.lr, tm->n_params, tm->params, s.opt.m, s.opt.v, (uint64_t)bf16};
            if (gr_checkpoint_save(out, tm, base, f32, &st, &err)) gr_die(GR_EXIT_FAIL, "%s", err.msg);
            saved_last = 1;
        }
        if (ed.n && eval_every > 0 && in.step % eval_every == 0 && in.step < last) {
            double el2;
            if (gr_sft_eval(&s, &ed, &el2, &err)) gr_die(GR_EXIT_FAIL, "%s", err.msg);
            snprintf(line, sizeof line, "{\"step\":%lld,\"eval_loss\":%.9g}", (long long)in.step, el2);
            log_line(lw, line);
        }
    }
    (void)saved_last;
    /* the end: a checkpoint of the last step, the final eval, the model in OUT */
    gr_train_state st = {(uint64_t)s.step, o.seed, (uint64_t)td.n, (uint64_t)o.micro_batch,
                         (uint64_t)o.grad_accum, (uint64_t)o.epochs, (uint64_t)s.T,
                         (uint64_t)s.opt.t, o.lr, tm->n_params, tm->params, s.opt.m, s.opt.v, (uint64_t)bf16};
    if (!no_save && gr_checkpoint_save(out, tm, base, f32, &st, &err))
        gr_die(GR_EXIT_FAIL, "%s", err.msg);
    if (ed.n) {
        double el2;
        if (gr_sft_eval(&s, &ed, &el2, &err)) gr_die(GR_EXIT_FAIL, "%s", err.msg);
        snprintf(line, sizeof line, "{\"step\":%lld,\"eval_loss\":%.9g}", (long long)s.step, el2);
        log_line(lw, line);
        if (!quiet) gr_msg("eval loss %.6f", el2);
    }
    if (!no_save && gr_hf_write(out, tm, base, f32, &err)) gr_die(GR_EXIT_FAIL, "%s", err.msg);
    if (lw && gr_writer_commit(lw, &err)) gr_die(GR_EXIT_FAIL, "%s", err.msg);
    if (!quiet && tm->ops->mem_stats) { /* a device: what it held against the plan's bound */
        size_t live, peak, scratch;
        tm->ops->mem_stats(be, &live, &peak, &scratch);
        int64_t longest = 0;
        for (int64_t i = 0; i < td.n; i++) longest = td.len[i] > longest ? td.len[i] : longest;
        gr_tmem_plan p;
        gr_tmem_plan_make(&tm->cfg, tm->store16, (int64_t)o.micro_batch * longest, o.micro_batch, o.recompute, 0, &p);
        gr_msg("device memory: peak %zu bytes held (%zu of it the ops' scratch); plan for %d x %lld tokens: %lld "
               "bytes without the context reserve", peak, scratch, o.micro_batch, (long long)longest,
               (long long)p.total);
    }
    if (!quiet && no_save) gr_msg("done: %lld steps (--no-save: nothing written)", (long long)s.step);
    else if (!quiet) gr_msg("done: %lld steps, model in %s", (long long)s.step, out);
    gr_sft_free(&s);
    gr_train_model_free(tm);
    gr_tdata_free(&td);
    gr_tdata_free(&ed);
    gr_backend_free(be);
    gr_model_free(gm);
    if (o.dp && o.dp->grad != mpi) o.dp->grad->close(o.dp->grad);
    if (mpi) mpi->close(mpi);
    return 0;
}
