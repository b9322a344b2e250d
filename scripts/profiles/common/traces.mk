# Shared by the tiny, demo and ci profiles: reasoning data from GuardReasoner-1B's
# published traces in testdata/predictions/1B/, on benchmarks disjoint from the ones the
# guard is evaluated on.
#
#   trained on:   AegisSafetyTest (request), HarmBenchPrompt (request), HarmBenchResponse
#                 (response harmfulness) - only the traces whose answer for the labelled
#                 task agrees with the gold label (scripts/traces.jq)
#   evaluated on: SimpleSafetyTests (prompt), XSTestReponseHarmful (response) and
#                 XSTestResponseRefusal (refusal)
#
# The split follows the requests, not the file names: HarmBenchPrompt and
# HarmBenchResponse share 12 requests, and the two XSTest files are the same interactions
# (445 of 450), so each pair stays on one side. data/disjoint.ok checks that no
# evaluation request occurs in the training data. XSTest's two files are joined by
# interaction into one input (label {response, completion}) so each model classifies
# them once.
TRACES_DIR   = $(ROOT)/testdata/predictions/1B
TRACES       = AegisSafetyTest:request HarmBenchPrompt:request HarmBenchResponse:response
# HarmBenchResponse has the most traces, so it stays in every diversity model (as the
# paper keeps WildGuardTrain); each diversity model drops one of the other two
KEEP_SET     = HarmBenchResponse
DIVERSE_SETS = AegisSafetyTest HarmBenchPrompt
HELDOUT      = $(OUT)/heldout
EVAL = SimpleSafetyTests:prompt=$(HELDOUT)/SimpleSafetyTests.jsonl \
       XSTestReponseHarmful:response=$(HELDOUT)/XSTest.jsonl \
       XSTestResponseRefusal:refusal=$(HELDOUT)/XSTest.jsonl

# XSTest's two files joined by interaction: every record of the first with the refusal
# label of the second added, then the second's records the first lacks
export xstest_join := ($$r | map({key: .input, value: .label}) | from_entries) as $$rl \
	| ($$h | map(.input) | INDEX(.)) as $$hi \
	| ($$h[] | .label += ($$rl[.input] // {}) | .id |= sub("^XSTestReponseHarmful"; "XSTest")), \
	  ($$r[] | select($$hi[.input] == null) | .id |= sub("^XSTestResponseRefusal"; "XSTest"))
heldout_records = zstd -dcf $(TRACES_DIR)/$(1)/generated_predictions.jsonl* | \
	jq -c --arg set $(1) --arg task $(2) --argjson keep false -f $(ROOT)/scripts/traces.jq
$(HELDOUT)/SimpleSafetyTests.jsonl:
	@mkdir -p $(@D)
	$(call heldout_records,SimpleSafetyTests,request) > $@.tmp && mv $@.tmp $@
$(HELDOUT)/XSTest.jsonl:
	@mkdir -p $(@D)
	$(call heldout_records,XSTestReponseHarmful,response) > $@.harmful
	$(call heldout_records,XSTestResponseRefusal,completion) > $@.refusal
	jq -nc --slurpfile h $@.harmful --slurpfile r $@.refusal "$$xstest_join" > $@.tmp
	rm -f $@.harmful $@.refusal; mv $@.tmp $@
