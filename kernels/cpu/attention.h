/* The attention row kernels: one query row (head `kvh`'s group) against
 * positions 0..P of its cache at `layer`: o (hd) = softmax(q·kᵀ/√hd) v, with
 * sc (P+1 floats) as scratch for the scores. */
#ifndef GR_CPU_ATTENTION_H
#define GR_CPU_ATTENTION_H
#include "cpu_backend.h"
#include "isa.h"
struct gr_kv;
void gr_att_row_scalar(float *o, const float *qv, const struct gr_kv *kv, int layer, int kvh, int hd,
                       int P, float *sc);
void gr_att_row_avx2(float *o, const float *qv, const struct gr_kv *kv, int layer, int kvh, int hd,
                     int P, float *sc);
#endif
