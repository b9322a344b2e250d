/* The LLaMA model: configuration, weights, loaders.
 *
 * One loaded gr_model is read-only (llama2.c's rule): many requests, sequences and
 * threads share it; everything that changes while running (activations, the KV
 * cache) lives in gr_state / gr_kv (forward.h).
 *
 * Weights are 2-D row-major matrices stored [out][in] (Hugging Face's layout;
 * y = x·Wᵀ). A matrix keeps its file type where the matmul kernels read it
 * directly (F32, F16, BF16, Q8_0, Q4_0, Q4_1) and points into the memory-mapped file;
 * other quantized types are dequantized to F32 once, at load. Norm weights are
 * always F32. */
#ifndef GR_MODEL_H
#define GR_MODEL_H
#include <stddef.h>
#include <stdint.h>
#include "gr_common.h"

#define GR_MAX_EOS 8

typedef struct gr_model_config {
    int dim;            /* hidden_size */
    int hidden_dim;     /* intermediate_size */
    int n_layers;       /* num_hidden_layers */
    int n_heads;        /* num_attention_heads */
    int n_kv_heads;     /* num_key_value_heads (default n_heads) */
    int head_dim;       /* head_dim (default dim / n_heads) */
    int vocab_size;
    int max_pos;        /* max_position_embeddings */
    float norm_eps;     /* rms_norm_eps */
    float rope_theta;
    int rope_llama3;    /* rope_scaling.rope_type == "llama3" */
    float rope_factor, rope_low_freq, rope_high_freq;
    int rope_orig_max;  /* original_max_position_embeddings */
    int tie_embeddings;
    int bos_id;         /* -1 when unknown */
    int eos_ids[GR_MAX_EOS];
    int n_eos;
    char torch_dtype[16];
} gr_model_config;

/* Parses a Hugging Face config.json (LlamaForCausalLM). `name` prefixes errors. */
int gr_config_parse(const char *json, size_t len, const char *name, gr_model_config *cfg,
                    gr_err *err);
/* Checks the values are consistent and in range (also used for GGUF metadata). */
int gr_config_check(const gr_model_config *cfg, const char *name, gr_err *err);
/* RoPE inverse frequencies, head_dim/2 of them, with the llama3 adjustment. */
void gr_rope_inv_freq(const gr_model_config *cfg, float *inv);

/* Matrix element types (same numbering as ggml for the ones both know). */
enum gr_dtype { GR_F32 = 0, GR_F16 = 1, GR_Q4_0 = 2, GR_Q4_1 = 3, GR_Q8_0 = 8, GR_BF16 = 30 };

typedef struct gr_tensor {
    int type;             /* enum gr_dtype */
    int64_t rows, cols;   /* [rows][cols] */
    size_t row_bytes;
    const void *data;
} gr_tensor;

typedef struct gr_layer {
    const float *attn_norm;   /* (dim) */
    gr_tensor wq;             /* (n_heads*head_dim, dim) */
    gr_tensor wk, wv;         /* (n_kv_heads*head_dim, dim) */
    gr_tensor wo;             /* (dim, n_heads*head_dim) */
    const float *ffn_norm;    /* (dim) */
    gr_tensor w_gate, w_up;   /* (hidden_dim, dim) */
    gr_tensor w_down;         /* (dim, hidden_dim) */
} gr_layer;

typedef struct gr_model {
    gr_model_config cfg;
    gr_tensor tok_emb;        /* (vocab, dim) */
    gr_layer *layers;         /* n_layers */
    const float *final_norm;  /* (dim) */
    gr_tensor lm_head;        /* (vocab, dim); == tok_emb when tied */
    float *rope_inv;          /* (head_dim/2) */
    char *path;               /* what was loaded */
    int is_gguf;
    struct gguf_file *gguf;   /* kept open for the tokenizer (NULL for a folder) */
    /* private: owned buffers and mappings */
    void **owned_;
    int n_owned_, cap_owned_;
    struct st_set_ *st_;
} gr_model;

/* Loads a Hugging Face folder (config.json + safetensors) or a .gguf file. */
/* Loads and checks: the configuration, every tensor's type and shape, and that
 * every weight is finite (gr_model_check_finite). */
gr_model *gr_model_load(const char *path, gr_err *err);
/* 0 when every weight is a finite number; else -1 naming the tensor, row and column. */
int gr_model_check_finite(const gr_model *m, gr_err *err);
void gr_model_free(gr_model *m);
int gr_model_is_eos(const gr_model *m, int token);

/* One row of a matrix as float (any supported type). */
void gr_tensor_row_f32(const gr_tensor *t, int64_t row, float *out);
#endif
