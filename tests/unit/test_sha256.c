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

int main(void) {
    RUN(test_sha256_vectors);
    RUN(test_sha256_million_a_in_pieces);
    return TEST_EXIT();
}
