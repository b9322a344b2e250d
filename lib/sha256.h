/* SHA-256 (FIPS 180-4): the `policy` field of a verdict is the hex digest of
 * the guard instruction the model read. tests/unit/test_sha256.c checks it
 * against the FIPS / NIST example vectors and Python's hashlib. */
#ifndef GR_SHA256_H
#define GR_SHA256_H
#include <stddef.h>
#include <stdint.h>

typedef struct gr_sha256 {
    uint32_t h[8];
    uint64_t len;            /* bytes hashed so far */
    unsigned char buf[64];   /* a partial block */
    size_t nbuf;
} gr_sha256;

void gr_sha256_init(gr_sha256 *s);
void gr_sha256_update(gr_sha256 *s, const void *data, size_t n);
void gr_sha256_final(gr_sha256 *s, unsigned char digest[32]);
/* The digest of data[0..n) as 64 lower-case hex digits and a NUL. */
void gr_sha256_hex(const void *data, size_t n, char hex[65]);
#endif
