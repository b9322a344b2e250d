/* Sampling: see sample.h. */
#include "sample.h"
#include "gr_common.h"
#include <math.h>
#include <stdlib.h>
#ifdef __AVX2__
#include <immintrin.h>
#endif

static uint64_t splitmix64(uint64_t *x) {
    uint64_t z = (*x += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

void gr_rng_seed(gr_rng *r, uint64_t seed, uint64_t stream) {
    /* Mix the two so that nearby (seed, stream) pairs give unrelated streams. */
    uint64_t x = seed ^ 0x5851f42d4c957f2dull;
    uint64_t k = splitmix64(&x) ^ (stream * 0xd1342543de82ef95ull + 0x2545f4914f6cdd1dull);
    for (int i = 0; i < 4; i++) r->s[i] = splitmix64(&k);
}

static uint64_t rotl(uint64_t x, int k) { return (x << k) | (x >> (64 - k)); }

uint64_t gr_rng_next(gr_rng *r) {
    uint64_t *s = r->s, out = rotl(s[1] * 5, 7) * 9, t = s[1] << 17;
    s[2] ^= s[0];
    s[3] ^= s[1];
    s[1] ^= s[2];
    s[0] ^= s[3];
    s[2] ^= t;
    s[3] = rotl(s[3], 45);
    return out;
}

double gr_rng_uniform(gr_rng *r) { return (double)(gr_rng_next(r) >> 11) * 0x1.0p-53; }

void gr_sample_buf_init(gr_sample_buf *b, int vocab) {
    b->n = vocab;
    b->p = gr_xmalloc(sizeof(float) * (size_t)vocab);
    b->c = gr_xmalloc(sizeof(gr_cand) * (size_t)vocab);
}

void gr_sample_buf_free(gr_sample_buf *b) {
    free(b->p);
    free(b->c);
    b->p = NULL;
    b->c = NULL;
}

/* The first index of the largest value; NaNs are passed over, except that a NaN
 * at 0 is never replaced (nothing compares greater than it). */
static int argmax(const float *x, int n) {
    int b = 0, i = 1;
#ifdef __AVX2__
    /* Greedy decoding takes one per token over the whole vocabulary: the maximum
     * eight lanes at a time (max_ps(v, m) keeps m where v is NaN), then its
     * first index, the same answer as the scalar scan. */
    if (n >= 64 && x[0] == x[0]) {
        __m256 m0 = _mm256_set1_ps(-INFINITY), m1 = m0;
        for (i = 0; i + 16 <= n; i += 16) {
            m0 = _mm256_max_ps(_mm256_loadu_ps(x + i), m0);
            m1 = _mm256_max_ps(_mm256_loadu_ps(x + i + 8), m1);
        }
        float t[8], mx = -INFINITY;
        _mm256_storeu_ps(t, _mm256_max_ps(m0, m1));
        for (int k = 0; k < 8; k++)
            if (t[k] > mx) mx = t[k];
        for (; i < n; i++)
            if (x[i] > mx) mx = x[i];
        __m256 mv = _mm256_set1_ps(mx);
        for (i = 0; i + 8 <= n; i += 8) {
            int hit = _mm256_movemask_ps(_mm256_cmp_ps(_mm256_loadu_ps(x + i), mv, _CMP_EQ_OQ));
            if (hit) return i + __builtin_ctz((unsigned)hit);
        }
        for (; i < n; i++)
            if (x[i] == mx) return i;
    }
#endif
    for (; i < n; i++)
        if (x[i] > x[b]) b = i;
    return b;
}

float gr_logprob(const float *x, int n, int i) {
    float mx = x[argmax(x, n)];
    double s = 0;
    for (int k = 0; k < n; k++) s += exp((double)x[k] - mx);
    return (float)((double)x[i] - mx - log(s));
}

/* Candidates are sorted by descending value, ties by ascending id. */
static int cmp_desc(const void *a, const void *b) {
    const gr_cand *x = a, *y = b;
    if (x->v != y->v) return x->v > y->v ? -1 : 1;
    return (x->id > y->id) - (x->id < y->id);
}

int gr_sample(const float *logits, int n, const gr_sampler *s, gr_rng *rng, gr_sample_buf *b,
              float *logprob) {
    int tok;
    if (s->temperature < 1e-5f || !rng) {
        tok = argmax(logits, n);
    } else {
        float invT = 1.0f / s->temperature, *z = b->p;
        for (int i = 0; i < n; i++) z[i] = logits[i] * invT;
        float mx = z[argmax(z, n)];
        /* Candidates: tokens within e^-40 of the best. Any token below that has
         * probability < e^-40 and never changes the kept set (the mass above it
         * exceeds p) unless p = 1, where nothing is filtered anyway. */
        int nc = 0;
        for (int i = 0; i < n; i++)
            if (z[i] >= mx - 40.0f || s->top_p >= 1.0f) b->c[nc++] = (gr_cand){z[i], i};
        qsort(b->c, (size_t)nc, sizeof *b->c, cmp_desc);
        int kept = nc;
        if (s->top_k > 0 && s->top_k < kept) kept = s->top_k;
        /* softmax over the top-k survivors (all tokens when top-k is off) */
        double total = 0;
        if (s->top_k > 0 && s->top_k < n) {
            for (int r = 0; r < kept; r++) total += exp((double)b->c[r].v - mx);
        } else {
            for (int i = 0; i < n; i++) total += exp((double)z[i] - mx);
        }
        if (s->top_p < 1.0f) {
            double above = 0;
            int r = 0;
            while (r < kept) {
                if (r > 0 && above >= s->top_p) break; /* the argmax is always kept */
                above += exp((double)b->c[r].v - mx) / total;
                r++;
            }
            kept = r;
        }
        double mass = 0;
        for (int r = 0; r < kept; r++) mass += exp((double)b->c[r].v - mx);
        double u = gr_rng_uniform(rng) * mass, acc = 0;
        tok = b->c[kept - 1].id;
        for (int r = 0; r < kept; r++) {
            acc += exp((double)b->c[r].v - mx);
            if (u < acc) {
                tok = b->c[r].id;
                break;
            }
        }
    }
    if (logprob) *logprob = gr_logprob(logits, n, tok);
    return tok;
}
