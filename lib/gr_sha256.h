/* SHA-256 (FIPS 180-4), for fingerprints that must not collide by accident or
 * by design: the resume key of a record (guard_resume.c). */
#ifndef GR_SHA256_H
#define GR_SHA256_H
#include <stddef.h>
#include <stdint.h>

typedef struct gr_sha256 {
    uint32_t h[8];
    uint64_t n;          /* bytes hashed so far */
    unsigned char buf[64];
    size_t fill;
} gr_sha256;

void gr_sha256_init(gr_sha256 *s);
void gr_sha256_update(gr_sha256 *s, const void *p, size_t n);
void gr_sha256_final(gr_sha256 *s, unsigned char out[32]);
/* The first nbytes (<= 32) of the digest of p[0..n) as lowercase hex into hex
 * (2 * nbytes + 1 chars). */
void gr_sha256_hex(const void *p, size_t n, int nbytes, char *hex);
#endif
