/* --shard K/N: see record_shard.h. */
#include "record_shard.h"
#include "classify_state.h"
#include <string.h>

static int parse_u32(const char **p, uint32_t *v) {
    const char *s = *p;
    uint64_t x = 0;
    while (**p >= '0' && **p <= '9' && x <= 1000000) x = x * 10 + (uint64_t)(*(*p)++ - '0');
    if (*p == s || (*s == '0' && *p - s > 1) || x > 1000000) return -1;
    *v = (uint32_t)x;
    return 0;
}

int gr_shard_parse(const char *s, gr_shard *out, gr_err *err) {
    const char *p = s;
    uint32_t k, n;
    if (parse_u32(&p, &k) || *p++ != '/' || parse_u32(&p, &n) || *p)
        return gr_errf(err, "'%s': expected K/N, two whole numbers (1 <= K <= N <= 1000000)", s);
    if (n == 0 || k == 0 || k > n) return gr_errf(err, "'%s': K must be 1..N (shards are numbered from 1)", s);
    out->k = k;
    out->n = n;
    return 0;
}

uint32_t gr_shard_of(jv id, uint32_t n) {
    jv d = jv_dump_string(jv_copy(id), 0);
    const char *t = jv_string_value(d);
    uint64_t h = gr_fnv1a64(GR_FNV_INIT, t, strlen(t));
    jv_free(d);
    return (uint32_t)(h % n) + 1;
}

int gr_shard_mine(const gr_shard *s, jv id) {
    if (!s || s->n <= 1) return 1;
    return gr_shard_of(id, s->n) == s->k;
}
