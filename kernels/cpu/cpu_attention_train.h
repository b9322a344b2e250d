/* The CPU training attention for head dims that are a multiple of 16
 * (cpu_attention_train.c); the signatures are those of gr_train_ops'
 * attention_fwd / attention_bwd. Each returns 0, doing nothing, when the shape
 * is not one it handles (the caller then takes the general path). */
#ifndef GR_CPU_ATTENTION_TRAIN_H
#define GR_CPU_ATTENTION_TRAIN_H
#include "backend.h"
int gr_cpu_attention_fwd_fast(gr_backend *b, float *out, float *lse, const float *q,
                              const float *k, const float *v, const int *start, int n_seq, int H,
                              int Hkv, int hd);
int gr_cpu_attention_bwd_fast(gr_backend *b, float *dq, float *dk, float *dv, const float *dout,
                              const float *out, const float *lse, const float *q, const float *k,
                              const float *v, const int *start, int n_seq, int H, int Hkv,
                              int hd);
#endif
