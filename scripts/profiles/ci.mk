# ci: the shortest run of the whole chain, for tests/cli/pipeline.sh (about 2 minutes on
# 2 cores). It checks the plumbing - every stage's output feeds the next - not the
# method's quality: the model is trained on the few published traces that are an answer
# block alone (no reasoning), so that a few steps teach it to answer and its k short
# samples disagree, which gives gr-mine hard samples to mine.
include $(ROOT)/scripts/profiles/common/traces.mk
BASE      = $(shell $(ROOT)/scripts/fetch-test-model)
TEMPLATE  = chatml
THREADS   = 2
TRACES    = AegisSafetyTest:request HarmBenchResponse:response
KEEP_SET  = HarmBenchResponse
DIVERSE_SETS = AegisSafetyTest
TRACE_MAX_OUTPUT_CHARS = 200
CUTOFF    = 512
DROP_LONG = 1
SFT_LR    = 3e-4
SFT_EPOCHS = 3
SFT_MICRO_BATCH = 2
SFT_GRAD_ACCUM  = 1
K         = 8
TEMPERATURE = 0.7
SAMPLE_MAX_TOKENS = 24
# the traces' gold label is one task: read each task's answer on its own
MINE_OPTS = --answers eval
DPO_LR    = 1e-5
DPO_EPOCHS = 1
DPO_GRAD_ACCUM = 2
EVAL_N    = 4
CLASSIFY_MAX_TOKENS = 24
PARSE_FAILURES = wrong
# Mining: label-consistent traces of the two training benchmarks whatever their
# reasoning's length (prompt + trace <= 2600 characters, to keep the prefill short), the
# first 4 of each gold label of each (16 records, 8 samples each a model). The 6 traces
# short enough to train on, mined alone, gave 3 pairs: a count that a CPU with other
# kernel paths (other last bits, so other samples) could take to 0, where the chain
# stops. Training-side benchmarks only, so no evaluation record is sampled.
MINE_DATA = $(OUT)/data/mine-sets/AegisSafetyTest.jsonl $(OUT)/data/mine-sets/HarmBenchResponse.jsonl
MINE_PER_SET = 0
$(OUT)/data/mine-sets/%.jsonl: $(OUT)/stamps/data
	@mkdir -p $(@D)
	zstd -dcf $(TRACES_DIR)/$*/generated_predictions.jsonl* | \
		jq -c --arg set $* --arg task $(lastword $(subst :, ,$(filter $*:%,$(TRACES)))) --argjson keep true --argjson max_chars 2600 \
		-f $(ROOT)/scripts/traces.jq | jq -sc 'group_by(.label | tostring) | map(.[:4]) | add | .[]' > $@.tmp && mv $@.tmp $@
