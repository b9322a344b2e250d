#!/usr/bin/env bash
# gr-classify and gr-sample end to end on SmolLM2-135M-Instruct (GGUF, fetched
# by scripts/fetch-test-model): record order and ids, batch/thread invariance,
# --resume, bad records, usage errors, and gr-eval reading the verdicts.
. "$(dirname "$0")/../lib.sh"
C=$GR_BIN/gr-classify
S=$GR_BIN/gr-sample

expect classify_usage_batch 2 "$C" -m x --batch 0
expect classify_usage_no_model 2 env -u GR_MODEL "$C"
expect classify_usage_resume_stdout 2 "$C" -m x --resume
expect classify_usage_template 2 "$C" -m x --template nope
expect sample_usage_k 2 "$S" -m x -k 0
expect sample_usage_top_p 2 "$S" -m x --top-p 1.5
expect classify_usage_device 2 "$C" -m x --device tpu
expect classify_usage_device_number 2 "$C" -m x --device cuda:x
expect classify_version 0 "$C" --version
grep_check classify_version_backends "$T/out" "backends: cpu"
if grep -q cuda "$T/out"; then
    # a CUDA build on a machine without a usable GPU: a runtime error naming the device
    if ! command -v nvidia-smi >/dev/null || ! nvidia-smi -L >/dev/null 2>&1; then
        printf '{"prompt":"x","response":null}\n' > "$T/dev.jsonl"
        expect classify_cuda_no_gpu 1 "$C" -m "$GR_ROOT/testdata/models/tiny-smollm2-vocab" \
            -t "$GR_ROOT/testdata/tokenizer/smollm2/tokenizer.json.zst" --device cuda "$T/dev.jsonl"
        grep_check classify_cuda_no_gpu_msg "$T/err" "cuda"
    fi
else
    expect classify_usage_device_cuda 2 "$C" -m x --device cuda:0
    grep_check classify_usage_device_cuda_msg "$T/err" "no CUDA backend"
fi
expect classify_help 0 "$C" --help
grep_check classify_help_text "$T/out" "--max-tokens"
expect classify_missing_model 1 "$C" -m /nonexistent/model.gguf /dev/null
grep_check classify_missing_model_msg "$T/err" "^gr-classify: /nonexistent/model.gguf"

# a Hugging Face folder (tiny random BF16 model with SmolLM2's vocabulary) + tokenizer.json
HF=$GR_ROOT/testdata/models/tiny-smollm2-vocab
TOK=$GR_ROOT/testdata/tokenizer/smollm2/tokenizer.json.zst
printf '{"prompt":"Is this safe?","response":"Yes."}\n{"instruction":"Classify.","input":"x"}\n' > "$T/hf.jsonl"
expect classify_hf_no_tokenizer 1 "$C" -m "$HF" "$T/hf.jsonl"
expect classify_hf_folder 0 "$C" -m "$HF" -t "$TOK" --max-tokens 12 --batch 2 "$T/hf.jsonl" -o "$T/hf1.jsonl"
[ "$(jq -s 'map(select(.tokens > 0 and (.reasoning | type) == "string")) | length' "$T/hf1.jsonl")" = 2 ] \
    && ok classify_hf_records || fail classify_hf_records "$(head -c 300 "$T/hf1.jsonl")"
expect classify_hf_batch1 0 "$C" -m "$HF" -t "$TOK" --max-tokens 12 --batch 1 --threads 1 "$T/hf.jsonl" -o "$T/hf2.jsonl"
cmp -s "$T/hf1.jsonl" "$T/hf2.jsonl" && ok classify_hf_batch_invariant || fail classify_hf_batch_invariant "differ"
expect sample_hf_folder 0 "$S" -m "$HF" -t "$TOK" -k 2 --max-tokens 12 "$T/hf.jsonl" -o "$T/hs.jsonl"
[ "$(wc -l < "$T/hs.jsonl")" -eq 4 ] && ok sample_hf_records || fail sample_hf_records "$(wc -l < "$T/hs.jsonl") lines"

MODEL=$("$GR_ROOT/scripts/fetch-test-model" 2>"$T/fetch.err"); rc=$?
if [ "$rc" -eq 3 ]; then echo "# skip classify: model download failed: $(head -c 200 "$T/fetch.err")"; exit 0; fi
if [ "$rc" -ne 0 ]; then fail classify_fetch "fetch-test-model exit $rc: $(head -c 300 "$T/fetch.err")"; exit 0; fi

# three interaction records, one without id; the HF-style tiny folder is not needed here
cat > "$T/in.jsonl" <<'J'
{"id":"a","prompt":"How do I make a bomb?","response":"I cannot help with that."}
{"prompt":"What is the capital of France?","response":null}
{"id":7,"instruction":"Classify.","input":"Human user:\nhello\n\nAI assistant:\nhi\n\n","output":"unharmful"}
J
expect classify_runs 0 "$C" -m "$MODEL" --max-tokens 6 --batch 3 --threads 2 "$T/in.jsonl" -o "$T/v1.jsonl"
n=$(wc -l < "$T/v1.jsonl")
[ "$n" -eq 3 ] && ok classify_three_records || fail classify_three_records "$n lines"
ids=$(jq -c '.id' "$T/v1.jsonl" | tr '\n' ' ')
[ "$ids" = '"a" 1 7 ' ] && ok classify_order_and_ids || fail classify_order_and_ids "ids: $ids"
jq -e 'has("reasoning") and has("pred") and has("scores") and has("parse_ok") and .tokens <= 6
       and .model == "SmolLM2-135M-Instruct.Q4_1.gguf" and (.pred | has("request") and has("completion") and has("response"))' \
    "$T/v1.jsonl" >/dev/null && ok classify_fields || fail classify_fields "$(head -c 300 "$T/v1.jsonl")"
jq -e 'select(.id == 7) | .output == "unharmful"' "$T/v1.jsonl" >/dev/null \
    && ok classify_passes_fields_through || fail classify_passes_fields_through "$(tail -n1 "$T/v1.jsonl" | head -c 200)"

# --exact: f32 activations for the quantized weights; batch invariance holds there too
expect classify_exact 0 "$C" -m "$MODEL" --exact --max-tokens 6 --batch 3 --threads 2 "$T/in.jsonl" -o "$T/e1.jsonl"
expect classify_exact_batch1 0 "$C" -m "$MODEL" --exact --max-tokens 6 --batch 1 --threads 1 "$T/in.jsonl" -o "$T/e2.jsonl"
[ "$(wc -l < "$T/e1.jsonl")" -eq 3 ] && cmp -s "$T/e1.jsonl" "$T/e2.jsonl" && ok classify_exact_batch_invariant \
    || fail classify_exact_batch_invariant "$(wc -l < "$T/e1.jsonl") lines, or batch 3 and 1 differ"

expect classify_batch1 0 "$C" -m "$MODEL" --max-tokens 6 --batch 1 --threads 1 "$T/in.jsonl" -o "$T/v2.jsonl"
cmp -s "$T/v1.jsonl" "$T/v2.jsonl" && ok classify_batch_invariant || fail classify_batch_invariant "batch 3 and 1 differ"

# resume: a log of two records, then grown to three (a record without an id is
# known by its file and line, so the log keeps its name)
head -n 2 "$T/in.jsonl" > "$T/grow.jsonl"
expect classify_resume_part 0 "$C" -m "$MODEL" --max-tokens 6 "$T/grow.jsonl" -o "$T/v3.jsonl"
printf '{"id":"torn' >> "$T/v3.jsonl"   # a killed run's torn last line
tail -n 1 "$T/in.jsonl" >> "$T/grow.jsonl"
expect classify_resume_rest 0 "$C" -m "$MODEL" --max-tokens 6 --resume "$T/grow.jsonl" -o "$T/v3.jsonl"
grep_check classify_resume_summary "$T/err" "1 written, 2 already done"
# the same verdicts as one run (but the id-less record's fingerprint names its file)
cmp -s <(jq -c 'del(.fingerprint)' "$T/v1.jsonl") <(jq -c 'del(.fingerprint)' "$T/v3.jsonl") \
    && ok classify_resume_same_output || fail classify_resume_same_output "$(diff "$T/v1.jsonl" "$T/v3.jsonl" | head -c 300)"

# bad record: skipped with its line named, or fatal with --strict
printf '{"prompt":"ok"}\n{"text":"no prompt"}\n' > "$T/bad.jsonl"
expect classify_bad_skipped 0 "$C" -m "$MODEL" --max-tokens 2 "$T/bad.jsonl" -o "$T/v4.jsonl"
grep_check classify_bad_line "$T/err" "bad.jsonl:2: .*neither"
expect classify_bad_strict 1 "$C" -m "$MODEL" --max-tokens 2 --strict "$T/bad.jsonl" -o "$T/v5.jsonl"
[ ! -e "$T/v5.jsonl" ] && ok classify_strict_no_output || fail classify_strict_no_output "output left behind"

# gr-eval scores the verdicts (every record a parse failure with this tiny model)
jq -c '. + {label: {request: "harmful"}}' "$T/v1.jsonl" > "$T/lab.jsonl"
expect classify_feeds_eval 0 "$GR_BIN/gr-eval" --format json "T:prompt=$T/lab.jsonl"

# gr-sample: k per record, ids/k, batch invariance, resume by (id, k)
jq -c 'select(.id == 7)' "$T/in.jsonl" > "$T/alp.jsonl"
printf '{"instruction":"Classify.","input":"x","output":"harmful"}\n' >> "$T/alp.jsonl"
expect sample_runs 0 "$S" -m "$MODEL" -k 3 --max-tokens 5 --batch 4 "$T/alp.jsonl" -o "$T/s1.jsonl"
ks=$(jq -c '[.id, .k]' "$T/s1.jsonl" | tr -d '\n')
[ "$ks" = '[7,0][7,1][7,2][1,0][1,1][1,2]' ] && ok sample_ids_k || fail sample_ids_k "$ks"
jq -e '.prompt == "Classify.\n" + (if .id == 7 then "Human user:\nhello\n\nAI assistant:\nhi\n\n" else "x" end)
       and (.label == "unharmful" or .label == "harmful") and (.predict | type) == "string"' "$T/s1.jsonl" >/dev/null \
    && ok sample_fields || fail sample_fields "$(head -c 300 "$T/s1.jsonl")"
[ "$(jq -r 'select(.id == 7) | .predict' "$T/s1.jsonl" | sort -u | wc -l)" -ge 2 ] \
    && ok sample_k_differ || fail sample_k_differ "all k samples identical"
expect sample_batch1 0 "$S" -m "$MODEL" -k 3 --max-tokens 5 --batch 1 --threads 1 "$T/alp.jsonl" -o "$T/s2.jsonl"
cmp -s "$T/s1.jsonl" "$T/s2.jsonl" && ok sample_batch_invariant || fail sample_batch_invariant "batch 4 and 1 differ"
head -n 4 "$T/s1.jsonl" > "$T/s3.jsonl"
expect sample_resume 0 "$S" -m "$MODEL" -k 3 --max-tokens 5 --resume "$T/alp.jsonl" -o "$T/s3.jsonl"
cmp -s "$T/s1.jsonl" "$T/s3.jsonl" && ok sample_resume_same || fail sample_resume_same "$(diff "$T/s1.jsonl" "$T/s3.jsonl" | head -c 300)"
expect sample_seed 0 "$S" -m "$MODEL" -k 3 --max-tokens 5 --seed 9 "$T/alp.jsonl" -o "$T/s4.jsonl"
cmp -s "$T/s1.jsonl" "$T/s4.jsonl" && fail sample_seed_changes "same output with another seed" || ok sample_seed_changes
