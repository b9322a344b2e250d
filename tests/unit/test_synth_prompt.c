/* The built-in synthesis prompt equals the shared prompt file. */
#include <stdlib.h>
#include "synth_prompt.h"
#include "test.h"

TEST(builtin_prompt_matches_file) {
    const char *shared = test_shared_dir();
    if (!shared) { printf("# no ../shared: prompt comparison skipped\n"); return; }
    char path[4200];
    snprintf(path, sizeof path, "%s/data/guardreasoner/prompts/synthesis_system.txt", shared);
    FILE *f = fopen(path, "rb");
    CHECK_MSG(f != NULL, "cannot open %s", path);
    static char buf[65536];
    size_t n = fread(buf, 1, sizeof buf, f);
    fclose(f);
    CHECK(n == strlen(synth_default_system));
    CHECK(memcmp(buf, synth_default_system, n) == 0);
    CHECK(strstr(synth_default_system, "{request}") && strstr(synth_default_system, "{refusal}") &&
          strstr(synth_default_system, "{response}"));
}

int main(void) {
    RUN(builtin_prompt_matches_file);
    return TEST_EXIT();
}
