/* Hard-sample mining (paper §2.2): from k sampled outputs per training example,
 * find the examples the model is unsure about — some samples right, some wrong
 * for a task — and turn each into a weighted preference pair.
 *
 * By default this follows GuardReasoner's train/hard_sample_mining.py (and
 * merge_hard_sample.py for the ensemble): see man/gr-mine.1 for its rules and
 * every place where we differ from it.
 *
 * Use: gr_miner_new, then gr_miner_add_file once per source (the first source is
 * H_self, the others H_ensemble's extra models), then gr_miner_pairs, which
 * mines every source on its own, weights the pairs and, with several sources,
 * takes the union (the first pair per input text, earlier sources first). */
#ifndef GR_MINE_H
#define GR_MINE_H
#include <stdint.h>
#include <jv.h>
#include "gr_common.h"
#include "gr_labels.h"

typedef enum { GR_PICK_LONGEST = 0, GR_PICK_RANDOM } gr_pick;
typedef enum { GR_NORM_SOURCE = 0, GR_NORM_UNION } gr_norm;
/* How a pair's prompt is split into instruction and input:
 * REFERENCE as GuardReasoner's DPO data (instruction without its final newline,
 * so instruction + "\n" + input drops one of the two newlines before
 * "Human user:"); EXACT keeps instruction + "\n" + input equal to the prompt. */
typedef enum { GR_SPLIT_REFERENCE = 0, GR_SPLIT_EXACT } gr_split;
/* How a sample's answers are read:
 * SCRIPT as the mining script: the first `Request:\s*(\w+)` (etc.) in the whole
 *   output, any word; a sample counts only when all three answers are there;
 * EVAL as gr-eval scores: the last tail_chars characters, the label words only
 *   (case-insensitive), each task on its own. */
typedef enum { GR_ANSWERS_SCRIPT = 0, GR_ANSWERS_EVAL } gr_answers_mode;

typedef struct gr_mine_opts {
    double gamma;         /* weights in [1-gamma, 1+gamma] (0.2) */
    gr_pick pick;
    uint64_t seed;        /* for GR_PICK_RANDOM */
    gr_norm norm;
    gr_split split;
    gr_answers_mode answers;
    int label_task;       /* task of a bare harmful/unharmful gold label (-1: request) */
    size_t tail_chars;    /* GR_ANSWERS_EVAL reads this many last characters (300) */
    const char *map;      /* --map jq program for the sample records */
    int replace_invalid_utf8;
} gr_mine_opts;

typedef struct gr_mine_stats {
    long records;             /* sample records read, all sources */
    long examples;            /* distinct examples, all sources */
    long no_gold;             /* examples without gold labels (SCRIPT: without all three) */
    long unparsed_samples;    /* SCRIPT: samples without all three answers; EVAL: without any */
    long hard[GR_NTASKS];     /* pairs per deciding task (before the union) */
    long not_hard;            /* examples with labels but all samples right, or all wrong */
    long too_few;             /* examples with fewer than 2 parseable samples for every task */
    long duplicates;          /* pairs dropped by the union (an input seen before) */
    long pairs;               /* pairs written */
} gr_mine_stats;

typedef struct gr_miner gr_miner;

gr_miner *gr_miner_new(const gr_mine_opts *opts);
/* Reads one source's sample records (sample form: prompt, label, predict — a
 * string, or an array of k strings — and optionally id, k, instruction, input;
 * other fields pass through to the pairs). Records are grouped into examples by
 * id, or by prompt and label where there is no id; the samples of an example
 * are ordered by k. 0 or -1 (err names file and line: a record without prompt
 * or predict, an id whose records disagree on prompt or label, a k that is not
 * a sample number or that appears twice for one example). */
int gr_miner_add_file(gr_miner *m, const char *path, const char *source_name, gr_err *err);
/* The pairs as an array of pair records (owned by the caller), and statistics. */
jv gr_miner_pairs(gr_miner *m, gr_mine_stats *stats);
void gr_miner_free(gr_miner *m);
#endif
