/* UTF-8 validation, replacement and code-point counting. */
#ifndef GR_UTF8_H
#define GR_UTF8_H
#include <stddef.h>
#include <stdint.h>

/* Length of the valid UTF-8 sequence at s[0..n) (1..4), or 0 if it is invalid
 * (overlong, surrogate, > U+10FFFF, truncated, stray continuation byte).
 * On success *cp gets the code point. */
int gr_utf8_decode(const unsigned char *s, size_t n, uint32_t *cp);
/* Offset of the first invalid byte, or n when s[0..n) is valid UTF-8. */
size_t gr_utf8_check(const char *s, size_t n);
/* Offset in s of the start of the last `chars` code points (Python's s[-chars:]
 * on a valid string; invalid bytes count as one code point each). */
size_t gr_utf8_tail(const char *s, size_t n, size_t chars);
/* Encodes cp as UTF-8 into out (4 bytes room); returns its length. */
int gr_utf8_encode(uint32_t cp, char *out);
#endif
