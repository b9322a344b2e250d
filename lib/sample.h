/* Next-token selection, as vLLM does it (REFERENCE-SEMANTICS §4):
 *   temperature < 1e-5: greedy, the first index of the largest logit;
 *   else z = logits / T; top-k (k > 0) keeps the k largest z; top-p keeps a
 *   token iff the probability of the tokens ranked strictly above it (softmax
 *   over the top-k survivors) is < p, i.e. the smallest top set whose mass
 *   reaches p; the argmax is always kept; then a categorical draw from the
 *   softmax over the kept tokens.
 *
 * Each sequence owns its random stream (gr_rng), seeded from (seed, stream id),
 * so a sequence's tokens depend on neither the batch it runs in nor the number
 * of threads. */
#ifndef GR_SAMPLE_H
#define GR_SAMPLE_H
#include <stdint.h>

typedef struct gr_rng {
    uint64_t s[4]; /* xoshiro256** state */
} gr_rng;

/* The stream for (seed, stream): e.g. stream = record index * k + sample number. */
void gr_rng_seed(gr_rng *r, uint64_t seed, uint64_t stream);
uint64_t gr_rng_next(gr_rng *r);
/* Uniform in [0, 1), 53 random bits. */
double gr_rng_uniform(gr_rng *r);

typedef struct gr_sampler {
    float temperature; /* < 1e-5: greedy */
    float top_p;       /* (0, 1]; 1 disables */
    int top_k;         /* <= 0 disables */
} gr_sampler;

/* Scratch space for gr_sample, sized for a vocabulary; one per thread. */
typedef struct gr_cand {
    float v;
    int id;
} gr_cand;
typedef struct gr_sample_buf {
    int n;
    float *p;
    gr_cand *c;
} gr_sample_buf;
void gr_sample_buf_init(gr_sample_buf *b, int vocab);
void gr_sample_buf_free(gr_sample_buf *b);

/* Picks the next token from logits[0..n). rng may be NULL for greedy.
 * *logprob (when not NULL) gets log softmax(logits)[token] of the raw logits
 * (temperature 1, no filtering): the model's own probability of the token. */
int gr_sample(const float *logits, int n, const gr_sampler *s, gr_rng *rng, gr_sample_buf *b,
              float *logprob);

/* log softmax(logits)[i] of the raw logits. */
float gr_logprob(const float *logits, int n, int i);
#endif
