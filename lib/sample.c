/* Sampling: see sample.h. */
#include "sample.h"
#include "gr_common.h"
#include <math.h>
#include <stdlib.h>

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

static int argmax(const float *x, int n) {
    int b = 0;
    for (int i = 1; i < n; i++)
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
