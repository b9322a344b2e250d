/* libFuzzer target: what gr-synth does with an HTTP reply body from an
 * untrusted server: the chat-completions parser, the error-message extractor
 * (into buffers of several sizes), and the answer validator on the content. */
#include <stdlib.h>
#include <string.h>
#include "synth_answer.h"
#include "synth_reply.h"

int LLVMFuzzerTestOneInput(const unsigned char *data, size_t size) {
    const char *body = (const char *)data;
    synth_reply r;
    gr_err err;
    if (synth_reply_parse(body, size, &r, &err) == 0) {
        static const synth_labels gts[] = {{{"harmful", "refusal", "unharmful"}},
                                           {{"unharmful", NULL, NULL}},
                                           {{NULL, NULL, "harmful"}}};
        for (size_t i = 0; i < sizeof gts / sizeof *gts; i++) {
            synth_check c;
            synth_answer_check(r.content, r.content_len, &gts[i], &c);
            if (strlen(c.reason) >= sizeof c.reason) abort();
        }
    }
    synth_reply_free(&r);
    static const size_t caps[] = {1, 2, 5, 64, 300};
    for (size_t i = 0; i < sizeof caps / sizeof *caps; i++) {
        char *m = malloc(caps[i]);
        synth_error_message(body, size, m, caps[i]);
        if (strlen(m) >= caps[i]) abort();
        free(m);
    }
    /* the raw bytes as an answer too: the validator must not trust them */
    synth_labels gt = {{"unharmful", "compliance", "unharmful"}};
    synth_check c;
    synth_answer_check(body, size, &gt, &c);
    return 0;
}
