# gr-mine against the reference mining logic (scripts/make-mine-fixture.py), and
# crafted cases for every branch.
. "$(dirname "$0")/../lib.sh"
M=$GR_BIN/gr-mine
FX=$GR_ROOT/testdata/mine

# same_pairs NAME GOT EXPECTED(.zst): same pairs (by id), same texts, same weights (1e-12)
same_pairs() {
    local d
    d=$(jq -rn --slurpfile g "$2" --slurpfile e <(zstd -dc "$3") '
        ($g | map({key: (.id|tostring), value: .}) | from_entries) as $G |
        [ ($e[] | . as $x | $G[.id|tostring] as $y |
            if $y == null then "missing \(.id)"
            elif ([$x.instruction, $x.input, $x.chosen, $x.rejected, $x.task, $x.k_correct, $x.k_incorrect] !=
                  [$y.instruction, $y.input, $y.chosen, $y.rejected, $y.task, $y.k_correct, $y.k_incorrect]) then "differs \(.id)"
            elif (($x.sample_weight - $y.sample_weight)|fabs) > 1e-12 then "weight \(.id): \($y.sample_weight) vs \($x.sample_weight)"
            else empty end),
          (if ($g|length) != ($e|length) then "count \($g|length) vs \($e|length)" else empty end)
        ] | .[:5] | join("; ")')
    [ -z "$d" ] && ok "$1" || fail "$1" "$d"
}

expect mine_reference 0 $M --self "$FX/self.jsonl.zst" --other "$FX/other.jsonl.zst" -o "$T/pairs.jsonl"
same_pairs mine_matches_reference "$T/pairs.jsonl" "$FX/expected-source.jsonl.zst"
grep_check mine_stats "$T/err" 'pairs written'
expect mine_reference_union 0 $M --normalize union --self "$FX/self.jsonl.zst" --other "$FX/other.jsonl.zst" -o "$T/pairs-u.jsonl"
same_pairs mine_union_matches_reference "$T/pairs-u.jsonl" "$FX/expected-union.jsonl.zst"
jq -e -s 'all(.[]; .weight_norm == "union" and .split == "reference")' "$T/pairs-u.jsonl" >/dev/null && ok mine_records_norm || fail mine_records_norm "weight_norm/split fields"
# the reference split: instruction + "\n" + input is one newline short of the prompt
jq -e -s 'all(.[]; (.instruction | endswith("Answers.")) and (.input | startswith("Human user:\n")))' "$T/pairs.jsonl" >/dev/null \
    && ok mine_reference_split || fail mine_reference_split "split"
expect mine_exact_split 0 $M --split exact --self "$FX/self.jsonl.zst" -o "$T/pairs-x.jsonl"
jq -e -s 'all(.[]; .instruction | endswith("Answers.\n"))' "$T/pairs-x.jsonl" >/dev/null && ok mine_exact_split_newline || fail mine_exact_split_newline "split"

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
