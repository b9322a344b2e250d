# scripts/pipeline.mk - the GuardReasoner method as one Makefile experiment.
#
#   make -f scripts/pipeline.mk PROFILE=demo               # minutes, on a laptop
#   make -f scripts/pipeline.mk PROFILE=tiny               # a real small guard, ~20 min on 2 cores
#   make -f scripts/pipeline.mk PROFILE=tiny GAMMA=0.3     # re-runs mining onward only
#   make -f scripts/pipeline.mk PROFILE=paper BASE=Llama-3.2-1B/ \
#        DATA="WildGuardTrainR.json AegisTrainR.json BeaverTailsTrainR.json ToxicChatTrainR.json"
#
# The chain (paper Figure 2), every stage's output a file under $(OUT):
#
#   data/sets/SET.jsonl         reasoning data, one file per training set (alpaca
#                               records: id, instruction, input, output, source), from
#                               DATA files, from gr-synth against ENDPOINT (SEEDS), or
#                               from published traces (TRACES)
#   data/train.jsonl            every set;  data/drop-SET.jsonl  every set but SET
#   data/disjoint.ok            no evaluation request occurs in the training data
#   tok/all.jsonl, tok/drop-SET.jsonl            gr-tokenize (R-SFT token records)
#   rsft/model.safetensors                       gr-sft: M_R-SFT
#   rsft-drop-SET/model.safetensors              gr-sft: the diversity models M_R-SFT^(i):
#                               KEEP_SET always kept, one of DIVERSE_SETS dropped per model
#   data/mine.jsonl                              the records sampled (MINE_PER_SET a set,
#                               or of each MINE_DATA file)
#   samples/rsft.jsonl, samples/rsft-drop-SET.jsonl   gr-sample -k K, each model
#   pairs/self.jsonl, pairs/ensemble.jsonl       gr-mine: H_self, H_ensemble
#   tok/pairs-self.jsonl, tok/pairs-ensemble.jsonl    gr-tokenize (pair records)
#   hsdpo-self/model.safetensors, hsdpo-ensemble/...  gr-dpo: HS-DPO
#   bench/NAME.jsonl                             the evaluation inputs (EVAL, EVAL_N)
#   verdicts/MODEL/NAME.jsonl                    gr-classify, each model of EVAL_MODELS
#   eval/table.txt, eval/report.json             gr-eval: the models side by side
#
# Stamps. $(OUT)/stamps/STAGE holds the variables STAGE depends on (NAME=VALUE lines);
# it is rewritten, and so made newer than the stage's outputs, only when one of them
# changes. So GAMMA=0.3 rebuilds pairs/, tok/pairs-*, hsdpo-*, their verdicts and eval/,
# and nothing before. The stamp recipes run under `make -n` too (`+`), so a dry run
# lists exactly what a real one would (and leaves the new values in the stamps, which is
# harmless: a stamp that changed only makes its stage run again).
# THREADS, DEVICE and the batch of gr-classify / gr-sample change speed, not results,
# and are in no stamp.
#
# Interrupted runs: a stage whose output is missing runs again; gr-sft and gr-dpo continue
# from their newest checkpoint (SAVE_EVERY) when their inputs are unchanged, gr-sample
# and gr-classify from their partial output (--resume).
#
# Profiles (scripts/profiles/NAME.mk) set the variables; any VAR=VALUE on the command
# line wins over the profile. The profiles and their measured cost: gr(7), README.

ROOT := $(abspath $(dir $(lastword $(MAKEFILE_LIST)))/..)
PROFILE ?= demo
OUT     ?= runs/$(PROFILE)
PROFILE_FILE := $(ROOT)/scripts/profiles/$(PROFILE).mk
ifeq ($(wildcard $(PROFILE_FILE)),)
$(error PROFILE=$(PROFILE): no $(PROFILE_FILE) (profiles: $(notdir $(basename $(wildcard $(ROOT)/scripts/profiles/*.mk))))))
endif
.DEFAULT_GOAL := all
include $(PROFILE_FILE)

# --- the knobs (profiles set them; these are the tools' own defaults) -------------
BIN        ?= $(ROOT)/bin
BASE       ?= $(GR_MODEL)
TOKENIZER  ?= $(BASE)
TEMPLATE   ?= llama3
SYSTEM     ?=
SEED       ?= 42
DEVICE     ?=
THREADS    ?=
# reasoning data: exactly one of DATA, SEEDS (with ENDPOINT) or TRACES
DATA       ?=
ENDPOINT   ?=
SYNTH_MODEL ?= gpt-4o
SYNTH_CONCURRENCY ?= 8
SYNTH_OPTS ?=
SEEDS      ?=
TRACES     ?=
TRACES_DIR ?= $(ROOT)/testdata/predictions/1B
TRAIN_PER_SET ?= 0
TRACE_MAX_CHARS ?= 0
TRACE_MAX_OUTPUT_CHARS ?= 0
KEEP_SET   ?=
DIVERSE_SETS ?=
CHECK_DISJOINT ?= 1
# R-SFT
CUTOFF     ?= 2048
DROP_LONG  ?= 0
SFT_LR     ?= 5e-5
SFT_EPOCHS ?= 3
SFT_MICRO_BATCH ?= 6
SFT_GRAD_ACCUM  ?= 16
SFT_WARMUP ?= 0
SFT_MAX_STEPS ?= 0
DIVERSE_SFT_EPOCHS ?= $(SFT_EPOCHS)
# sampling and mining
MINE_PER_SET ?= 0
MINE_DATA  ?=
K          ?= 4
TEMPERATURE ?= 0.7
TOP_P      ?= 0.95
SAMPLE_MAX_TOKENS ?= 2048
SAMPLE_BATCH ?= 16
GAMMA      ?= 0.2
MINE_OPTS  ?=
# HS-DPO; HSDPO names the pair sets trained on (self, ensemble)
HSDPO      ?= $(if $(strip $(DIVERSE_SETS)),ensemble,self)
DPO_LR     ?= 5e-6
DPO_EPOCHS ?= 2
DPO_MICRO_BATCH ?= 1
DPO_GRAD_ACCUM  ?= 64
BETA       ?= 0.01
FTX        ?= 2
DPO_MAX_STEPS ?= 0
SAVE_EVERY ?= 0
# evaluation: EVAL is NAME:TASK=FILE..., FILE an alpaca or interaction benchmark file
EVAL       ?=
EVAL_N     ?= 0
EVAL_MODELS ?= base rsft $(HSDPO:%=hsdpo-%)
CLASSIFY_TEMPLATE ?= $(TEMPLATE)
CLASSIFY_MAX_TOKENS ?= 2048
CLASSIFY_BATCH ?= 16
PARSE_FAILURES ?= reference
EVAL_FORMAT ?= table

# --- derived ----------------------------------------------------------------------
set_of_file = $(basename $(basename $(notdir $(patsubst %.zst,%,$(1)))))
SETS := $(strip $(if $(DATA),$(foreach f,$(DATA),$(call set_of_file,$(f))),\
          $(if $(SEEDS),$(foreach s,$(SEEDS),$(firstword $(subst =, ,$(s)))),\
            $(foreach t,$(TRACES),$(firstword $(subst :, ,$(t)))))))
DROPS := $(if $(strip $(KEEP_SET)),$(DIVERSE_SETS))
RSFT_MODELS := rsft $(DROPS:%=rsft-drop-%)
EVAL_FILES := $(sort $(foreach e,$(EVAL),$(lastword $(subst =, ,$(e)))))
bench_name = $(basename $(basename $(notdir $(patsubst %.zst,%,$(1)))))
BENCHES := $(foreach f,$(EVAL_FILES),$(call bench_name,$(f)))
opt_threads := $(if $(THREADS),--threads $(THREADS))
# the endpoint without its secrets (userinfo, query values), for the data stamp
ENDPOINT_SHOWN := $(if $(ENDPOINT),$(shell printf '%s\n' '$(subst ','\'',$(ENDPOINT))' | sed -E 's#//[^/@]*@#//***@#; s#([?&][^=&]*)=[^&]*#\1=***#g'))
opt_device := $(if $(DEVICE),--device $(DEVICE))
opt_system := $(if $(SYSTEM),--system '$(SYSTEM)')
TOOLS := $(addprefix $(BIN)/,gr-synth gr-tokenize gr-sft gr-sample gr-mine gr-dpo gr-classify gr-eval)
S := $(OUT)/stamps
q = '$(subst ','\'',$(1))'

ifeq ($(strip $(SETS)),)
$(error no reasoning data: set DATA=FILE..., SEEDS=SET=FILE... with ENDPOINT=URL, or TRACES=BENCH:TASK...)
endif
ifeq ($(strip $(EVAL)),)
$(error no evaluation sets: set EVAL=NAME:TASK=FILE...)
endif
ifneq ($(words $(BENCHES)),$(words $(sort $(BENCHES))))
$(error EVAL: two files share a name ($(BENCHES)); give them distinct file names)
endif
ifneq ($(strip $(KEEP_SET)),)
ifeq ($(filter $(KEEP_SET),$(SETS)),)
$(error KEEP_SET=$(KEEP_SET) is not one of the sets ($(SETS)))
endif
endif

.PHONY: all table stamps clean-run FORCE
.DELETE_ON_ERROR:
.SECONDARY:

# SHOW_VERDICTS=N: print the last model's first N verdicts before the table
SHOW_VERDICTS ?= 0
all: $(OUT)/eval/table.txt
ifneq ($(SHOW_VERDICTS),0)
	@for f in $(OUT)/verdicts/$(lastword $(EVAL_MODELS))/*.jsonl; do head -n $(SHOW_VERDICTS) $$f; done | \
		jq -r '"\(.id): \(.pred | [.request, .completion, .response] | map(. // "-") | join(" / "))   (gold \(.label | if type == "object" then [.request, .completion, .response] | map(. // "-") | join(" / ") else . end))"'
endif
	@cat $<

table:
	@cat $(OUT)/eval/table.txt

clean-run:
	rm -rf $(OUT)

$(BIN)/gr-%:
	$(MAKE) -C $(ROOT) bin/gr-$*

# --- stamps: one per stage, rewritten only when its variables change ----------------
# $(call stamp,NAME,VARS)
define stamp
$(S)/$(1): FORCE
	+@mkdir -p $$(@D); { $$(foreach v,$(2),printf '%s\n' $$(call q,$$(v)=$$($$(v)));) } > $$@.new; \
	if cmp -s $$@.new $$@; then rm -f $$@.new; else [ ! -e $$@ ] || echo "pipeline: the $(1) settings changed"; mv $$@.new $$@; fi
endef
$(eval $(call stamp,data,DATA SEEDS ENDPOINT_SHOWN SYNTH_MODEL SYNTH_OPTS TRACES TRACES_DIR TRAIN_PER_SET TRACE_MAX_CHARS TRACE_MAX_OUTPUT_CHARS))
$(eval $(call stamp,tokens,TOKENIZER TEMPLATE SYSTEM CUTOFF DROP_LONG))
$(eval $(call stamp,rsft,BASE SFT_LR SFT_EPOCHS SFT_MICRO_BATCH SFT_GRAD_ACCUM SFT_WARMUP SFT_MAX_STEPS DIVERSE_SFT_EPOCHS SEED))
$(eval $(call stamp,sample,MINE_DATA MINE_PER_SET K TEMPERATURE TOP_P SAMPLE_MAX_TOKENS SEED))
$(eval $(call stamp,mine,GAMMA MINE_OPTS))
$(eval $(call stamp,dpo,DPO_LR DPO_EPOCHS DPO_MICRO_BATCH DPO_GRAD_ACCUM BETA FTX DPO_MAX_STEPS SEED))
$(eval $(call stamp,bench,EVAL EVAL_N))
$(eval $(call stamp,classify,CLASSIFY_TEMPLATE CLASSIFY_MAX_TOKENS SYSTEM))
$(eval $(call stamp,base,BASE TOKENIZER))
$(eval $(call stamp,eval,EVAL EVAL_MODELS PARSE_FAILURES EVAL_FORMAT))

# a partial output (gr-sample, gr-classify --resume) older than an input is of another
# configuration: start it again
drop_stale_part = for p in $(filter-out FORCE,$^); do [ ! -e $(1) ] || [ ! $$p -nt $(1) ] || rm -f $(1); done

# --- 1. reasoning data ---------------------------------------------------------------
# Records get `source` (their set) and an id when they have none.
number_records = jq -nc --arg set $(2) 'foreach (inputs | if type == "array" then .[] else . end) as $$r \
	(-1; . + 1; $$r + {id: ($$r.id // "\($$set):\(.)"), source: ($$r.source // $$set)})' $(1)
limit_per_set = $(if $(filter-out 0,$(TRAIN_PER_SET)),| head -n $(TRAIN_PER_SET))

ifneq ($(strip $(DATA)),)
# DATA=FILE...: GuardReasonerTrain's alpaca form; the set is the file's name (WildGuardTrainR)
define data_rule
$(OUT)/data/sets/$(call set_of_file,$(1)).jsonl: $(1) $(S)/data
	@mkdir -p $$(@D)
	zstd -dcf $$< | $$(call number_records,,$(call set_of_file,$(1))) $$(limit_per_set) > $$@.tmp && mv $$@.tmp $$@
endef
$(foreach f,$(DATA),$(eval $(call data_rule,$(f))))
else ifneq ($(strip $(SEEDS)),)
# SEEDS=SET=FILE...: gr-synth asks ENDPOINT for the reasoning of each labelled seed. FILE
# is mapped to gr-synth's interaction records by scripts/seeds/<set>.jq, else by
# scripts/seeds/<file name>.jq (both in lower case: WildGuardTrainR=wildguardtrain.jsonl
# takes wildguardtrain.jq), else read as it is. The key comes from $OPENAI_API_KEY and
# the URL reaches gr-synth as $OPENAI_BASE_URL (exported to the recipe, never on a
# command line), so neither is printed, nor listed by make -n; the data stamp holds
# the URL with its userinfo and query values cut (ENDPOINT_SHOWN). gr-synth resumes
# from its partial output (data/sets/SET.jsonl.part), paying nothing twice.
ifeq ($(strip $(ENDPOINT)),)
$(error SEEDS needs ENDPOINT=URL (an OpenAI-compatible server))
endif
lc = $(shell printf '%s' '$(1)' | tr A-Z a-z)
seed_map = $(firstword $(wildcard $(ROOT)/scripts/seeds/$(call lc,$(1)).jq $(ROOT)/scripts/seeds/$(call lc,$(call set_of_file,$(2))).jq))
define seed_rule
$(OUT)/data/sets/$(1).jsonl: export OPENAI_BASE_URL := $$(ENDPOINT)
$(OUT)/data/sets/$(1).jsonl: $(2) $(S)/data | $(BIN)/gr-synth
	@mkdir -p $$(@D)
	$(BIN)/gr-synth --model $(call q,$(SYNTH_MODEL)) -j $(SYNTH_CONCURRENCY) $(SYNTH_OPTS) \
		$(if $(call seed_map,$(1),$(2)),--map "$$$$(cat $(call seed_map,$(1),$(2)))") -o $$@.part $$<
	$$(call number_records,$$@.part,$(1)) $$(limit_per_set) > $$@.tmp && mv $$@.tmp $$@ && rm -f $$@.part
endef
$(foreach s,$(SEEDS),$(eval $(call seed_rule,$(firstword $(subst =, ,$(s))),$(lastword $(subst =, ,$(s))))))
else
# TRACES=BENCH:TASK...: a guard's published reasoning traces (GuardReasoner's
# generated_predictions.jsonl under TRACES_DIR/BENCH/), only those whose answer for TASK
# agrees with the gold label (scripts/traces.jq)
define trace_rule
$(OUT)/data/sets/$(1).jsonl: $(S)/data
	@mkdir -p $$(@D)
	zstd -dcf $(TRACES_DIR)/$(1)/generated_predictions.jsonl* | \
		jq -c --arg set $(1) --arg task $(2) --argjson keep true --argjson max_chars $(TRACE_MAX_CHARS) --argjson max_output_chars $(TRACE_MAX_OUTPUT_CHARS) -f $(ROOT)/scripts/traces.jq $$(limit_per_set) > $$@.tmp && mv $$@.tmp $$@
	@echo "pipeline: $(1): $$$$(wc -l < $$@) label-consistent traces of $$$$(zstd -dcf $(TRACES_DIR)/$(1)/generated_predictions.jsonl* | wc -l)$(if $(filter-out 0,$(TRAIN_PER_SET)), (at most $(TRAIN_PER_SET) kept))"
endef
$(foreach t,$(TRACES),$(eval $(call trace_rule,$(firstword $(subst :, ,$(t))),$(lastword $(subst :, ,$(t))))))
endif

$(OUT)/data/train.jsonl: $(SETS:%=$(OUT)/data/sets/%.jsonl)
	cat $^ > $@.tmp && mv $@.tmp $@

# the diversity models' data: KEEP_SET and every diverse set but one
$(OUT)/data/drop-%.jsonl: $(SETS:%=$(OUT)/data/sets/%.jsonl)
	cat $(filter-out %/$*.jsonl,$^) > $@.tmp && mv $@.tmp $@

# the records sampled for mining: the first MINE_PER_SET of each set (0: all), or of each
# MINE_DATA file when it is given (records with a gold label: an answer block in the
# output, or a label object). Their gold answers are the output's answer block
# (GuardReasonerTrain, gr-synth: all three answers agree with the labels); a record with
# a label object (TRACES: one task checked, the other two answers the publishing
# model's own) is mined on that label alone.
MINE_FROM = $(if $(strip $(MINE_DATA)),$(MINE_DATA),$(SETS:%=$(OUT)/data/sets/%.jsonl))
$(OUT)/data/mine.jsonl: $(MINE_FROM) $(S)/sample
	for f in $(MINE_FROM); do zstd -dcf $$f | jq -nc --argjson n $(MINE_PER_SET) \
		'[inputs | if type == "array" then .[] else . end] | if $$n > 0 then .[:$$n] else . end | .[]'; done \
		| jq -c 'if (.label | type) == "object" then del(.output) else . end' > $@.tmp && mv $@.tmp $@

# No request of an evaluation set may be trained on: the user's request of every
# evaluation record (alpaca input's "Human user:" part, or an interaction's prompt)
# against every training record's.
requests = jq -r 'if .input then (.input | split("\nHuman user:\n") | if length > 1 then .[1] else .[0] | ltrimstr("Human user:\n") end \
	| split("\n\nAI assistant:\n")[0]) else .prompt end | tojson'
$(OUT)/data/disjoint.ok: $(OUT)/data/train.jsonl $(BENCHES:%=$(OUT)/bench/%.jsonl)
ifeq ($(CHECK_DISJOINT),1)
	$(requests) $(OUT)/data/train.jsonl | LC_ALL=C sort -u > $@.train
	$(requests) $(BENCHES:%=$(OUT)/bench/%.jsonl) | LC_ALL=C sort -u > $@.eval
	@n=$$(LC_ALL=C comm -12 $@.train $@.eval | wc -l); rm -f $@.train $@.eval; \
	if [ $$n -ne 0 ]; then echo "pipeline: $$n evaluation requests occur in the training data" >&2; exit 1; fi; \
	echo "pipeline: training and evaluation requests are disjoint"
endif
	@touch $@

# --- 2. R-SFT --------------------------------------------------------------------------
$(OUT)/tok/all.jsonl: $(OUT)/data/train.jsonl $(OUT)/data/disjoint.ok $(S)/tokens | $(BIN)/gr-tokenize
	@mkdir -p $(@D)
	$(BIN)/gr-tokenize -t $(TOKENIZER) --template $(TEMPLATE) $(opt_system) --cutoff $(CUTOFF) $(if $(filter 1,$(DROP_LONG)),--drop-long) -o $@ $<
$(OUT)/tok/drop-%.jsonl: $(OUT)/data/drop-%.jsonl $(OUT)/data/disjoint.ok $(S)/tokens | $(BIN)/gr-tokenize
	@mkdir -p $(@D)
	$(BIN)/gr-tokenize -t $(TOKENIZER) --template $(TEMPLATE) $(opt_system) --cutoff $(CUTOFF) $(if $(filter 1,$(DROP_LONG)),--drop-long) -o $@ $<

# A training stage resumes from its newest checkpoint only when its inputs are the ones
# the checkpoint was made from (DIR/.pipeline-inputs: the stamps and the data's checksum).
# $(call train,DIR,INPUT-FILES,COMMAND)
define train
	@{ cat $(filter $(S)/%,$^); cksum < $(2); } > $(1).inputs; \
	if cmp -s $(1).inputs $(1)/.pipeline-inputs && ls -d $(1)/checkpoint-* >/dev/null 2>&1; then \
		echo "pipeline: $(1): resuming"; touch $(1)/.resume; \
	else rm -rf $(1); mkdir -p $(1); fi; mv -f $(1).inputs $(1)/.pipeline-inputs
	$(3) $$([ -e $(1)/.resume ] && echo --resume); rc=$$?; rm -f $(1)/.resume; exit $$rc
endef

sft = $(BIN)/gr-sft --base $(BASE) --data $(1) --out $(2) --lr $(SFT_LR) --epochs $(3) \
	--micro-batch $(SFT_MICRO_BATCH) --grad-accum $(SFT_GRAD_ACCUM) --warmup-steps $(SFT_WARMUP) \
	--cutoff $(CUTOFF) --seed $(SEED) $(if $(filter-out 0,$(SFT_MAX_STEPS)),--max-steps $(SFT_MAX_STEPS)) \
	--save-every $(SAVE_EVERY) --log $(2)/log.jsonl --quiet $(opt_threads) $(opt_device)

$(OUT)/rsft/model.safetensors: $(OUT)/tok/all.jsonl $(S)/rsft | $(BIN)/gr-sft
	$(call train,$(OUT)/rsft,$<,$(call sft,$<,$(OUT)/rsft,$(SFT_EPOCHS)))
$(OUT)/rsft-drop-%/model.safetensors: $(OUT)/tok/drop-%.jsonl $(S)/rsft | $(BIN)/gr-sft
	$(call train,$(OUT)/rsft-drop-$*,$<,$(call sft,$<,$(OUT)/rsft-drop-$*,$(DIVERSE_SFT_EPOCHS)))

# --- 3. sampling and mining ------------------------------------------------------------
$(OUT)/samples/%.jsonl: $(OUT)/%/model.safetensors $(OUT)/data/mine.jsonl $(S)/sample | $(BIN)/gr-sample
	@mkdir -p $(@D); $(call drop_stale_part,$@.part)
	$(BIN)/gr-sample -m $(OUT)/$* -t $(TOKENIZER) --template $(TEMPLATE) $(opt_system) -k $(K) --temperature $(TEMPERATURE) \
		--top-p $(TOP_P) --max-tokens $(SAMPLE_MAX_TOKENS) --seed $(SEED) --batch $(SAMPLE_BATCH) --model-name $* \
		$(opt_threads) $(opt_device) -q -o $@.part --resume $(OUT)/data/mine.jsonl
	mv $@.part $@

$(OUT)/pairs/self.jsonl: $(OUT)/samples/rsft.jsonl $(S)/mine | $(BIN)/gr-mine
	@mkdir -p $(@D)
	$(BIN)/gr-mine --self $< --gamma $(GAMMA) $(MINE_OPTS) -o $@
$(OUT)/pairs/ensemble.jsonl: $(OUT)/samples/rsft.jsonl $(DROPS:%=$(OUT)/samples/rsft-drop-%.jsonl) $(S)/mine | $(BIN)/gr-mine
	@mkdir -p $(@D)
	$(BIN)/gr-mine --self $< $(foreach d,$(DROPS),--other $(OUT)/samples/rsft-drop-$(d).jsonl) --gamma $(GAMMA) $(MINE_OPTS) -o $@

$(OUT)/tok/pairs-%.jsonl: $(OUT)/pairs/%.jsonl $(S)/tokens | $(BIN)/gr-tokenize
	@mkdir -p $(@D)
	@[ -s $< ] || { echo "pipeline: $<: no hard samples were mined (raise K, MINE_PER_SET or SAMPLE_MAX_TOKENS)" >&2; exit 1; }
	$(BIN)/gr-tokenize -t $(TOKENIZER) --template $(TEMPLATE) $(opt_system) --cutoff $(CUTOFF) -o $@ $<

# --- 4. HS-DPO -------------------------------------------------------------------------
dpo = $(BIN)/gr-dpo --base $(OUT)/rsft --pairs $(1) --out $(2) --lr $(DPO_LR) --epochs $(DPO_EPOCHS) \
	--micro-batch $(DPO_MICRO_BATCH) --grad-accum $(DPO_GRAD_ACCUM) --beta $(BETA) --ftx $(FTX) \
	--cutoff $(CUTOFF) --seed $(SEED) $(if $(filter-out 0,$(DPO_MAX_STEPS)),--max-steps $(DPO_MAX_STEPS)) \
	--save-every $(SAVE_EVERY) --log $(2)/log.jsonl --quiet $(opt_threads) $(opt_device)
$(OUT)/hsdpo-%/model.safetensors: $(OUT)/tok/pairs-%.jsonl $(OUT)/rsft/model.safetensors $(S)/dpo | $(BIN)/gr-dpo
	$(call train,$(OUT)/hsdpo-$*,$<,$(call dpo,$<,$(OUT)/hsdpo-$*))

# --- 5. evaluation ---------------------------------------------------------------------
# bench/NAME.jsonl: the benchmark file, or EVAL_N of its records spread evenly over it
pick_evenly = jq -cs --argjson n $(EVAL_N) 'length as $$t | (if $$t > $$n then $$t / $$n else 1 end) as $$s \
	| [range(0; [$$n, $$t] | min) | . * $$s | floor] as $$ix | .[$$ix[]]'
define bench_rule
$(OUT)/bench/$(call bench_name,$(1)).jsonl: $(1) $(S)/bench
	@mkdir -p $$(@D)
	zstd -dcf $$< | jq -c 'if type == "array" then .[] else . end' $(if $(filter-out 0,$(EVAL_N)),| $$(pick_evenly)) > $$@.tmp && mv $$@.tmp $$@
endef
$(foreach f,$(EVAL_FILES),$(eval $(call bench_rule,$(f))))

model_path = $(if $(filter base,$(1)),$(BASE),$(OUT)/$(1))
model_dep = $(if $(filter base,$(1)),$(S)/base,$(OUT)/$(1)/model.safetensors)
define verdict_rule
$(OUT)/verdicts/$(1)/%.jsonl: $(OUT)/bench/%.jsonl $(call model_dep,$(1)) $(S)/classify | $(BIN)/gr-classify
	@mkdir -p $$(@D); $$(call drop_stale_part,$$@.part)
	$(BIN)/gr-classify -m $(call model_path,$(1)) -t $(TOKENIZER) --template $(CLASSIFY_TEMPLATE) $(opt_system) \
		--max-tokens $(CLASSIFY_MAX_TOKENS) --batch $(CLASSIFY_BATCH) --model-name $(1) $(opt_threads) $(opt_device) \
		-q -o $$@.part --resume $$<
	mv $$@.part $$@
endef
$(foreach m,$(EVAL_MODELS),$(eval $(call verdict_rule,$(m))))

eval_args = $(foreach m,$(EVAL_MODELS),--model $(m) $(foreach e,$(EVAL),$(firstword $(subst =, ,$(e)))=$(OUT)/verdicts/$(m)/$(call bench_name,$(lastword $(subst =, ,$(e)))).jsonl))
VERDICTS := $(foreach m,$(EVAL_MODELS),$(BENCHES:%=$(OUT)/verdicts/$(m)/%.jsonl))

$(OUT)/eval/table.txt: $(VERDICTS) $(S)/eval | $(BIN)/gr-eval
	@mkdir -p $(@D)
	$(BIN)/gr-eval --parse-failures $(PARSE_FAILURES) --format json -o $(OUT)/eval/report.json $(eval_args)
	$(BIN)/gr-eval --parse-failures $(PARSE_FAILURES) --format $(EVAL_FORMAT) -o $@ $(eval_args)
