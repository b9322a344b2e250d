# gr-eval's score-based figures (issue 15 §3) against scikit-learn's on the
# fixtures of scripts/make-eval-fixture.py (testdata/eval/scores/,
# expected-scores.json), plus hand-made cases for ties and edges; and the
# input checks of issue 12 §5.
. "$(dirname "$0")/../lib.sh"
E=$GR_BIN/gr-eval
FX=$GR_ROOT/testdata/eval
S=$FX/scores
X=$FX/expected-scores.json
# jq_check NAME FILE PROGRAM: PROGRAM (with $e = expected-scores.json) prints "yes"
jq_check() {
    local got
    got=$(jq -r --slurpfile e "$X" "\$e[0] as \$e | $3" "$2" 2>&1)
    [ "$got" = yes ] && ok "$1" || fail "$1" "$(printf '%s' "$got" | head -c 300)"
}

# ---- the sweep on dev, and its best threshold applied to test ----
expect eval_sweep 0 $E --sweep --parse-failures wrong --format json -o "$T/dev.json" D:prompt="$S/dev.jsonl"
jq_check eval_sweep_curve "$T/dev.json" '.benchmarks[0].sweep.curve as $c | $e.dev.sweep as $x |
    if ($c|length) == ($x|length) and ([range($x|length) as $i | ($c[$i].threshold == $x[$i].threshold)
        and (($c[$i].f1 - $x[$i].f1)|fabs) < 1e-9 and (($c[$i].precision - $x[$i].precision)|fabs) < 1e-9
        and (($c[$i].recall - $x[$i].recall)|fabs) < 1e-9] | all) then "yes" else "\($c|length) vs \($x|length)" end'
jq_check eval_sweep_best "$T/dev.json" '.benchmarks[0].sweep as $s |
    if $s.best_threshold == $e.dev.best.threshold and (($s.best_f1 - $e.dev.best.f1)|fabs) < 1e-9 then "yes" else "\($s.best_threshold) \($s.best_f1)" end'
expect eval_threshold_from 0 $E --threshold-from "$T/dev.json" --parse-failures wrong --format json D:prompt="$S/test.jsonl"
jq_check eval_threshold_from_f1 "$T/out" '.benchmarks[0] as $b | $e.test.at_dev_best as $x |
    if $b.threshold == $e.dev.best.threshold and (($b.f1 - $x.f1)|fabs) < 1e-9 and (($b.precision - $x.precision)|fabs) < 1e-9
       and (($b.recall - $x.recall)|fabs) < 1e-9 then "yes" else "\($b.threshold) \($b.f1)" end'
expect eval_threshold 0 $E --threshold 0.5 --parse-failures wrong --format json D:prompt="$S/test.jsonl"
jq_check eval_threshold_f1 "$T/out" '.benchmarks[0] as $b |
    if (($b.f1 - $e.test["at_0.5"].f1)|fabs) < 1e-9 then "yes" else "\($b.f1) vs \($e.test["at_0.5"].f1)" end'
expect eval_threshold_from_missing 1 $E --threshold-from "$T/dev.json" Other:prompt="$S/test.jsonl"
grep_check eval_threshold_from_missing_msg "$T/err" 'no threshold for Other/prompt'
expect eval_threshold_from_not_report 1 $E --threshold-from "$S/dev.jsonl" D:prompt="$S/test.jsonl"
grep_check eval_threshold_from_not_report_msg "$T/err" 'not a gr-eval --format json report'
expect eval_threshold_exclusive 2 $E --threshold 0.5 --threshold-from "$T/dev.json" D:prompt="$S/test.jsonl"
expect eval_threshold_range 2 $E --threshold 1.5 D:prompt="$S/test.jsonl"

# ---- recall at fixed FPR, ECE and the reliability bins ----
for set in dev test; do
    expect eval_fpr_$set 0 $E --fpr 0.01,0.05,0.1 --format json D:prompt="$S/$set.jsonl"
    jq_check eval_fpr_recall_$set "$T/out" ".benchmarks[0].recall_at_fpr as \$r | \$e.$set.recall_at_fpr as \$x |
        if ([range(3) as \$i | \$r[\$i].fpr == \$x[\$i].fpr and ((\$r[\$i].recall - \$x[\$i].recall)|fabs) < 1e-9
            and \$r[\$i].threshold == \$x[\$i].threshold] | all) then \"yes\" else \"\(\$r)\" end"
    jq_check eval_ece_$set "$T/out" ".benchmarks[0] as \$b | \$e.$set as \$x |
        [\$b.reliability[] | select(.n > 0)] as \$nz |
        if ((\$b.ece - \$x.ece)|fabs) < 1e-9 and ([\$b.reliability[].n] == \$x.bin_counts)
           and ([range(\$nz|length) as \$i | ((\$nz[\$i].mean_score - \$x.prob_pred[\$i])|fabs) < 1e-12
                and ((\$nz[\$i].fraction_positive - \$x.prob_true[\$i])|fabs) < 1e-12] | all)
        then \"yes\" else \"\(\$b.ece) vs \(\$x.ece); \([\$b.reliability[].n]) vs \(\$x.bin_counts)\" end"
done
expect eval_reliability_table 0 $E --fpr 0.05 D:prompt="$S/test.jsonl"
grep_check eval_reliability_table_rows "$T/out" '^  \(0\.9, 1\.0\] +[0-9]+ '
grep_check eval_ece_line "$T/out" '^  ECE \(model, %\): D [0-9]+\.[0-9]{2}$'
grep_check eval_fpr_line "$T/out" '^  recall at FPR 5% \(model, %\): D [0-9]+\.[0-9]{2}$'

# ---- corrections: original and corrected F1 side by side ----
expect eval_corrections 0 $E --corrections "$S/corrections.jsonl" --parse-failures wrong --format json T:prompt="$S/test.jsonl"
jq_check eval_corrections_f1 "$T/out" '[.benchmarks[] | select(.model == "model")][0] as $o |
    [.benchmarks[] | select(.model == "model (corrected)")][0] as $c |
    if (($o.f1 - $e.test.labels_f1)|fabs) < 1e-9 and (($c.f1 - $e.test.corrected_labels_f1)|fabs) < 1e-9
       and $c.labels_corrected == $e.test.labels_corrected and $c.corrected_from == "model"
       and ((($c.ece - $e.test.corrected.ece)|fabs) < 1e-9) then "yes" else "\($o.f1) \($c.f1) \($c.labels_corrected)" end'
grep_check eval_corrections_unused "$T/err" 'corrections.jsonl: 2 corrections matched no record'
expect eval_corrections_threshold 0 $E --corrections "$S/corrections.jsonl" --threshold 0.5 --parse-failures wrong --format json T:prompt="$S/test.jsonl"
jq_check eval_corrections_threshold_f1 "$T/out" '[.benchmarks[] | select(.model == "model (corrected)")][0] as $c |
    if (($c.f1 - $e.test["corrected_at_0.5_f1"])|fabs) < 1e-9 then "yes" else "\($c.f1)" end'
expect eval_corrections_table 0 $E --corrections "$S/corrections.jsonl" T:prompt="$S/test.jsonl"
grep_check eval_corrections_row "$T/out" '^model \(corrected\) +[0-9]+\.[0-9]{2}'
grep_check eval_corrections_count "$T/out" 'labels corrected \(model \(corrected\)\): T 18'
printf '{"id":"t1","label":"harmful"}\n{"id":"t1","label":"unharmful"}\n' >"$T/dup.jsonl"
expect eval_corrections_duplicate 1 $E --corrections "$T/dup.jsonl" T:prompt="$S/test.jsonl"
grep_check eval_corrections_duplicate_msg "$T/err" 'dup.jsonl:2: id "t1" is corrected twice \(also line 1\)'
printf '{"id":"t1"}\n' >"$T/nolabel.jsonl"
expect eval_corrections_no_label 1 $E --corrections "$T/nolabel.jsonl" T:prompt="$S/test.jsonl"
grep_check eval_corrections_no_label_msg "$T/err" 'nolabel.jsonl:1: a correction needs a "label"'

# ---- the review queue ----
expect eval_review_samples 0 $E --review-queue "$T/q.tsv" R:prompt="$S/samples.jsonl"
got=$(tail -n +2 "$T/q.tsv" | cut -f5,8,11 | jq -R -s -c 'split("\n") | map(select(length > 0) | split("\t") | {id: .[0], pred: .[1], votes: .[2]})')
want=$(jq -c '.samples_review' "$X")
[ "$got" = "$want" ] && ok eval_review_samples_order || fail eval_review_samples_order "$(printf '%s' "$got" | head -c 300)"
grep_check eval_review_header "$T/q.tsv" '^rank	model	benchmark	task	id	line	gold	pred	confidence	score	votes	text$'
grep_check eval_review_count_msg "$T/err" 'q.tsv: 20 disagreements'
expect eval_review_scores 0 $E --review-queue "$T/q2.tsv" --parse-failures wrong --format json T:prompt="$S/test.jsonl"
awk -F'\t' 'NR > 1 { if ($7 == $8 || (NR > 2 && $9 > prev + 1e-12)) bad = 1; prev = $9; n++ } END { exit bad || n == 0 }' "$T/q2.tsv" &&
    ok eval_review_ranked || fail eval_review_ranked "$(head -n 3 "$T/q2.tsv")"
rows=$(($(wc -l <"$T/q2.tsv") - 1))
want=$(jq '.benchmarks[0] | .fp + .fn' "$T/out")
# each disagreement once (parse failures are not disagreements: fp + fn of the
# parsed labels minus the parse failures counted as wrong)
pf=$(jq '.benchmarks[0].parse_failures' "$T/out")
[ "$rows" -eq $((want - pf)) ] && ok eval_review_all_disagreements || fail eval_review_all_disagreements "$rows rows, fp+fn-pf $((want - pf))"
grep_check eval_review_text_escaped "$T/q2.tsv" 'Question [0-9]+ of t:\\twhat about\\nthis\?'
expect eval_review_stdout 2 $E --review-queue - T:prompt="$S/test.jsonl"

# ---- hand-made edges ----
# one score for all: one threshold; a score equal to the threshold is flagged
for i in 1 2 3 4; do
    printf '{"label":"%s","pred":{"request":"harmful"},"scores":{"request":0.5}}\n' "$([ $i -le 2 ] && echo harmful || echo unharmful)"
done >"$T/tie.jsonl"
expect eval_tie 0 $E --sweep --threshold 0.5 --format json X:prompt="$T/tie.jsonl"
jq_check eval_tie_values "$T/out" '.benchmarks[0] | if (.sweep.curve|length) == 1 and .sweep.best_threshold == 0.5
    and .tp == 2 and .fp == 2 and .fn == 0 then "yes" else "\(.sweep) \(.tp) \(.fp)" end'
# bin edges as scikit-learn's calibration_curve: (k/10, (k+1)/10], 0 in the first
printf '{"label":"harmful","pred":{"request":"harmful"},"scores":{"request":%s}}\n' 0 0.1 0.3 0.30001 1 >"$T/edges.jsonl"
expect eval_bin_edges 0 $E --format json X:prompt="$T/edges.jsonl"
jq_check eval_bin_edges_counts "$T/out" '[.benchmarks[0].reliability[].n] | if . == [2,0,1,1,0,0,0,0,0,1] then "yes" else "\(.)" end'
# only positives: no FPR, recall at FPR undefined (null), ECE still defined
expect eval_fpr_no_negative 0 $E --fpr 0.1 --format json X:prompt="$T/edges.jsonl"
jq_check eval_fpr_no_negative_null "$T/out" '.benchmarks[0] | if .recall_at_fpr[0].recall == null and .ece != null then "yes" else "\(.recall_at_fpr)" end'
# FPR 0: the best recall flagging no negative; nothing flagged when the top score is a negative
printf '{"label":"unharmful","pred":{"request":"harmful"},"scores":{"request":0.9}}\n{"label":"harmful","pred":{"request":"harmful"},"scores":{"request":0.8}}\n' >"$T/neg-top.jsonl"
expect eval_fpr_zero 0 $E --fpr 0,0.5,1 --format json X:prompt="$T/neg-top.jsonl"
jq_check eval_fpr_zero_values "$T/out" '.benchmarks[0].recall_at_fpr | if .[0].recall == 0 and .[0].threshold == null
    and .[1].recall == 0 and .[2].recall == 100 and .[2].threshold == 0.8 then "yes" else "\(.)" end'
# a threshold needs scores
expect eval_threshold_no_scores 1 $E --threshold 0.5 X:prompt="$FX/synthetic/test/S/AegisSafetyTest/generated_predictions.jsonl"
grep_check eval_threshold_no_scores_msg "$T/err" 'no record carries scores.request'
expect eval_bad_fpr 2 $E --fpr 0.01,x X:prompt="$T/tie.jsonl"
# csv keeps the new columns
expect eval_csv_extras 0 $E --format csv --sweep --fpr 0.05 --threshold 0.5 X:prompt="$T/tie.jsonl"
grep_check eval_csv_extras_header "$T/out" ',auprc,threshold,ece,best_threshold,best_f1,labels_corrected,recall_at_fpr_0.05$'
grep_check eval_csv_extras_row "$T/out" '^benchmark,model,prompt,X,4,66\.6667,.*,0\.5,[0-9.]+,0\.5,66\.6667,,'
got=$(awk -F, '{ print NF }' "$T/out" | sort -u | tr '\n' ' ')
[ "$got" = "22 " ] && ok eval_csv_extras_columns || fail eval_csv_extras_columns "field counts: $got"

# ---- issue 12 §5: nothing scored, wrong types, stdin twice ----
: >"$T/empty.jsonl"
expect eval_empty_file 1 $E X:prompt="$T/empty.jsonl"
grep_check eval_empty_file_msg "$T/err" 'empty.jsonl: no labelled record for the prompt task \(0 records, 0 without a gold label\)'
printf '{"prompt":"p","predict":"Request: harmful"}\n{"prompt":"q","label":null,"predict":"Request: harmful"}\n' >"$T/nolab.jsonl"
expect eval_no_labels 1 $E X:prompt="$T/nolab.jsonl"
grep_check eval_no_labels_msg "$T/err" 'no labelled record for the prompt task \(2 records, 2 without a gold label\)'
printf '{"label":"harmful","predict":"Request: harmful"}\n{"label":"harmful","predict":3}\n' >"$T/type1.jsonl"
expect eval_predict_number 1 $E X:prompt="$T/type1.jsonl"
grep_check eval_predict_number_msg "$T/err" 'type1.jsonl:2: "predict" is not a string'
printf '{"label":"harmful","pred":"harmful"}\n' >"$T/type2.jsonl"
expect eval_pred_string 1 $E X:prompt="$T/type2.jsonl"
grep_check eval_pred_string_msg "$T/err" 'type2.jsonl:1: "pred" is not an object'
printf '{"label":"harmful","pred":{"request":1}}\n' >"$T/type3.jsonl"
expect eval_pred_field_number 1 $E X:prompt="$T/type3.jsonl"
grep_check eval_pred_field_number_msg "$T/err" 'type3.jsonl:1: "pred.request" is not a string'
printf '{"label":"harmful","predict":"Request: harmful"}\n\n{"label":5,"predict":"Request: harmful"}\n' >"$T/type4.jsonl"
expect eval_label_number 1 $E X:prompt="$T/type4.jsonl"
grep_check eval_label_number_msg "$T/err" 'type4.jsonl:3: "label" is not a string or an object'
printf '{"label":"harmful","pred":{"request":"harmful"},"scores":{"request":"high"}}\n' >"$T/type5.jsonl"
expect eval_score_string 1 $E X:prompt="$T/type5.jsonl"
grep_check eval_score_string_msg "$T/err" 'type5.jsonl:1: a score in "scores" is not a number'
printf '{"label":"harmful","pred":{"request":"harmful"},"scores":{"request":1.5}}\n' >"$T/type6.jsonl"
expect eval_score_range 1 $E X:prompt="$T/type6.jsonl"
printf '{"label":"harmful","pred":{"request":"harmful"},"parse_ok":"yes"}\n' >"$T/type7.jsonl"
expect eval_parse_ok_string 1 $E X:prompt="$T/type7.jsonl"
grep_check eval_parse_ok_string_msg "$T/err" 'type7.jsonl:1: "parse_ok" is not true or false'
expect eval_stdin_twice 2 sh -c "$E X:prompt=- Y:prompt=- < '$T/tie.jsonl'"
grep_check eval_stdin_twice_msg "$T/err" "stdin \('-'\) is given 2 times"
expect eval_stdin_twice_corrections 2 sh -c "$E --corrections - X:prompt=- < '$T/tie.jsonl'"
# --replace-invalid (gr-eval had it; checked here beside the others)
printf '{"label":"harmful","predict":"Request: harmful \377"}\n' >"$T/badutf.jsonl"
expect eval_invalid_utf8 1 $E X:prompt="$T/badutf.jsonl"
grep_check eval_invalid_utf8_hint "$T/err" 'badutf.jsonl:1: .*--replace-invalid'
expect eval_replace_invalid 0 $E --replace-invalid X:prompt="$T/badutf.jsonl"

# AUPRC without a positive label is undefined: "-" in the text table (it printed "nan")
for i in 1 2 3; do
    printf '{"id":"n%d","prompt":"p","response":null,"label":{"request":"unharmful","completion":null,"response":null},"pred":{"request":"unharmful","completion":null,"response":null},"scores":{"request":0.%d},"parse_ok":true}\n' "$i" "$i"
done >"$T/nopos.jsonl"
expect eval_auprc_no_positive 0 $E N:prompt="$T/nopos.jsonl"
grep_check eval_auprc_no_positive_dash "$T/out" 'AUPRC \(model, %\): N -$'
! grep -qi nan "$T/out" && ok eval_auprc_no_nan || fail eval_auprc_no_nan "$(grep -i nan "$T/out")"
