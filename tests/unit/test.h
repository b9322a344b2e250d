/* A minimal test harness: each CHECK prints nothing on success; each TEST
 * prints "ok NAME" or "not ok NAME: FILE:LINE: what" (counted by tests/run.sh).
 * Header-only on purpose: static functions, included once per test binary. */
#ifndef GR_TEST_H
#define GR_TEST_H
#include <stdio.h>
#include <string.h>
#include <math.h>
#include <stdlib.h>

static int test_failed_;     /* failures within the current TEST */
static int test_total_failed_;

#define CHECK(cond) do { if (!(cond)) { \
    printf("not ok %s: %s:%d: CHECK(%s)\n", test_name_, __FILE__, __LINE__, #cond); \
    test_failed_++; return; } } while (0)
#define CHECK_MSG(cond, ...) do { if (!(cond)) { \
    printf("not ok %s: %s:%d: ", test_name_, __FILE__, __LINE__); printf(__VA_ARGS__); \
    printf("\n"); test_failed_++; return; } } while (0)
#define CHECK_STR(a, b) do { const char *a_ = (a), *b_ = (b); \
    if (!a_ || !b_ || strcmp(a_, b_) != 0) { \
    printf("not ok %s: %s:%d: \"%s\" != \"%s\"\n", test_name_, __FILE__, __LINE__, \
           a_ ? a_ : "(null)", b_ ? b_ : "(null)"); test_failed_++; return; } } while (0)
#define CHECK_NEAR(a, b, tol) do { double a_ = (a), b_ = (b); \
    if (!(fabs(a_ - b_) <= (tol))) { \
    printf("not ok %s: %s:%d: %.9g vs %.9g (tol %g)\n", test_name_, __FILE__, __LINE__, \
           a_, b_, (double)(tol)); test_failed_++; return; } } while (0)

#define TEST(name) static void name(const char *test_name_)
#define RUN(name) do { test_failed_ = 0; name(#name); \
    if (!test_failed_) printf("ok %s\n", #name); else test_total_failed_++; } while (0)
#define TEST_EXIT() (test_total_failed_ ? 1 : 0)

/* Path of a shared data file, or NULL when ../shared is not beside the project. */
__attribute__((unused)) static const char *test_shared_dir(void) {
    static char buf[4096];
    const char *root = getenv("GR_ROOT");
    snprintf(buf, sizeof buf, "%s/../shared", root ? root : ".");
    FILE *f = fopen(buf, "r");
    if (!f) return NULL;
    fclose(f);
    return buf;
}
#endif
