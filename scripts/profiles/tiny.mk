# tiny: a real small guard trained end to end on the CPU, about 20 minutes on 2 cores.
# SmolLM2-135M-Instruct (the test model) is R-SFT-trained on GuardReasoner-1B's
# label-consistent reasoning traces, two diversity models beside it, k samples of each
# on the mining records, H_ensemble mined, HS-DPO; then base, R-SFT and HS-DPO are
# classified on held-out benchmarks and printed side by side. Measured cost: README.
include $(ROOT)/scripts/profiles/common/traces.mk
BASE      = $(shell $(ROOT)/scripts/fetch-test-model)
TEMPLATE  = chatml
THREADS   = 2
# whole traces only: prompt + trace <= 3000 characters and the trace <= 1100 (~260
# tokens, answer block included, so that the reasoning the model learns fits in
# SAMPLE_MAX_TOKENS: with traces up to 1,500 characters 102 of 180 samples were cut at
# 320 tokens and gr-mine found 3 pairs); HarmBenchResponse has 30 such traces, then
# <= 768 tokens
TRACE_MAX_CHARS = 3000
TRACE_MAX_OUTPUT_CHARS = 1100
TRAIN_PER_SET   = 16
CUTOFF    = 768
DROP_LONG = 1
SFT_LR    = 1e-4
SFT_EPOCHS = 2
DIVERSE_SFT_EPOCHS = 2
SFT_MICRO_BATCH = 4
SFT_GRAD_ACCUM  = 1
SFT_WARMUP = 2
MINE_PER_SET = 4
K         = 4
TEMPERATURE = 0.7
TOP_P     = 0.95
SAMPLE_MAX_TOKENS = 320
GAMMA     = 0.2
# the traces' gold label is one task (the other two answers are unchecked): mining
# reads each task's answer on its own (gr-mine --answers eval)
MINE_OPTS = --answers eval
DPO_LR    = 1e-5
DPO_EPOCHS = 2
DPO_MICRO_BATCH = 1
DPO_GRAD_ACCUM  = 4
BETA      = 0.01
FTX       = 2
EVAL_N    = 24
CLASSIFY_MAX_TOKENS = 320
CLASSIFY_BATCH = 32
# every mining record's K samples decode together (3 x 4 x 4 = 48)
SAMPLE_BATCH = 48
PARSE_FAILURES = wrong
