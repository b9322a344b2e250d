/* Reading answers as GuardReasoner's train/hard_sample_mining.py reads them:
 * `re.search(r"Request:\s*(\w+)", text).group(1)` and the like — the first
 * place in the whole text where the literal key is followed by optional
 * whitespace and at least one word character; the answer is that whole run of
 * word characters, whatever word it is. Python `re` semantics for a str
 * pattern: case-sensitive, \s = str.isspace(), \w = str.isalnum() or "_"
 * (tables generated from Python by scripts/make-pyre-tables.py). */
#ifndef GR_MINE_ANSWERS_H
#define GR_MINE_ANSWERS_H
#include <stddef.h>
#include <stdint.h>

extern const uint8_t gr_pyre_index[0x1100];
extern const uint8_t gr_pyre_blocks[][64];
enum { GR_PYRE_WORD = 1, GR_PYRE_SPACE = 2 };
/* The class of code point cp (< 0x110000): GR_PYRE_WORD, GR_PYRE_SPACE or 0. */
static inline int gr_pyre_class(uint32_t cp) {
    if (cp >= 0x110000) return 0;
    return (gr_pyre_blocks[gr_pyre_index[cp >> 8]][(cp & 255) >> 2] >> ((cp & 3) * 2)) & 3;
}

/* The first match of `KEY\s*(\w+)` in text[0..n) (KEY a literal, e.g.
 * "Request:"): 1 with the word's byte span in *off, *len; 0 when nothing
 * matches. text should be valid UTF-8 (an invalid byte is neither \s nor \w). */
int gr_mine_re_word(const char *text, size_t n, const char *key, size_t *off, size_t *len);
#endif
