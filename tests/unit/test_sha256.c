/* SHA-256 against the FIPS 180-4 / NIST example vectors (the first four, and
 * one million 'a') and digests computed by Python's hashlib for the padding
 * edge lengths (55, 56, 63, 64, 119 bytes) and all byte values; incremental
 * updates split at every offset give the one-shot digest. */
#include "sha256.h"
#include "test.h"

static void hex_of(const unsigned char *d, char *hex) {
    for (int i = 0; i < 32; i++) sprintf(hex + 2 * i, "%02x", d[i]);
}

TEST(sha256_fips_vectors) {
    static const struct { const char *in, *hex; } v[] = {
        {"", "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"},
        {"abc", "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"},
        {"abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq",
         "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1"},
        {"abcdefghbcdefghicdefghijdefghijkefghijklfghijklmghijklmnhijklmnoijklmnopjklmnopqklmnopqrlmnopqrsmnopqrstnopqrstu",
         "cf5b16a778af8380036ce59e7b0492370b249b11e8f07a51afac45037afee9d1"}};
    for (size_t i = 0; i < sizeof v / sizeof *v; i++) {
        char hex[65];
        gr_sha256_hex(v[i].in, strlen(v[i].in), hex);
        CHECK_STR(hex, v[i].hex);
    }
}

TEST(sha256_million_a) {
    char *a = malloc(1000000);
    memset(a, 'a', 1000000);
    char hex[65];
    gr_sha256_hex(a, 1000000, hex);
    free(a);
    CHECK_STR(hex, "cdc76e5c9914fb9281a1c7e284d73e67f1809a48a497200e046d39ccc7112cd0");
}

TEST(sha256_padding_edges) {
    static const struct { size_t n; const char *hex; } v[] = {
        {55, "d5e285683cd4efc02d021a5c62014694958901005d6f71e89e0989fac77e4072"},
        {56, "04c26261370ee7541549d16dee320c723e3fd14671e66a099afe0a377c16888e"},
        {63, "75220b47218278e656f2013bb8f0c455a25eaf01e86c64924e9d48d89776d6f2"},
        {64, "7ce100971f64e7001e8fe5a51973ecdfe1ced42befe7ee8d5fd6219506b5393c"},
        {119, "000b48d4edf0fa7bee3c6236ecd2785baa5db4eeb8bb54341b029e0d9fa5fb0c"}};
    char x[128];
    memset(x, 'x', sizeof x);
    for (size_t i = 0; i < sizeof v / sizeof *v; i++) {
        char hex[65];
        gr_sha256_hex(x, v[i].n, hex);
        CHECK_STR(hex, v[i].hex);
    }
}

TEST(sha256_all_bytes_incremental) {
    unsigned char b[768];
    for (int i = 0; i < 768; i++) b[i] = (unsigned char)i;
    char hex[65];
    gr_sha256_hex(b, sizeof b, hex);
    CHECK_STR(hex, "f3a25aa93aa2fbba28d79260535bbd6a5eb0fc1c24a8b0f04e12b484c1dfe363");
    for (size_t cut = 0; cut <= 200; cut++) {
        gr_sha256 s;
        unsigned char d[32];
        char h2[65];
        gr_sha256_init(&s);
        gr_sha256_update(&s, b, cut);
        gr_sha256_update(&s, b + cut, 0);
        gr_sha256_update(&s, b + cut, sizeof b - cut);
        gr_sha256_final(&s, d);
        hex_of(d, h2);
        CHECK_MSG(strcmp(h2, hex) == 0, "split at %zu: %s", cut, h2);
    }
}

int main(void) {
    RUN(sha256_fips_vectors);
    RUN(sha256_million_a);
    RUN(sha256_padding_edges);
    RUN(sha256_all_bytes_incremental);
    return TEST_EXIT();
}
