#include "train_optim.h"
#include <math.h>
#include <stdio.h>
#include <stdlib.h>

void gr_adamw_init(gr_adamw *o, int64_t n) {
    o->beta1 = 0.9f;
    o->beta2 = 0.999f;
    o->eps = 1e-8f;
    o->weight_decay = 0.0f;
    o->t = 0;
    o->n = n;
    o->ops = NULL;
    o->be = NULL;
    o->m = gr_xcalloc((size_t)(n ? n : 1), sizeof(float));
    o->v = gr_xcalloc((size_t)(n ? n : 1), sizeof(float));
}

void gr_adamw_init_model(gr_adamw *o, const gr_train_model *m) {
    gr_adamw_init(o, 0);
    free(o->m);
    free(o->v);
    o->n = m->n_params;
    o->ops = m->ops;
    o->be = m->be;
    size_t bytes = sizeof(float) * (size_t)(o->n ? o->n : 1);
    o->m = m->ops->alloc(m->be, bytes);
    o->v = m->ops->alloc(m->be, bytes);
    if (!o->m || !o->v) {
        fprintf(stderr, "out of memory (%s: 2 x %zu bytes of AdamW moments)\n", m->ops->name, bytes);
        abort();
    }
}

void gr_adamw_free(gr_adamw *o) {
    if (o->ops) {
        o->ops->sync(o->be);
        o->ops->release(o->be, o->m);
        o->ops->release(o->be, o->v);
        o->m = o->v = NULL;
        return;
    }
    free(o->m);
    free(o->v);
    o->m = o->v = NULL;
}

void gr_adamw_step(gr_adamw *o, gr_train_model *m, float lr) {
    o->t++;
    m->ops->adamw(m->be, m->params, m->grads, o->m, o->v, o->n, lr, o->beta1, o->beta2, o->eps,
                  o->weight_decay, (int)o->t);
    m->ops->sync(m->be); /* the host may read the weights and moments (checkpoints) */
}

double gr_lr_cosine(double lr0, int64_t k, int64_t T, int64_t warmup) {
    if (k < warmup) return lr0 * (double)k / (double)(warmup > 1 ? warmup : 1);
    int64_t span = T - warmup > 1 ? T - warmup : 1;
    double progress = (double)(k - warmup) / (double)span;
    double f = 0.5 * (1.0 + cos(M_PI * 0.5 * 2.0 * progress));
    return lr0 * (f > 0 ? f : 0.0);
}

double gr_clip_grad_norm(gr_train_model *m, float max_norm) {
    double norm = sqrt(m->ops->sumsq(m->be, m->grads, m->n_params));
    if (max_norm > 0) {
        float coef = (float)((double)max_norm / (norm + 1e-6));
        if (coef < 1.0f) m->ops->scale(m->be, m->grads, coef, m->n_params);
    }
    return norm;
}

double gr_optim_step(gr_adamw *o, gr_train_model *m, float lr, float max_norm, int fused) {
    if (!fused || !m->ops->adamw_clip) {
        double norm = gr_clip_grad_norm(m, max_norm);
        gr_adamw_step(o, m, lr);
        return norm;
    }
    o->t++;
    double norm = m->ops->adamw_clip(m->be, m->params, m->grads, o->m, o->v, o->n, lr, o->beta1,
                                     o->beta2, o->eps, o->weight_decay, (int)o->t, max_norm);
    m->ops->sync(m->be);
    return norm;
}
