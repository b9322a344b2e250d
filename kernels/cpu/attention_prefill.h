/* Prefill attention (attention_prefill.c): the rows of prefill tokens (not
 * decode rows, backend.h decode_rows), blocked over up to 12 query tokens of a
 * run (consecutive tokens of one sequence at consecutive positions) and 16 or
 * 32 keys, the keys of a (run, kv head) transposed once per call.
 *
 * Numerics, for a row (token at position P, head h of kv head g), the same on
 * every ISA level and whatever the run, tile or thread count:
 *   s[p] = (one fmaf chain over d in order from 0 of q[d] k_p[d]) * (1/√hd),
 *   m = max_p s[p] (a NaN score is passed over), e[p] = expf(s[p] − m)
 *   (gr_expf_n: glibc expf's values), Σ = 16 partial sums (lane l: the e[p]
 *   with p ≡ l mod 16, in p order) added by the tree (l, l+8), (l, l+4),
 *   (l, l+2), (l, l+1), a[p] = e[p] · (1/Σ), and
 *   o[d] = one fmaf chain over p = 0..P in order from 0 of a[p] v_p[d].
 * Not the decode row kernel's order (attention.c), so a prefill row's bits
 * differ from the same row computed as a decode row: each kind has one order. */
#ifndef GR_CPU_ATTENTION_PREFILL_H
#define GR_CPU_ATTENTION_PREFILL_H
#include "backend.h"
struct gr_kv;

/* The prefill rows of ab (those with dec == NULL or dec[t] == 0): out and q as
 * gr_backend.attention's. */
void gr_cpu_attention_prefill(gr_backend *b, float *out, const float *q, const gr_attn_batch *ab,
                              const unsigned char *dec, int layer, int n_heads, int n_kv_heads, int hd);

enum { GR_AP_TQ = 12, GR_AP_PV = 6 }; /* queries per score tile, per P·V tile */

/* attention_prefill_avx512.c (hd a multiple of 16):
 * kt[blk][d][16] = key (16 blk + i), dims g hd + d, of kv at layer, for the
 * blocks 0 .. nblk-1 (rows past the last position are read but never used). */
void gr_ap_pack_k_avx512(float *kt, const struct gr_kv *kv, int layer, int g, int hd, int nblk);
/* S[i][p] (ld floats per row) = s_i[p] for the m <= 12 queries q[i] (hd floats
 * each) and p < 16 nblk, from kt as packed above; all 12 rows of S are
 * written (rows past m hold row 0's scores again). */
void gr_ap_scores_avx512(float *S, int ld, const float *const *q, int m, const float *kt, int hd, int nblk,
                         float scale);
/* One row's softmax in place: sc[0..P] scores to weights a[p] (the numerics above). */
void gr_ap_softmax_avx512(float *sc, int P);
/* o[i][d] (row o[i], hd floats) = Σ_p a[i][p] v_p[d], p = 0..P[i], for m <= 6 rows. */
void gr_ap_pv_avx512(float *const *o, const float *const *a, const int *P, int m, const struct gr_kv *kv,
                     int layer, int g, int hd);
#endif
