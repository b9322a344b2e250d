/* lib/gr_sha256 against FIPS 180-4's examples and coreutils' sha256sum. */
#include "gr_sha256.h"
#include "test.h"

TEST(test_sha256_vectors) {
    char hex[65];
    gr_sha256_hex("", 0, 32, hex);
    CHECK_STR(hex, "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
    gr_sha256_hex("abc", 3, 32, hex);
    CHECK_STR(hex, "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
    const char *two = "abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq"; /* 56 bytes: padding spills */
    gr_sha256_hex(two, strlen(two), 32, hex);
    CHECK_STR(hex, "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1");
    gr_sha256_hex("abc", 3, 8, hex);
    CHECK_STR(hex, "ba7816bf8f01cfea");
}

TEST(test_sha256_million_a_in_pieces) {
    gr_sha256 s;
    gr_sha256_init(&s);
    char a[1001];
    memset(a, 'a', sizeof a);
    for (int i = 0; i < 1000; i++) gr_sha256_update(&s, a, i % 2 ? 999 : 1001);
    unsigned char d[32];
    gr_sha256_final(&s, d);
    char hex[65];
    for (int i = 0; i < 32; i++) snprintf(hex + 2 * i, 3, "%02x", d[i]);
    CHECK_STR(hex, "cdc76e5c9914fb9281a1c7e284d73e67f1809a48a497200e046d39ccc7112cd0");
}

/* hashlib.sha256 digests at the padding edges (55, 56, 63, 64, 119 bytes) */
TEST(test_sha256_padding_edges) {
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
        gr_sha256_hex(x, v[i].n, 32, hex);
        CHECK_STR(hex, v[i].hex);
    }
}

/* all byte values (hashlib), and updates split at every offset up to 200 */
TEST(test_sha256_split_anywhere) {
    unsigned char b[768];
    for (int i = 0; i < 768; i++) b[i] = (unsigned char)i;
    char hex[65];
    gr_sha256_hex(b, sizeof b, 32, hex);
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
        for (int i = 0; i < 32; i++) snprintf(h2 + 2 * i, 3, "%02x", d[i]);
        CHECK_MSG(strcmp(h2, hex) == 0, "split at %zu: %s", cut, h2);
    }
}

int main(void) {
    RUN(test_sha256_vectors);
    RUN(test_sha256_million_a_in_pieces);
    RUN(test_sha256_padding_edges);
    RUN(test_sha256_split_anywhere);
    return TEST_EXIT();
}
