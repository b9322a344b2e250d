/* The prefill attention (kernels/cpu/attention_prefill.c): every prefill row
 * against a double-precision softmax attention (tolerance 2e-5: f32 scores and
 * sums over at most 100 positions of values in [-0.5, 0.5]); bit-identical at
 * every ISA level this CPU has (the numerics are stated in
 * attention_prefill.h, the portable kernel is the reference); batch-invariant:
 * a row computed alone equals the same row inside a batch of two runs (one
 * continuing at position 10 after cached positions, one cut in two pieces
 * around the other) mixed with decode rows, at 1 and 2 threads; decode rows in
 * that batch equal the decode kernel's result alone. Head dims 64 (the 64-wide
 * P.V tile), 80 (64 + 16), 32 (16-wide only) and 24 (portable at every level). */
#include "test.h"
#include "backend.h"
#include "isa.h"
#include "forward.h"
#include "kv_cache.h"
#include <stdint.h>

static unsigned rng = 5;
static unsigned next(void) { return rng = rng * 1103515245u + 12345u; }
static float unit(void) { return (float)((next() >> 8) & 0xffff) / 65536.0f - 0.5f; }

enum { LA = 70, LB = 40, B0 = 10, NT = LA + (LB - B0) + 2 };

/* out (n, H hd) for tokens (kv[t], pos[t], q row t), kinds dec (NULL: all prefill) */
static void att(gr_backend *be, float *out, const float *q, gr_kv *const *kv, const int *pos, int n,
                const unsigned char *dec, int H, int Hkv, int hd) {
    gr_attn_batch ab;
    memset(&ab, 0, sizeof ab);
    ab.n = n;
    ab.kv = kv;
    ab.pos = pos;
    be->decode_rows = dec;
    be->attention(be, out, q, &ab, 1, H, Hkv, hd);
    be->decode_rows = NULL;
}

TEST(prefill_attention) {
    const int shapes[][3] = {{6, 2, 64}, {5, 5, 80}, {4, 2, 32}, {2, 1, 24}};
    int keep = gr_cpu_isa;
    for (size_t si = 0; si < sizeof shapes / sizeof *shapes; si++) {
        int H = shapes[si][0], Hkv = shapes[si][1], hd = shapes[si][2], kvd = Hkv * hd, D = H * hd;
        gr_kv_pool *pool = gr_kv_pool_new(NULL, 2, kvd, 0);
        gr_kv *A = gr_kv_new_in(pool, NULL), *Bq = gr_kv_new_in(pool, NULL);
        CHECK(A && Bq && gr_kv_try_reserve(A, LA) == 0 && gr_kv_try_reserve(Bq, LB) == 0);
        for (int l = 0; l < 2; l++)
            for (int p = 0; p < LA; p++)
                for (int s = 0; s < 2; s++) {
                    gr_kv *kv = s ? Bq : A;
                    if (s && p >= LB) continue;
                    float *k = (float *)gr_kv_k(kv, l, p), *v = (float *)gr_kv_v(kv, l, p);
                    for (int i = 0; i < kvd; i++) k[i] = 2 * unit(), v[i] = unit();
                }
        /* the batch: A 0..34, B 10..39, a decode row (A at 50), A 35..69, a decode row (B at 25) */
        gr_kv *kvs[NT];
        int pos[NT], n = 0;
        unsigned char dec[NT];
        for (int p = 0; p < 35; p++) kvs[n] = A, pos[n] = p, dec[n++] = 0;
        for (int p = B0; p < LB; p++) kvs[n] = Bq, pos[n] = p, dec[n++] = 0;
        kvs[n] = A, pos[n] = 50, dec[n++] = 1;
        for (int p = 35; p < LA; p++) kvs[n] = A, pos[n] = p, dec[n++] = 0;
        kvs[n] = Bq, pos[n] = 25, dec[n++] = 1;
        float *q = malloc(sizeof(float) * (size_t)NT * D), *alone = malloc(sizeof(float) * (size_t)NT * D),
              *batch = malloc(sizeof(float) * (size_t)NT * D), *first = malloc(sizeof(float) * (size_t)NT * D);
        for (int i = 0; i < NT * D; i++) q[i] = unit();
        for (int isa = GR_ISA_SCALAR; isa <= gr_cpu_isa_max(); isa++) {
            gr_cpu_isa_set(isa);
            for (int th = 1; th <= 2; th++) {
                gr_backend *be = gr_backend_cpu(th);
                for (int t = 0; t < NT; t++)
                    att(be, alone + (size_t)t * D, q + (size_t)t * D, kvs + t, pos + t, 1, dec + t, H, Hkv, hd);
                att(be, batch, q, kvs, pos, NT, dec, H, Hkv, hd);
                gr_backend_free(be);
                for (int t = 0; t < NT; t++)
                    CHECK_MSG(!memcmp(alone + (size_t)t * D, batch + (size_t)t * D, sizeof(float) * (size_t)D),
                              "%s hd %d threads %d: token %d (pos %d, %s) alone differs from batched",
                              gr_cpu_isa_name(isa), hd, th, t, pos[t], dec[t] ? "decode" : "prefill");
                if (isa == GR_ISA_SCALAR && th == 1) {
                    memcpy(first, batch, sizeof(float) * (size_t)NT * D);
                    /* against double precision */
                    double *sc = malloc(sizeof(double) * LA);
                    for (int t = 0; t < NT; t++)
                        for (int h = 0; h < H; h++) {
                            int g = h / (H / Hkv);
                            const float *qv = q + (size_t)t * D + (size_t)h * hd;
                            double mx = -1e300, sum = 0;
                            for (int p = 0; p <= pos[t]; p++) {
                                const float *k = gr_kv_k(kvs[t], 1, p) + g * hd;
                                double s = 0;
                                for (int d = 0; d < hd; d++) s += (double)qv[d] * k[d];
                                sc[p] = s / sqrt((double)hd);
                                if (sc[p] > mx) mx = sc[p];
                            }
                            for (int p = 0; p <= pos[t]; p++) sum += sc[p] = exp(sc[p] - mx);
                            for (int d = 0; d < hd; d++) {
                                double o = 0;
                                for (int p = 0; p <= pos[t]; p++) o += sc[p] / sum * gr_kv_v(kvs[t], 1, p)[g * hd + d];
                                float got = batch[(size_t)t * D + (size_t)h * hd + d];
                                CHECK_MSG(fabs(got - o) <= 2e-5, "hd %d token %d head %d d %d: %g vs %g", hd, t, h, d,
                                          got, o);
                            }
                        }
                    free(sc);
                } else {
                    /* prefill rows: the scalar level's bits on every level and thread count */
                    for (int t = 0; t < NT; t++)
                        CHECK_MSG(dec[t] || !memcmp(first + (size_t)t * D, batch + (size_t)t * D, sizeof(float) * (size_t)D),
                                  "%s hd %d threads %d: prefill token %d differs from scalar", gr_cpu_isa_name(isa), hd,
                                  th, t);
                }
            }
        }
        free(q), free(alone), free(batch), free(first);
        gr_kv_free(A), gr_kv_free(Bq);
        gr_kv_pool_release(pool);
    }
    gr_cpu_isa_set(keep);
    printf("# prefill attention: levels scalar..%s compared\n", gr_cpu_isa_name(gr_cpu_isa_max()));
}

int main(void) {
    (void)test_shared_dir;
    RUN(prefill_attention);
    return TEST_EXIT();
}
