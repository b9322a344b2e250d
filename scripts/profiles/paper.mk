# paper: GuardReasoner's hyper-parameters (paper, appendix "Implementation details"), for
# a GPU machine. Give the base model and GuardReasonerTrain's four files:
#   make -f scripts/pipeline.mk PROFILE=paper BASE=Llama-3.2-1B/ \
#        DATA="WildGuardTrainR.json AegisTrainR.json BeaverTailsTrainR.json ToxicChatTrainR.json" \
#        BENCH_DIR=GuardReasoner/data/benchmark
# (or SEEDS="WildGuardTrainR=wildguardtrain.jsonl ..." ENDPOINT=URL to synthesize them).
#
# Expected cost, per stage, for Llama-3.2-1B (1.24e9 parameters; 6 N FLOP per trained
# token, 2 N per generated token). Tokens: GuardReasonerTrain has 127K records; with the
# llama3 template GuardReasoner-1B's traces measure 404-408 tokens (prompt + reasoning)
# on the request-only benchmarks and 585-928 with a response (gr-tokenize over
# testdata/predictions/1B/), so ~600 per record: ~76M tokens an epoch.
#   R-SFT, 3 epochs            229M tokens   1.7e18 FLOP
#   3 diversity R-SFT models   ~3 x 2/3 of that (each drops one of the smaller sets;
#                              WildGuardTrain is 68% of the records): ~3.7e18 FLOP
#   sampling, k=4, 4 models    127K x 4 x 4 x ~300 generated tokens = 610M tokens,
#                              1.5e18 FLOP (decode: memory-bound on a GPU, not FLOP-bound)
#   HS-DPO, 2 epochs           23K pairs (paper, 1B) x ~1,300 tokens (prompt + 2 answers)
#                              x 2 epochs = 60M tokens: ~5e17 FLOP with the reference pass
# Hours per stage from the throughput measured here (README, "Measured performance"):
# gr-sft trains SmolLM2-135M at 150-186 tokens/s on 2 shared EPYC cores, i.e. ~1.4e11
# FLOP/s (6 x 1.35e8 x ~170); gr-sample decodes 104 tokens/s at batch 48 with that
# model, ~11 tokens/s scaled to 1.24e9 parameters. On those 2 cores the paper profile
# would take R-SFT ~3,400 h, the diversity models ~7,300 h, sampling ~15,000 h, HS-DPO
# ~1,000 h: ~27,000 hours, so it is not for a CPU. On a GPU (not measured: no GPU
# figure exists yet; every tool takes DEVICE=cuda, the training code is compiled but has
# never run) at 40% of an H200's ~1e15 bf16 FLOP/s: ~1.2 h for R-SFT,
# ~2.6 h for the diversity models, ~2 h of sampling (decode is memory-bound; vLLM-class
# throughput) and ~0.4 h of HS-DPO, about 6 GPU-hours before the evaluation (10
# benchmarks, 11,749 records x ~300 generated tokens: ~3.5M tokens, minutes). The paper used
# 4 devices; the batch sizes below are the totals.
BASE      ?= $(GR_MODEL)
TEMPLATE  = llama3
KEEP_SET  = WildGuardTrainR
DIVERSE_SETS = AegisTrainR BeaverTailsTrainR ToxicChatTrainR
CUTOFF    = 2048
# R-SFT: lr 5e-5, cosine, 3 epochs, batch 384 = 16 (accumulation) x 6 (batch) x 4 devices
SFT_LR    = 5e-5
SFT_EPOCHS = 3
SFT_MICRO_BATCH = 6
SFT_GRAD_ACCUM  = 64
# generation: k = 4, T = 0.7, top-p 0.95 (the appendix text says T = 1.0; 0.7 is the
# setting of the released sampling script and the issue; TEMPERATURE=1.0 for the text's)
K         = 4
TEMPERATURE = 0.7
TOP_P     = 0.95
SAMPLE_MAX_TOKENS = 2048
GAMMA     = 0.2
# HS-DPO on H_ensemble (and H_self, the paper's ablation): lr 5e-6, 2 epochs,
# batch 256 = 64 (accumulation) x 1 (batch) x 4 devices, beta 0.01, SFT term 2
HSDPO     = ensemble self
DPO_LR    = 5e-6
DPO_EPOCHS = 2
DPO_MICRO_BATCH = 1
DPO_GRAD_ACCUM  = 256
BETA      = 0.01
FTX       = 2
SAVE_EVERY = 100
# the paper's benchmarks (GuardReasoner's data/benchmark/ files), scored as its tables;
# WildGuardTest's labels are not in these files (gr-eval --layout reads them)
BENCH_DIR ?= data/benchmark
EVAL = ToxicChat:prompt=$(BENCH_DIR)/0_8_toxic_chat.json \
       OpenAIModeration:prompt=$(BENCH_DIR)/0_2_OpenAIModeration.json \
       AegisSafetyTest:prompt=$(BENCH_DIR)/0_1_AegisSafetyTest.json \
       SimpleSafetyTests:prompt=$(BENCH_DIR)/0_0_SimpleSafetyTests.json \
       HarmBenchPrompt:prompt=$(BENCH_DIR)/0_3_harmbench_prompt.json \
       HarmBenchResponse:response=$(BENCH_DIR)/0_5_harmbench_response.json \
       SafeRLHF:response=$(BENCH_DIR)/0_9_safe_rlhf.json \
       BeaverTails:response=$(BENCH_DIR)/0_A_beaver_tails.json \
       XSTestReponseHarmful:response=$(BENCH_DIR)/0_6_xstest_response_harmful.json \
       XSTestResponseRefusal:refusal=$(BENCH_DIR)/0_7_xstest_response_refusal.json
EVAL_N    = 0
CLASSIFY_TEMPLATE = raw
CLASSIFY_MAX_TOKENS = 2048
PARSE_FAILURES = reference
