# gr-eval against the reference-semantics fixtures (scripts/make-eval-fixture.py).
. "$(dirname "$0")/../lib.sh"
E=$GR_BIN/gr-eval
FX=$GR_ROOT/testdata/eval

# compare_json NAME REPORT EXPECTED JQ_MODEL_FILTER: every benchmark F1 and task
# average of the fixture agrees with gr-eval's JSON within 1e-6 points
compare_json() {
    local name=$1 report=$2 expected=$3 sel=$4
    local diff
    diff=$(jq -rn --slurpfile r "$report" --slurpfile e "$expected" "
        (\$e[0]$sel) as \$x | \$r[0] as \$g |
        [ (\$x.benchmarks[] as \$b | (\$g.benchmarks[] | select(.name==\$b.name and .task==\$b.task)) as \$m |
            if ((\$m.f1 - \$b.f1)|fabs) > 1e-6 or \$m.n != \$b.n then \"\(\$b.name)/\(\$b.task): \(\$m.f1) vs \(\$b.f1)\" else empty end),
          (\$x.averages | to_entries[] as \$a | (\$g.averages[] | select(.task==\$a.key)) as \$m |
            if ((\$m.weighted_f1 - \$a.value)|fabs) > 1e-6 then \"avg \(\$a.key): \(\$m.weighted_f1) vs \(\$a.value)\" else empty end),
          (if ((\$g.overall[0].average_f1 - \$x.overall)|fabs) > 1e-6 then \"overall\" else empty end),
          (if (\$g.benchmarks|length) != (\$x.benchmarks|length) then \"count\" else empty end)
        ] | join(\"; \")" 2>&1)
    if [ -z "$diff" ]; then ok "$name"; else fail "$name" "$diff"; fi
}

# the shipped copy of the published 1B predictions (zstd) gives the reference numbers
expect eval_layout_testdata 0 $E --format json --layout guardreasoner 1B="$GR_ROOT/testdata/predictions/1B"
cp "$T/out" "$T/1b.json"
compare_json eval_1B_matches_reference "$T/1b.json" "$FX/expected-1B.json" ""
if have_shared; then
    expect eval_layout_shared 0 $E --format json --layout guardreasoner "$SHARED/data/guardreasoner/predictions/1B"
    compare_json eval_shared_1B_matches_reference "$T/out" "$FX/expected-1B.json" ""
fi
# the paper's Table 2 figures
expect eval_table 0 $E --layout guardreasoner "$GR_ROOT/testdata/predictions/1B"
grep_check eval_table_simplesafety "$T/out" '98\.99'
grep_check eval_table_aegis "$T/out" '89\.34'
grep_check eval_table_harmbench "$T/out" '96\.31'
grep_check eval_table_summary "$T/out" 'Average over the tasks'
grep_check eval_table_parse_failures "$T/out" 'parse failures \(1B\): .*AegisSafetyTest 2'
grep_check eval_notes_missing "$T/err" 'not present, not scored: ToxicChat'

# every path of the reference: answer-block gold, WildGuardTest gold file, parse failures
expect eval_synthetic_reference 0 $E --format json --layout guardreasoner "$FX/synthetic/test/S"
compare_json eval_synthetic_reference_matches "$T/out" "$FX/expected-synthetic.json" ".reference"
expect eval_synthetic_wrong 0 $E --format json --parse-failures wrong --layout guardreasoner "$FX/synthetic/test/S"
compare_json eval_synthetic_wrong_matches "$T/out" "$FX/expected-synthetic.json" ".wrong"

# verdict records with scores: F1 and AUPRC as scikit-learn computes them
expect eval_verdicts 0 $E --format json --parse-failures wrong V:prompt="$FX/verdicts-scored.jsonl"
got=$(jq -r --slurpfile e "$FX/expected-synthetic.json" '.benchmarks[0] as $b | $e[0].verdicts as $x |
    if (($b.auprc - $x.auprc)|fabs) < 1e-9 and (($b.f1 - $x.f1_wrong)|fabs) < 1e-9 and $b.n == $x.n then "yes" else "\($b.auprc) \($b.f1)" end' "$T/out")
[ "$got" = yes ] && ok eval_verdicts_auprc_f1 || fail eval_verdicts_auprc_f1 "$got"
grep_check eval_json_fields "$T/out" '"parse_failures"'
got=$(jq -r '.benchmarks[0] | [has("name","task","model","n","f1","precision","recall","accuracy","tp","fp","tn","fn","parse_failures")] | all' "$T/out")
[ "$got" = true ] && ok eval_json_has_all_fields || fail eval_json_has_all_fields "$got"
got=$(jq -r '.averages[0] | [has("task","model","weighted_f1")] | all' "$T/out")
[ "$got" = true ] && ok eval_json_average_fields || fail eval_json_average_fields "$got"

# formats
expect eval_markdown 0 $E --format markdown --layout guardreasoner "$GR_ROOT/testdata/predictions/1B"
grep_check eval_markdown_row "$T/out" '^\| 1B \|'
expect eval_csv 0 $E --format csv --layout guardreasoner "$GR_ROOT/testdata/predictions/1B"
grep_check eval_csv_header "$T/out" '^kind,model,task,name,n,f1,'
grep_check eval_csv_row "$T/out" '^benchmark,1B,prompt,SimpleSafetyTests,100,98\.9899'
# several models side by side, explicit specs with --model, stdin, --map, -o
expect eval_two_models 0 $E --layout guardreasoner A="$GR_ROOT/testdata/predictions/1B" B="$GR_ROOT/testdata/predictions/1B"
[ "$(grep -c '^A ' "$T/out")" -ge 4 ] && [ "$(grep -c '^B ' "$T/out")" -ge 4 ] && ok eval_two_models_rows || fail eval_two_models_rows "rows missing"
zstd -dc "$GR_ROOT/testdata/predictions/1B/SimpleSafetyTests/generated_predictions.jsonl.zst" > "$T/sst.jsonl"
expect eval_stdin 0 sh -c "$E --format csv --model m SST:prompt=- < '$T/sst.jsonl'"
grep_check eval_stdin_value "$T/out" '^benchmark,m,prompt,SST,100,98\.9899'
expect eval_map 0 $E --format csv --map '{label: .label, predict: (.predict | ascii_downcase)}' SST:prompt="$T/sst.jsonl"
grep_check eval_map_value "$T/out" 'SST,100,98\.9899'
expect eval_output_file 0 $E --format json -o "$T/report.json" SST:prompt="$T/sst.jsonl"
[ -s "$T/report.json" ] && [ ! -s "$T/out" ] && jq -e '.benchmarks[0].f1 > 98.9' "$T/report.json" >/dev/null && ok eval_output_file_written || fail eval_output_file_written "no report"
ls -a "$T" | grep -q '\.tmp\.' && fail eval_no_temp_left "temporary left" || ok eval_no_temp_left

# bad inputs: a clear message and status 1 (runtime) or 2 (usage)
expect eval_missing_file 1 $E X:prompt="$T/nope.jsonl"
grep_check eval_missing_file_msg "$T/err" "^gr-eval: .*nope.jsonl: No such file"
expect eval_unknown_task 2 $E X:toxicity="$T/sst.jsonl"
grep_check eval_unknown_task_msg "$T/err" "unknown task 'toxicity'"
printf '{"prompt":"p","label":"harmful","predict":"Request: harmful"}\n{"prompt":"p","label":"harmful"}\n' > "$T/nopred.jsonl"
expect eval_no_predict 1 $E X:prompt="$T/nopred.jsonl"
grep_check eval_no_predict_msg "$T/err" 'nopred.jsonl:2: record has neither "predict"'
printf '{"label":"harmful","predict":"Request: harmful"}\n{"label": "harmful", "predict": \n' > "$T/bad.jsonl"
expect eval_malformed 1 $E X:prompt="$T/bad.jsonl"
grep_check eval_malformed_line "$T/err" 'bad.jsonl:2: '
expect eval_bad_format 2 $E --format xml X:prompt="$T/sst.jsonl"
expect eval_bad_map 2 $E --map '{{' X:prompt="$T/sst.jsonl"
grep_check eval_bad_map_msg "$T/err" '^gr-eval: --map: '
expect eval_no_args 2 $E
expect eval_bad_spec 2 $E "$T/sst.jsonl"
mkdir -p "$T/wg/test/M/WildGuardTest"
cp "$T/sst.jsonl" "$T/wg/test/M/WildGuardTest/generated_predictions.jsonl"
expect eval_wildguard_without_gold 1 $E --layout guardreasoner "$T/wg/test/M"
grep_check eval_wildguard_without_gold_msg "$T/err" 'wildguard-gold'
expect eval_help 0 $E --help
grep_check eval_help_example "$T/out" 'Example'
