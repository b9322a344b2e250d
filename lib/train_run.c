#include "train_run.h"
#include "backend_train.h"
#include "gr_io.h"
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

int gr_mkdir_p(const char *dir, gr_err *err) {
    char p[4096];
    if (snprintf(p, sizeof p, "%s", dir) >= (int)sizeof p) return gr_errf(err, "%s: path too long", dir);
    for (char *s = p + 1; *s; s++)
        if (*s == '/') {
            *s = 0;
            if (mkdir(p, 0777) != 0 && errno != EEXIST) return gr_errf(err, "%s: %s", p, strerror(errno));
            *s = '/';
        }
    if (mkdir(p, 0777) != 0 && errno != EEXIST) return gr_errf(err, "%s: %s", p, strerror(errno));
    return 0;
}

int gr_train_log_cut(const char *path, uint64_t step, double *elapsed, gr_err *err) {
    *elapsed = 0;
    FILE *f = fopen(path, "rb");
    if (!f) return 0;
    gr_buf keep = {0};
    char *line = NULL;
    size_t cap = 0;
    ssize_t n;
    while ((n = getline(&line, &cap, f)) > 0) {
        if (line[n - 1] != '\n') break; /* torn tail */
        jv v = jv_parse_sized(line, (int)n);
        if (jv_get_kind(v) == JV_KIND_OBJECT) {
            jv s = jv_object_get(jv_copy(v), jv_string("step"));
            if (jv_get_kind(s) == JV_KIND_NUMBER && jv_number_value(s) <= (double)step) {
                gr_buf_append(&keep, line, (size_t)n);
                jv e = jv_object_get(jv_copy(v), jv_string("elapsed_s"));
                if (jv_get_kind(e) == JV_KIND_NUMBER) *elapsed = jv_number_value(e);
                jv_free(e);
            }
            jv_free(s);
        }
        jv_free(v);
    }
    free(line);
    fclose(f);
    int rc = gr_write_file_atomic(path, keep.data ? keep.data : "", keep.len, err);
    gr_buf_free(&keep);
    return rc;
}

int gr_train_state_restore(const char *ckpt, const gr_train_state *want, const char *what,
                           gr_train_model *m, gr_adamw *opt, int64_t *step, gr_err *err) {
    char p[4200];
    snprintf(p, sizeof p, "%s/trainer_state.bin", ckpt);
    gr_train_state st;
    if (gr_state_read(p, &st, err)) return -1;
    if (st.precision != want->precision) {
        int pr = st.precision == 1;
        gr_state_free(&st);
        return gr_errf(err, "%s: trained with --precision %s; resume with the same precision, not %s", p,
                       pr ? "bf16" : "fp32", want->precision == 1 ? "bf16" : "fp32");
    }
    if (st.n_params != want->n_params || st.seed != want->seed || st.n_examples != want->n_examples ||
        st.micro_batch != want->micro_batch || st.grad_accum != want->grad_accum || st.epochs != want->epochs ||
        st.T != want->T || st.lr != want->lr) {
        gr_state_free(&st);
        return gr_errf(err, "%s: made with other settings (model size, seed, %s, batch, accumulation, epochs "
                       "or lr differ); resume with the same ones", p, what);
    }
    m->ops->sync(m->be);
    gr_train_params_put(m, st.params, 0, (int64_t)st.n_params);
    gr_train_params_refresh(m);
    gr_tops_put(m->ops, m->be, opt->m, st.m, sizeof(float) * (size_t)st.n_params);
    gr_tops_put(m->ops, m->be, opt->v, st.v, sizeof(float) * (size_t)st.n_params);
    opt->t = (int64_t)st.adam_t;
    *step = (int64_t)st.step;
    gr_state_free(&st);
    return 0;
}

gr_writer *gr_train_log_open(const char *path, int fresh, gr_err *err) {
    if (fresh && gr_write_file_atomic(path, "", 0, err)) return NULL;
    gr_writer_opts wo = {.append = 1};
    return gr_writer_open(path, &wo, err);
}

gr_backend *gr_train_backend_open(const char *device, int threads, int world, gr_err *err) {
    char name[32];
    if (device && strcmp(device, "cuda") == 0 && world > 1) {
        const char *env[] = {"OMPI_COMM_WORLD_LOCAL_RANK", "MPI_LOCALRANKID", "SLURM_LOCALID"};
        for (int i = 0; i < 3; i++) {
            const char *v = getenv(env[i]);
            if (v && *v) {
                snprintf(name, sizeof name, "cuda:%d", atoi(v));
                device = name;
                break;
            }
        }
    }
    /* Data parallelism sums fp32 gradient blocks (lib/dp.h), so a multi-process
     * GPU run keeps its gradients fp32 (GR_CUDA_TRAIN_STORE=f32, read when the
     * CUDA training state is made) unless the user chose a storage explicitly;
     * the memory plan of such a run is gr-sft --plan with that variable set. */
    if (device && strncmp(device, "cuda", 4) == 0 && world > 1) setenv("GR_CUDA_TRAIN_STORE", "f32", 0);
    gr_backend *b = gr_backend_open(device, threads, err);
    if (!b) return NULL;
    gr_err e2;
    if (!gr_train_ops_for(b, &e2)) {
        gr_errf(err, "--device %s: %s", device, e2.msg);
        gr_backend_free(b);
        return NULL;
    }
    return b;
}

int gr_train_set_precision(gr_backend *be, int bf16, gr_err *err) {
    if (bf16 && !be->host_memory)
        return gr_errf(err, "--precision bf16: the %s backend trains in fp32 only (use --device cpu)", be->name);
    be->train_bf16 = bf16 != 0;
    return 0;
}
