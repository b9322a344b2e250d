/* GGUF container parser (llama.cpp's file format, versions 2 and 3).
 *
 * Layout of a GGUF file (little-endian):
 *   magic "GGUF", u32 version, u64 n_tensors, u64 n_kv,
 *   n_kv × { string key, u32 type, value },
 *   n_tensors × { string name, u32 n_dims, u64 ne[n_dims], u32 ggml_type, u64 offset },
 *   padding to `general.alignment` (default 32), then the tensor data; each
 *   tensor's offset is relative to that data start.
 * A string is u64 length + bytes (no NUL). An array is u32 element type, u64 count,
 * then the elements.
 *
 * The file is memory-mapped read-only. Every count, length, offset and dimension
 * is checked against the file size before use: a truncated or hostile file gives
 * an error message, never an out-of-bounds read. Tensors must lie inside the
 * data section, be aligned, and not overlap.
 *
 * Strings (keys, string values, string-array elements, tensor names) are copied
 * out NUL-terminated, with their byte length kept beside them (a token may hold a
 * NUL byte). Numeric arrays point into the mapping (unaligned): read their
 * elements with gguf_arr_int / gguf_arr_float. */
#ifndef GR_GGUF_H
#define GR_GGUF_H
#include <stddef.h>
#include <stdint.h>
#include "gr_common.h"

enum gguf_vtype {
    GGUF_T_UINT8 = 0, GGUF_T_INT8 = 1, GGUF_T_UINT16 = 2, GGUF_T_INT16 = 3,
    GGUF_T_UINT32 = 4, GGUF_T_INT32 = 5, GGUF_T_FLOAT32 = 6, GGUF_T_BOOL = 7,
    GGUF_T_STRING = 8, GGUF_T_ARRAY = 9, GGUF_T_UINT64 = 10, GGUF_T_INT64 = 11,
    GGUF_T_FLOAT64 = 12, GGUF_T_COUNT_
};

/* ggml tensor types this parser knows the block layout of. */
enum ggml_type {
    GGML_F32 = 0, GGML_F16 = 1, GGML_Q4_0 = 2, GGML_Q4_1 = 3, GGML_Q5_0 = 6,
    GGML_Q5_1 = 7, GGML_Q8_0 = 8, GGML_Q8_1 = 9, GGML_Q2_K = 10, GGML_Q3_K = 11,
    GGML_Q4_K = 12, GGML_Q5_K = 13, GGML_Q6_K = 14, GGML_Q8_K = 15,
    GGML_I8 = 24, GGML_I16 = 25, GGML_I32 = 26, GGML_I64 = 27, GGML_F64 = 28,
    GGML_BF16 = 30, GGML_TYPE_COUNT_ = 40
};

typedef struct gguf_str {
    const char *s; /* NUL-terminated copy */
    uint64_t len;  /* bytes, not counting the NUL */
} gguf_str;

typedef struct gguf_kv {
    gguf_str key;
    uint32_t type;        /* enum gguf_vtype */
    union {
        uint64_t u;       /* UINT8..UINT64, BOOL */
        int64_t i;        /* INT8..INT64 */
        double f;         /* FLOAT32, FLOAT64 */
        gguf_str str;     /* STRING */
    } v;
    /* ARRAY only: */
    uint32_t arr_type;    /* element type (never ARRAY: nested arrays are rejected) */
    uint64_t arr_n;       /* element count */
    const uint8_t *arr_raw; /* numeric elements, packed little-endian, in the mapping */
    gguf_str *arr_str;    /* string elements (arr_type STRING), arr_n of them */
} gguf_kv;

typedef struct gguf_tensor {
    gguf_str name;
    uint32_t n_dims;      /* 1..4 */
    uint64_t ne[4];       /* ne[0] is the innermost (contiguous) dimension; unused = 1 */
    uint32_t type;        /* enum ggml_type */
    uint64_t offset;      /* from the start of the data section */
    uint64_t nbytes;
    const void *data;     /* in the mapping */
} gguf_tensor;

typedef struct gguf_file {
    uint32_t version;
    uint64_t n_kv, n_tensors;
    gguf_kv *kv;
    gguf_tensor *tensors;
    uint32_t alignment;
    uint64_t data_offset; /* file offset of the data section */
    const uint8_t *base;  /* the whole file */
    size_t size;
    /* private */
    void *map_;           /* non-NULL when we mmapped it */
    struct gguf_arena_ *arena_;
} gguf_file;

/* Maps and parses a file. NULL on error (err: "PATH: why"). */
gguf_file *gguf_open(const char *path, gr_err *err);
/* Parses a buffer the caller keeps alive (tests, fuzzing). */
gguf_file *gguf_open_mem(const void *data, size_t size, const char *name, gr_err *err);
void gguf_close(gguf_file *f);

/* Block size (elements) and bytes per block of a ggml type; 0 for an unknown type. */
int64_t ggml_type_block(uint32_t type);
int64_t ggml_type_block_bytes(uint32_t type);
const char *ggml_type_name(uint32_t type);
const char *gguf_vtype_name(uint32_t type);

/* Lookups; NULL when absent. */
const gguf_kv *gguf_find(const gguf_file *f, const char *key);
const gguf_tensor *gguf_find_tensor(const gguf_file *f, const char *name);

/* Typed getters. Each returns 0, 1 when the key is absent (out untouched), or
 * -1 with err set when it is present with an incompatible type or value. */
int gguf_get_int(const gguf_file *f, const char *key, int64_t *out, gr_err *err);   /* any integer or bool */
int gguf_get_float(const gguf_file *f, const char *key, double *out, gr_err *err);  /* float or integer */
int gguf_get_str(const gguf_file *f, const char *key, const char **out, gr_err *err);
/* Array of the given element kind: GGUF_T_STRING, or any numeric kind when
 * `want` is GGUF_T_INT64 (integers) or GGUF_T_FLOAT64 (floats or integers). */
int gguf_get_arr(const gguf_file *f, const char *key, uint32_t want, const gguf_kv **out, gr_err *err);

/* Element i (< arr_n) of a numeric array, converted (a float to an integer
 * truncates and saturates; NaN gives 0). */
int64_t gguf_arr_int(const gguf_kv *kv, uint64_t i);
double gguf_arr_float(const gguf_kv *kv, uint64_t i);
#endif
