# scripts/pipeline.mk, PROFILE=ci, end to end with the real test model: every stage's
# output is the next stage's input (checked by the records' ids and counts, not by file
# names), the final table exists and names the three models; a second run does
# nothing; GAMMA=0.3 re-runs mining onward only (make -n, then a real run checked by
# the outputs' modification times).
. "$(dirname "$0")/../lib.sh"
model=$("$GR_ROOT/scripts/fetch-test-model"); rc=$?
if [ "$rc" -eq 3 ]; then echo "# skip: the test model could not be downloaded"; exit 0; fi
[ "$rc" -eq 0 ] || { fail pipeline_test_model "scripts/fetch-test-model exited $rc"; exit 0; }
command -v jq >/dev/null || { echo "# skip: jq not installed"; exit 0; }

O=$T/run
pmake() { make --no-print-directory -f "$GR_ROOT/scripts/pipeline.mk" PROFILE=ci OUT="$O" BIN="$GR_BIN" "$@"; }
ids() { jq -r '.id' "$@" | LC_ALL=C sort; }
uniq_ids() { jq -r '.id' "$@" | LC_ALL=C sort -u; }

expect pipeline_ci_runs 0 pmake
cp "$T/out" "$T/run1.out"; cp "$T/err" "$T/run1.err"
if [ ! -s "$O/eval/table.txt" ]; then
    fail pipeline_table_exists "no $O/eval/table.txt; stderr: $(tail -c 600 "$T/run1.err")"
    exit 0
fi
ok pipeline_table_exists
# the table is printed at the end, with the three models and parse failures
grep -q '^base ' "$T/run1.out" && grep -q '^rsft ' "$T/run1.out" && grep -Eq '^hsdpo-(self|ensemble) ' "$T/run1.out" \
    && grep -q 'parse failures' "$T/run1.out" && ok pipeline_table_printed || fail pipeline_table_printed "$(tail -n 20 "$T/run1.out")"

# data -> tokens: every training record tokenized (or dropped as too long, which gr-tokenize counts)
n_train=$(wc -l < "$O/data/train.jsonl"); n_tok=$(wc -l < "$O/tok/all.jsonl")
[ "$n_train" -gt 0 ] && [ "$n_tok" -gt 0 ] && [ -z "$(LC_ALL=C comm -13 <(ids "$O/data/train.jsonl") <(ids "$O/tok/all.jsonl"))" ] \
    && ok pipeline_tokens_from_data || fail pipeline_tokens_from_data "$n_train records, $n_tok token records"
# the diversity models' data: each drops exactly its set
for d in "$O"/data/drop-*.jsonl; do
    set_name=$(basename "$d" .jsonl); set_name=${set_name#drop-}
    if jq -e --arg s "$set_name" 'select(.source == $s)' "$d" >/dev/null; then
        fail "pipeline_drop_$set_name" "$d holds records of $set_name"
    elif [ "$(wc -l < "$d")" -eq $((n_train - $(grep -c "\"source\":\"$set_name\"" "$O/data/train.jsonl"))) ]; then ok "pipeline_drop_$set_name"
    else fail "pipeline_drop_$set_name" "$(wc -l < "$d") records"; fi
done
# tokens -> R-SFT: the model trained on as many examples as the token file holds
for m in "$O"/rsft "$O"/rsft-drop-*; do
    name=$(basename "$m"); data=$O/tok/all.jsonl
    [ "$name" = rsft ] || data=$O/tok/${name#rsft-}.jsonl
    [ -f "$m/model.safetensors" ] && [ -s "$m/log.jsonl" ] && grep -q "$data" <(grep -- "--data $data --out $m " "$T/run1.out") \
        && ok "pipeline_sft_$name" || fail "pipeline_sft_$name" "no model, or not trained on $data"
done
# R-SFT -> samples: k samples of every mining record, by each model
n_mine=$(wc -l < "$O/data/mine.jsonl"); k=$(sed -n 's/^K=//p' "$O/stamps/sample")
for s in "$O"/samples/*.jsonl; do
    name=$(basename "$s" .jsonl)
    [ "$(wc -l < "$s")" -eq $((n_mine * k)) ] && [ "$(uniq_ids "$s")" = "$(uniq_ids "$O/data/mine.jsonl")" ] \
        && [ "$(jq -r .model "$s" | sort -u)" = "$name" ] \
        && ok "pipeline_samples_$name" || fail "pipeline_samples_$name" "$(wc -l < "$s") samples of $n_mine records, k=$k"
done
[ -f "$O/samples/rsft.jsonl" ] && [ "$(ls "$O"/samples/*.jsonl | wc -l)" -eq "$(ls -d "$O"/rsft "$O"/rsft-drop-* | wc -l)" ] \
    && ok pipeline_samples_every_model || fail pipeline_samples_every_model "$(ls "$O/samples")"
# samples -> pairs -> pair tokens -> HS-DPO
for p in "$O"/pairs/*.jsonl; do
    name=$(basename "$p" .jsonl)
    echo "# ci: $(wc -l <"$p") $name pairs mined from $(wc -l <"$O/data/mine.jsonl") records ($(grep -h '^gr-mine:' "$T/run1.err" "$T/run1.out" | head -n 1 | cut -c1-200))"
    [ -s "$p" ] && [ -z "$(LC_ALL=C comm -23 <(uniq_ids "$p") <(uniq_ids "$O"/samples/*.jsonl))" ] \
        && ok "pipeline_pairs_$name" || fail "pipeline_pairs_$name" "empty, or ids not among the samples'"
    [ "$(ids "$O/tok/pairs-$name.jsonl")" = "$(ids "$p")" ] && ok "pipeline_pair_tokens_$name" \
        || fail "pipeline_pair_tokens_$name" "the pair tokens are not the pairs"
done
for h in "$O"/hsdpo-*; do
    name=$(basename "$h"); pairs=$O/tok/pairs-${name#hsdpo-}.jsonl
    [ -f "$h/model.safetensors" ] && grep -q -- "--base $O/rsft --pairs $pairs --out $h " "$T/run1.out" \
        && ok "pipeline_dpo_$name" || fail "pipeline_dpo_$name" "no model, or not trained from rsft on $pairs"
done
# benchmarks -> verdicts -> the table: every model classified every benchmark record
for v in "$O"/verdicts/*/*.jsonl; do
    m=$(basename "$(dirname "$v")"); b=$(basename "$v")
    [ "$(ids "$v")" = "$(ids "$O/bench/$b")" ] && [ "$(jq -r .model "$v" | sort -u)" = "$m" ] \
        && ok "pipeline_verdicts_${m}_${b%.jsonl}" || fail "pipeline_verdicts_${m}_${b%.jsonl}" "ids or model differ"
done
jq -e --slurpfile b <(cat "$O"/bench/*.jsonl) '[.benchmarks[].model] | unique | length == 3' "$O/eval/report.json" >/dev/null \
    && ok pipeline_report_three_models || fail pipeline_report_three_models "$(head -c 300 "$O/eval/report.json")"
# no evaluation request in the training data (the check ran)
[ -f "$O/data/disjoint.ok" ] && grep -q 'disjoint' "$T/run1.out" && ok pipeline_disjoint_checked || fail pipeline_disjoint_checked "no data/disjoint.ok"

# a second run has nothing to do
expect pipeline_second_run 0 pmake -n
grep -E "$GR_BIN/gr-" "$T/out" >/dev/null && fail pipeline_nothing_to_redo "$(grep -E "$GR_BIN/gr-" "$T/out" | head -3)" \
    || ok pipeline_nothing_to_redo

# GAMMA=0.3: mining onward only, first as make -n lists it
expect pipeline_gamma_dry_run 0 pmake -n GAMMA=0.3
ran() { grep -E "^$GR_BIN/$1 " "$T/out" | grep -c -- "$2"; }
if [ "$(ran gr-mine .)" -ge 1 ] && [ "$(ran gr-dpo .)" -ge 1 ] && [ "$(ran gr-eval .)" -ge 1 ] \
    && [ "$(ran gr-classify "--model-name hsdpo-")" -ge 1 ] \
    && [ "$(ran gr-sft .)" -eq 0 ] && [ "$(ran gr-sample .)" -eq 0 ] \
    && [ "$(ran gr-classify "--model-name base")" -eq 0 ] && [ "$(ran gr-classify "--model-name rsft ")" -eq 0 ] \
    && [ "$(ran gr-tokenize "data/train.jsonl")" -eq 0 ]; then ok pipeline_gamma_plans_mining_onward
else fail pipeline_gamma_plans_mining_onward "$(grep -E "^$GR_BIN/gr-" "$T/out" | cut -c1-120 | head -8)"; fi
# then for real: the files before mining keep their modification times, the ones after change
before=("$O"/rsft/model.safetensors "$O"/rsft-drop-*/model.safetensors "$O"/samples/*.jsonl "$O"/verdicts/base/*.jsonl "$O"/verdicts/rsft/*.jsonl)
after=("$O"/pairs/*.jsonl "$O"/tok/pairs-*.jsonl "$O"/hsdpo-*/model.safetensors "$O"/verdicts/hsdpo-*/*.jsonl "$O"/eval/table.txt)
stat -c '%y %n' "${before[@]}" "${after[@]}" > "$T/times1"
expect pipeline_gamma_runs 0 pmake GAMMA=0.3
stat -c '%y %n' "${before[@]}" "${after[@]}" > "$T/times2"
bad=
for f in "${before[@]}"; do grep -qxF "$(grep -F " $f" "$T/times2")" "$T/times1" || bad="$bad rebuilt:${f#$O/}"; done
for f in "${after[@]}"; do grep -qxF "$(grep -F " $f" "$T/times2")" "$T/times1" && bad="$bad kept:${f#$O/}"; done
[ -z "$bad" ] && grep -q 'GAMMA=0.3' "$O/stamps/mine" && ok pipeline_gamma_rebuilds_mining_onward \
    || fail pipeline_gamma_rebuilds_mining_onward "$bad"
