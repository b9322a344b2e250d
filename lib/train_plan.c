#include "train_plan.h"

void gr_train_plan_init(gr_train_plan *p, int64_t n, int64_t micro_batch, int64_t grad_accum,
                        int64_t epochs) {
    p->n = n;
    p->micro_batch = micro_batch;
    p->grad_accum = grad_accum;
    p->epochs = epochs;
    p->M = (n + micro_batch - 1) / micro_batch;
    p->steps_per_epoch = (p->M + grad_accum - 1) / grad_accum;
    int64_t full = p->M / grad_accum;
    p->T = epochs * (full > 1 ? full : 1);
}

void gr_train_plan_step(const gr_train_plan *p, int64_t k, int64_t *epoch, int64_t *u0,
                        int64_t *u1) {
    int64_t in_epoch = k % p->steps_per_epoch;
    *epoch = k / p->steps_per_epoch;
    *u0 = in_epoch * p->grad_accum;
    *u1 = *u0 + p->grad_accum;
    if (*u1 > p->M) *u1 = p->M;
}

void gr_train_plan_micro(const gr_train_plan *p, int64_t u, int64_t *a, int64_t *b) {
    *a = u * p->micro_batch;
    *b = *a + p->micro_batch;
    if (*b > p->n) *b = p->n;
}
