/* Fixed-order sums shared by the CPU training ops: eight partial sums (lane
 * i mod 8), then one tree. Plain C that GCC vectorizes without -ffast-math,
 * so every build sums in the same order and gets the same bits. */
#ifndef GR_CPU_ROWSUM_H
#define GR_CPU_ROWSUM_H

static inline float gr_hsum8(const float t[8]) {
    return ((t[0] + t[1]) + (t[2] + t[3])) + ((t[4] + t[5]) + (t[6] + t[7]));
}

/* Σ a[i] b[i]: eight partial sums over the multiple-of-8 head, then the tail */
static inline float gr_dot8(const float *a, const float *b, int n) {
    float s[8] = {0};
    int i = 0;
    for (; i + 8 <= n; i += 8)
        for (int q = 0; q < 8; q++) s[q] += a[i + q] * b[i + q];
    float r = gr_hsum8(s);
    for (; i < n; i++) r += a[i] * b[i];
    return r;
}
#endif
