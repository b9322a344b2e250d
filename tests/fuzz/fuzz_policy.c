/* libFuzzer target: the --instruction validator on arbitrary bytes. It must
 * never read past the input, its message must be a bounded string, and what
 * it accepts must hold the promised properties (valid UTF-8, no NUL or other
 * control character but tab/LF/CR, no "<|word|>" token string, not blank). */
#include <stdlib.h>
#include <string.h>
#include "gr_utf8.h"
#include "guard_policy.h"

int LLVMFuzzerTestOneInput(const unsigned char *data, size_t size) {
    /* an exact-size copy, so that ASan sees any read past the end */
    char *s = malloc(size ? size : 1);
    memcpy(s, data, size);
    gr_err err;
    if (gr_policy_check(s, size, &err) == 0) {
        if (gr_utf8_check(s, size) != size || size == 0) abort();
        int blank = 1;
        for (size_t i = 0; i < size; i++) {
            unsigned char c = (unsigned char)s[i];
            if ((c < 0x20 && c != '\t' && c != '\n' && c != '\r') || c == 0x7F) abort();
            if (c != ' ' && c != '\t' && c != '\n' && c != '\r') blank = 0;
            if (c == '<' && i + 1 < size && s[i + 1] == '|') {
                size_t j = i + 2;
                while (j < size && (s[j] == '_' || (s[j] >= 'a' && s[j] <= 'z') || (s[j] >= 'A' && s[j] <= 'Z') ||
                                    (s[j] >= '0' && s[j] <= '9')))
                    j++;
                if (j > i + 2 && j + 1 < size && s[j] == '|' && s[j + 1] == '>') abort();
            }
        }
        if (blank) abort();
    } else if (strnlen(err.msg, sizeof err.msg) >= sizeof err.msg) {
        abort();
    }
    free(s);
    return 0;
}
