#include "mine_answers.h"
#include "gr_utf8.h"
#include <string.h>

/* The class of the code point at s[i..n), its byte length in *k (1 for an
 * invalid byte, whose class is 0). */
static int class_at(const unsigned char *s, size_t n, size_t i, int *k) {
    uint32_t cp;
    *k = gr_utf8_decode(s + i, n - i, &cp);
    if (*k == 0) {
        *k = 1;
        return 0;
    }
    return gr_pyre_class(cp);
}

int gr_mine_re_word(const char *text, size_t n, const char *key, size_t *off, size_t *len) {
    const unsigned char *s = (const unsigned char *)text;
    size_t kn = strlen(key);
    if (kn == 0 || n < kn) return 0;
    /* re.search tries each start in turn; the key is a literal, so a start is
     * a place where the key occurs, and \s* then (\w+) either match there
     * (\s and \w are disjoint, so the greedy \s* never backtracks into the
     * word) or the search moves on to the key's next occurrence. */
    for (size_t i = 0; i + kn <= n; i++) {
        if (s[i] != (unsigned char)key[0] || memcmp(s + i, key, kn) != 0) continue;
        size_t j = i + kn;
        int k;
        while (j < n && class_at(s, n, j, &k) == GR_PYRE_SPACE) j += (size_t)k;
        size_t w = j;
        while (w < n && class_at(s, n, w, &k) == GR_PYRE_WORD) w += (size_t)k;
        if (w > j) {
            *off = j;
            *len = w - j;
            return 1;
        }
    }
    return 0;
}
