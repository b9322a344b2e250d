/* The check pass at load: every weight must be a finite number. A NaN or an
 * infinity in a checkpoint (a diverged run, a bad conversion) would otherwise
 * run silently and produce empty or garbage reasoning. The pass reads each
 * weight's exponent bits once (about the cost of reading the file; measured in
 * the README's performance table). */
#include "model.h"
#include <math.h>
#include <stdio.h>
#include <string.h>

/* 1 when one of the four 16-bit lanes of x has its exponent field (mask, in
 * every lane of m4) all ones: (x & m4) ^ m4 has a zero lane, found by the
 * classic haszero trick (exact here: the masked lanes are below 0x8000). */
static uint64_t lanes_bad16(uint64_t x, uint64_t m4) {
    uint64_t v = (x & m4) ^ m4;
    return (v - 0x0001000100010001ull) & ~v & 0x8000800080008000ull;
}

static uint64_t lanes_bad32(uint64_t x) {
    const uint64_t m2 = 0x7f8000007f800000ull;
    uint64_t v = (x & m2) ^ m2;
    return (v - 0x0000000100000001ull) & ~v & 0x8000000080000000ull;
}

/* Index of the first element of n 16-bit floats whose exponent field (mask)
 * is all ones (Inf or NaN), or n. Blocks of 4096 elements are scanned 64 bits
 * at a time without an early exit (so that the loop vectorizes), and only a
 * block with a hit is searched element by element. */
static size_t first_bad16(const uint8_t *p, size_t n, uint16_t mask) {
    uint64_t m4 = 0x0001000100010001ull * mask;
    for (size_t b = 0; b < n; b += 4096) {
        size_t e = n - b < 4096 ? n : b + 4096, w = (e - b) / 4;
        uint64_t bad = 0;
        for (size_t i = 0; i < w; i++) {
            uint64_t x;
            memcpy(&x, p + 2 * b + 8 * i, 8);
            bad |= lanes_bad16(x, m4);
        }
        for (size_t i = b + 4 * w; i < e; i++) { /* the tail */
            uint16_t x;
            memcpy(&x, p + 2 * i, 2);
            bad |= (x & mask) == mask;
        }
        if (bad)
            for (size_t i = b; i < e; i++) {
                uint16_t x;
                memcpy(&x, p + 2 * i, 2);
                if ((x & mask) == mask) return i;
            }
    }
    return n;
}

static size_t first_bad32(const uint8_t *p, size_t n) {
    for (size_t b = 0; b < n; b += 4096) {
        size_t e = n - b < 4096 ? n : b + 4096, w = (e - b) / 2;
        uint64_t bad = 0;
        for (size_t i = 0; i < w; i++) {
            uint64_t x;
            memcpy(&x, p + 4 * b + 8 * i, 8);
            bad |= lanes_bad32(x);
        }
        for (size_t i = b + 2 * w; i < e; i++) {
            uint32_t x;
            memcpy(&x, p + 4 * i, 4);
            bad |= (x & 0x7f800000u) == 0x7f800000u;
        }
        if (bad)
            for (size_t i = b; i < e; i++) {
                uint32_t x;
                memcpy(&x, p + 4 * i, 4);
                if ((x & 0x7f800000u) == 0x7f800000u) return i;
            }
    }
    return n;
}

/* The first non-finite element of t as (row, col), or -1 in *row. Quantized
 * blocks are checked through their f16 scales (the integer quants are finite). */
static void tensor_bad(const gr_tensor *t, int64_t *row, int64_t *col) {
    *row = -1;
    const uint8_t *p = t->data;
    size_t n = (size_t)t->rows * (size_t)t->cols, i = n, per = (size_t)t->cols;
    switch (t->type) {
    case GR_F32: i = first_bad32(p, n); break;
    case GR_F16: i = first_bad16(p, n, 0x7c00); break;
    case GR_BF16: i = first_bad16(p, n, 0x7f80); break;
    case GR_Q8_0: case GR_Q4_0: case GR_Q4_1: {
        size_t bb = t->type == GR_Q8_0 ? 34 : t->type == GR_Q4_0 ? 18 : 20, nb = n / 32;
        int scales = t->type == GR_Q4_1 ? 2 : 1;
        for (size_t k = 0; k < nb && i == n; k++)
            if (first_bad16(p + k * bb, (size_t)scales, 0x7c00) < (size_t)scales) i = k * 32;
        break;
    }
    default: return;
    }
    if (i < n) {
        *row = (int64_t)(i / per);
        *col = (int64_t)(i % per);
    }
}

static int vector_bad(const float *v, int64_t n) {
    for (int64_t i = 0; i < n; i++)
        if (!isfinite(v[i])) return (int)i;
    return -1;
}

int gr_model_check_finite(const gr_model *m, gr_err *err) {
    const gr_model_config *c = &m->cfg;
    int64_t r, k;
    char what[64];
#define TENSOR(t, ...)                                                                            \
    do {                                                                                          \
        tensor_bad(&(t), &r, &k);                                                                 \
        if (r >= 0) {                                                                             \
            snprintf(what, sizeof what, __VA_ARGS__);                                             \
            return gr_errf(err, "%s: %s holds a NaN or an infinity (row %lld, column %lld): the " \
                           "checkpoint is broken (a diverged run or a bad conversion)",           \
                           m->path, what, (long long)r, (long long)k);                            \
        }                                                                                         \
    } while (0)
#define VECTOR(v, n, ...)                                                                         \
    do {                                                                                          \
        int bad_ = vector_bad((v), (n));                                                          \
        if (bad_ >= 0) {                                                                          \
            snprintf(what, sizeof what, __VA_ARGS__);                                             \
            return gr_errf(err, "%s: %s holds a NaN or an infinity (element %d): the checkpoint " \
                           "is broken (a diverged run or a bad conversion)", m->path, what, bad_); \
        }                                                                                         \
    } while (0)
    TENSOR(m->tok_emb, "the token embedding");
    for (int l = 0; l < c->n_layers; l++) {
        const gr_layer *L = &m->layers[l];
        VECTOR(L->attn_norm, c->dim, "layer %d's attention norm", l);
        TENSOR(L->wq, "layer %d's q_proj", l);
        TENSOR(L->wk, "layer %d's k_proj", l);
        TENSOR(L->wv, "layer %d's v_proj", l);
        TENSOR(L->wo, "layer %d's o_proj", l);
        VECTOR(L->ffn_norm, c->dim, "layer %d's MLP norm", l);
        TENSOR(L->w_gate, "layer %d's gate_proj", l);
        TENSOR(L->w_up, "layer %d's up_proj", l);
        TENSOR(L->w_down, "layer %d's down_proj", l);
    }
    VECTOR(m->final_norm, c->dim, "the final norm");
    if (m->lm_head.data != m->tok_emb.data) TENSOR(m->lm_head, "lm_head");
#undef TENSOR
#undef VECTOR
    return 0;
}
