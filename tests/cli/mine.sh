# gr-mine against the reference mining logic (scripts/make-mine-fixture.py), and
# crafted cases for every branch.
. "$(dirname "$0")/../lib.sh"
M=$GR_BIN/gr-mine
FX=$GR_ROOT/testdata/mine

# same_pairs NAME GOT EXPECTED(.zst): the same pairs, matched by input text (as the
# reference merges), with the same texts, counts, ids, source files, passed-through
# fields, and the same weights as doubles (the script's formula, bit for bit)
same_pairs() {
    local d
    d=$(jq -rn --slurpfile g "$2" --slurpfile e <(zstd -dc "$3") '
        def view: {instruction, input, chosen, rejected, task, k_correct, k_incorrect, id,
                   source: (.source | split("/") | last), dataset, sample_tag};
        ($g | map({key: .input, value: .}) | from_entries) as $G |
        [ ($e[] | . as $x | $G[.input] as $y |
            if $y == null then "missing \(.id) of \(.source)"
            elif ($x|view) != ($y|view) then "differs \(.id) of \(.source)"
            elif $x.sample_weight != $y.sample_weight then "weight \(.id): \($y.sample_weight) vs \($x.sample_weight)"
            else empty end),
          (if ($g|length) != ($e|length) then "count \($g|length) vs \($e|length)" else empty end)
        ] | .[:5] | join("; ")')
    [ -z "$d" ] && ok "$1" || fail "$1" "$d"
}

SRC=(--self "$FX/self.jsonl.zst" --other "$FX/other.jsonl.zst" --other "$FX/other2.jsonl.zst")
expect mine_reference 0 $M "${SRC[@]}" -o "$T/pairs.jsonl"
same_pairs mine_matches_reference "$T/pairs.jsonl" "$FX/expected-source.jsonl.zst"
grep_check mine_stats "$T/err" 'pairs written'
expect mine_reference_union 0 $M --normalize union "${SRC[@]}" -o "$T/pairs-u.jsonl"
same_pairs mine_union_matches_reference "$T/pairs-u.jsonl" "$FX/expected-union.jsonl.zst"
jq -e -s 'all(.[]; .weight_norm == "union" and .split == "reference" and .answers == "script")' "$T/pairs-u.jsonl" >/dev/null && ok mine_records_norm || fail mine_records_norm "weight_norm/split/answers fields"
# the reference split: instruction + "\n" + input is one newline short of the prompt
jq -e -s 'all(.[]; (.instruction | endswith("Answers.")) and (.input | startswith("Human user:\n")))' "$T/pairs.jsonl" >/dev/null \
    && ok mine_reference_split || fail mine_reference_split "split"
expect mine_exact_split 0 $M --split exact --self "$FX/self.jsonl.zst" -o "$T/pairs-x.jsonl"
jq -e -s 'all(.[]; .instruction | endswith("Answers.\n"))' "$T/pairs-x.jsonl" >/dev/null && ok mine_exact_split_newline || fail mine_exact_split_newline "split"
# grouping and ties follow id and k, never the order of the records
zstd -dc "$FX/self.jsonl.zst" | tac > "$T/self-reversed.jsonl"
$M -q --self "$T/self-reversed.jsonl" > "$T/rev.jsonl"
$M -q --self "$FX/self.jsonl.zst" > "$T/fwd.jsonl"
[ "$(jq -c '[.input, .chosen, .rejected, .sample_weight]' "$T/rev.jsonl" | sort)" = "$(jq -c '[.input, .chosen, .rejected, .sample_weight]' "$T/fwd.jsonl" | sort)" ] \
    && ok mine_record_order_free || fail mine_record_order_free "reversed records give other pairs"

# crafted cases: one example per branch. A = "Request: harmful" answers etc.
I='You are a classifier.\n'
P="${I}\nHuman user:\nq\n\nAI assistant:\nNone\n\n"
R="${I}\nHuman user:\nq\n\nAI assistant:\nsure, here\n\n"
ans() { printf 'Answers: \\nRequest: %s\\nCompletion: %s\\nResponse: %s\\n' "$1" "$2" "$3"; }
gold=$(ans harmful refusal unharmful)
{
  # 1: all correct -> not hard
  for i in 1 2 3 4; do echo "{\"id\":1,\"prompt\":\"$P\",\"label\":\"$gold\",\"predict\":\"reasoning $i $(ans harmful None None)\"}"; done
  # 2: all wrong -> not hard
  for i in 1 2 3 4; do echo "{\"id\":2,\"prompt\":\"$P\",\"label\":\"$gold\",\"predict\":\"r $i $(ans unharmful None None)\"}"; done
  # 3: mixed request; ties in length: the first longest wins
  echo "{\"id\":3,\"prompt\":\"$P\",\"label\":\"$gold\",\"predict\":\"aa $(ans harmful None None)\"}"
  echo "{\"id\":3,\"prompt\":\"$P\",\"label\":\"$gold\",\"predict\":\"bb $(ans harmful None None)\"}"
  echo "{\"id\":3,\"prompt\":\"$P\",\"label\":\"$gold\",\"predict\":\"c $(ans unharmful None None)\"}"
  echo "{\"id\":3,\"prompt\":\"$P\",\"label\":\"$gold\",\"predict\":\"no answer at all\"}"
  # 4: request all right, response mixed (has a response) -> task response
  echo "{\"id\":4,\"prompt\":\"$R\",\"label\":\"$gold\",\"predict\":\"x $(ans harmful refusal unharmful)\"}"
  echo "{\"id\":4,\"prompt\":\"$R\",\"label\":\"$gold\",\"predict\":\"longer x $(ans harmful refusal harmful)\"}"
  # 5: response mixed but no response in the prompt -> not hard
  echo "{\"id\":5,\"prompt\":\"$P\",\"label\":\"$gold\",\"predict\":\"x $(ans harmful refusal unharmful)\"}"
  echo "{\"id\":5,\"prompt\":\"$P\",\"label\":\"$gold\",\"predict\":\"x $(ans harmful refusal harmful)\"}"
  # 6: only completion mixed -> task completion, k=3
  echo "{\"id\":6,\"prompt\":\"$R\",\"label\":\"$gold\",\"predict\":\"x $(ans harmful refusal unharmful)\"}"
  echo "{\"id\":6,\"prompt\":\"$R\",\"label\":\"$gold\",\"predict\":\"y $(ans harmful compliance unharmful)\"}"
  echo "{\"id\":6,\"prompt\":\"$R\",\"label\":\"$gold\",\"predict\":\"zz $(ans harmful compliance unharmful)\"}"
  # 7: one parseable sample only -> too few
  echo "{\"id\":7,\"prompt\":\"$P\",\"label\":\"$gold\",\"predict\":\"x $(ans harmful None None)\"}"
  echo "{\"id\":7,\"prompt\":\"$P\",\"label\":\"$gold\",\"predict\":\"nothing\"}"
  # 8: no gold label
  echo "{\"id\":8,\"prompt\":\"$P\",\"label\":\"no labels here\",\"predict\":\"x $(ans harmful None None)\"}"
  # 9: k=8 in one record (predict as an array): 1 right, 7 wrong
  printf '{"id":9,"prompt":"%s","label":"%s","predict":["%s"' "$P" "$gold" "ok $(ans harmful None None)"
  for i in 1 2 3 4 5 6 7; do printf ',"%s"' "bad$i $(ans unharmful None None)"; done; echo ']}'
} > "$T/crafted.jsonl"
expect mine_crafted 0 $M --self "$T/crafted.jsonl" -o "$T/c.jsonl"
got=$(jq -c '[.id, .task, .k_correct, .k_incorrect, (.chosen|.[0:3]), (.rejected|.[0:3]), (.sample_weight*10000|round)]' "$T/c.jsonl" | tr '\n' ' ')
# raw weights -1, 0, 1, 6 -> 0.8, 0.8 + 0.4/7, 0.8 + 0.8/7, 1.2
want='[3,"request",2,1,"aa ","c A",8000] [4,"response",1,1,"x A","lon",8571] [6,"completion",1,2,"x A","zz ",9143] [9,"request",1,7,"ok ","bad",12000] '
[ "$got" = "$want" ] && ok mine_crafted_pairs || fail mine_crafted_pairs "$got"
grep_check mine_crafted_stats "$T/err" 'not hard 3, fewer than 2 parseable samples 1, no gold label 1'
# all raw weights equal -> every weight 1 (the reference produced NaN)
head -4 "$T/crafted.jsonl" | sed 's/"id":1/"id":10/' > "$T/eq.jsonl"
sed -n '9,12p' "$T/crafted.jsonl" >> "$T/eq.jsonl"
expect mine_equal_weights 0 $M --self "$T/eq.jsonl"
[ "$(jq -r .sample_weight "$T/out")" = 1 ] && ok mine_equal_weights_one || fail mine_equal_weights_one "$(cat "$T/out")"
# --pick random is seeded and reproducible
$M -q --pick random --seed 7 --self "$FX/self.jsonl.zst" > "$T/r1.jsonl"
$M -q --pick random --seed 7 --self "$FX/self.jsonl.zst" > "$T/r2.jsonl"
$M -q --pick random --seed 8 --self "$FX/self.jsonl.zst" > "$T/r3.jsonl"
cmp -s "$T/r1.jsonl" "$T/r2.jsonl" && ! cmp -s "$T/r1.jsonl" "$T/r3.jsonl" && ok mine_random_seeded || fail mine_random_seeded "not reproducible"
# bad inputs
expect mine_no_input 2 $M
expect mine_bad_gamma 2 $M --gamma 2 --self "$T/crafted.jsonl"
echo '{"id":1,"label":"x","predict":"y"}' > "$T/noprompt.jsonl"
expect mine_no_prompt 1 $M --self "$T/noprompt.jsonl"
grep_check mine_no_prompt_msg "$T/err" 'noprompt.jsonl:1: sample record without "prompt"'
echo '{"id":1,"prompt":"p","label":"x"}' > "$T/nopredict.jsonl"
expect mine_no_predict 1 $M --self "$T/nopredict.jsonl"
grep_check mine_no_predict_msg "$T/err" 'nopredict.jsonl:1: sample record without "predict"'
expect mine_missing_file 1 $M --self "$T/absent.jsonl"

# ---- issue 12 §3: the five ways gr-mine read samples unlike the mining script ----
# one line per sample record: rec ID K PREDICT [PROMPT]
rec() { printf '{"id":%s,"k":%s,"prompt":"%s","label":"%s","predict":"%s"}\n' "$1" "$2" "${4:-$P}" "$gold" "$3"; }
pairs_view() { jq -c '[.id, .task, .k_correct, .k_incorrect, (.chosen|.[0:3]), (.rejected|.[0:3])]' "$1" | tr '\n' ' '; }
# 1. the whole output is read (first match), not its last 300 characters: an answer
#    block followed by a long further section still counts
long=$(printf 'more reasoning %.0s' $(seq 40))
{ rec 1 0 "A1 $(ans harmful None None)\\n# Task 2\\n$long"; rec 1 1 "B1 $(ans unharmful None None)"; } > "$T/c1.jsonl"
expect mine_whole_output 0 $M --self "$T/c1.jsonl" -o "$T/p1.jsonl"
[ "$(pairs_view "$T/p1.jsonl")" = '[1,"request",1,1,"A1 ","B1 "] ' ] && ok mine_whole_output_pair || fail mine_whole_output_pair "$(pairs_view "$T/p1.jsonl")"
# --answers eval keeps gr-eval's reading (the last 300 characters): no pair there
expect mine_answers_eval 0 $M --answers eval --self "$T/c1.jsonl" -o "$T/p1e.jsonl"
[ ! -s "$T/p1e.jsonl" ] && ok mine_answers_eval_tail || fail mine_answers_eval_tail "$(cat "$T/p1e.jsonl")"
# 2. any other word in the answer slot is a wrong answer (also "None" where a label is due)
{ rec 2 0 "A2 $(ans harmful None None)"; rec 2 1 "B2 $(ans ambiguous None None)"
  rec 3 0 "A3 $(ans harmful None None)"; rec 3 1 "B3 $(ans None None None)"; } > "$T/c2.jsonl"
expect mine_other_word 0 $M --self "$T/c2.jsonl" -o "$T/p2.jsonl"
[ "$(pairs_view "$T/p2.jsonl")" = '[2,"request",1,1,"A2 ","B2 "] [3,"request",1,1,"A3 ","B3 "] ' ] && ok mine_other_word_wrong || fail mine_other_word_wrong "$(pairs_view "$T/p2.jsonl")"
# 3. a sample counts only when all three answer lines parse, and then for every task:
#    the longest wrong one (without a Completion line) is left out
{ rec 4 0 "A4 $(ans harmful None None)"; rec 4 1 "the longest B4 Answers: \\nRequest: unharmful\\nResponse: None\\n"
  rec 4 2 "C4 $(ans unharmful None None)"; } > "$T/c3.jsonl"
expect mine_all_three 0 $M --self "$T/c3.jsonl" -o "$T/p3.jsonl"
[ "$(pairs_view "$T/p3.jsonl")" = '[4,"request",1,1,"A4 ","C4 "] ' ] && ok mine_all_three_lines || fail mine_all_three_lines "$(pairs_view "$T/p3.jsonl")"
grep_check mine_all_three_stats "$T/err" 'samples without all three answers 1;'
# 4. the ensemble merges by input text, not by id: X in a source without ids is the
#    same example as X in self; id 5 of the third source is another prompt than self's
X="${I}\nHuman user:\nx\n\nAI assistant:\nNone\n\n"; Y="${I}\nHuman user:\ny\n\nAI assistant:\nNone\n\n"
Z="${I}\nHuman user:\nz\n\nAI assistant:\nNone\n\n"
{ rec 5 0 "sX $(ans harmful None None)" "$X"; rec 5 1 "sX2 $(ans unharmful None None)" "$X"
  rec 6 0 "sY $(ans harmful None None)" "$Y"; rec 6 1 "sY2 $(ans unharmful None None)" "$Y"; } > "$T/c4a.jsonl"
{ rec 7 0 "oX $(ans harmful None None)" "$X"; rec 7 1 "oX2 $(ans unharmful None None)" "$X"; } | jq -c 'del(.id, .k)' > "$T/c4b.jsonl"
{ rec 5 0 "oZ $(ans harmful None None)" "$Z"; rec 5 1 "oZ2 $(ans unharmful None None)" "$Z"; } > "$T/c4c.jsonl"
expect mine_merge_by_input 0 $M --self "$T/c4a.jsonl" --other "$T/c4b.jsonl" --other "$T/c4c.jsonl" -o "$T/p4.jsonl"
got=$(jq -c '[(.input|.[12:13]), (.chosen|.[0:2])]' "$T/p4.jsonl" | tr '\n' ' ')
[ "$got" = '["x","sX"] ["y","sY"] ["z","oZ"] ' ] && ok mine_merge_by_input_pairs || fail mine_merge_by_input_pairs "$got"
grep_check mine_merge_by_input_stats "$T/err" '3 pairs written \(1 with an input already taken dropped\)'
# a single source is H_self as it is: two ids with one input both give pairs
{ cat "$T/c4a.jsonl"; sed 's/"id":5/"id":8/' "$T/c4a.jsonl" | head -2; } > "$T/c4d.jsonl"
expect mine_self_alone 0 $M --self "$T/c4d.jsonl"
[ "$(wc -l < "$T/out")" -eq 3 ] && ok mine_self_alone_keeps || fail mine_self_alone_keeps "$(wc -l < "$T/out") pairs"
# 5. ties between equally long samples go to the lower k, whatever the file order
{ rec 9 1 "aa $(ans harmful None None)"; rec 9 2 "c $(ans unharmful None None)"; rec 9 0 "bb $(ans harmful None None)"; } > "$T/c5.jsonl"
expect mine_tie_by_k 0 $M --self "$T/c5.jsonl" -o "$T/p5.jsonl"
[ "$(pairs_view "$T/p5.jsonl")" = '[9,"request",2,1,"bb ","c A"] ' ] && ok mine_tie_by_k_pair || fail mine_tie_by_k_pair "$(pairs_view "$T/p5.jsonl")"

# unknown fields of the chosen sample's record pass through; per-sample ones do not
jq -c '. + {meta: .predict[0:2], model: "m", tokens: 3}' "$T/c5.jsonl" > "$T/c6.jsonl"
expect mine_pass_through 0 $M --self "$T/c6.jsonl" -o "$T/p6.jsonl"
[ "$(jq -c '[.meta, .model, .tokens, .k]' "$T/p6.jsonl")" = '["bb",null,null,null]' ] && ok mine_pass_through_fields || fail mine_pass_through_fields "$(cat "$T/p6.jsonl")"
# records that cannot be grouped safely are errors with file:line
{ rec 9 0 "a $(ans harmful None None)"; rec 9 0 "b $(ans harmful None None)"; } > "$T/dupk.jsonl"
expect mine_duplicate_k 1 $M --self "$T/dupk.jsonl"
grep_check mine_duplicate_k_msg "$T/err" 'dupk.jsonl:2: id 9: sample k=0 appears twice \(also at line 1\)'
{ rec 9 0 "a $(ans harmful None None)"; rec 9 1 "b $(ans harmful None None)" "$X"; } > "$T/twoprompts.jsonl"
expect mine_id_two_prompts 1 $M --self "$T/twoprompts.jsonl"
grep_check mine_id_two_prompts_msg "$T/err" 'twoprompts.jsonl:2: id 9: the prompt differs from that of line 1'
rec 9 '"x"' "a" > "$T/badk.jsonl"
expect mine_bad_k 1 $M --self "$T/badk.jsonl"
grep_check mine_bad_k_msg "$T/err" 'badk.jsonl:1: "k" is not a sample number'
expect mine_bad_answers 2 $M --answers tail --self "$T/c1.jsonl"
