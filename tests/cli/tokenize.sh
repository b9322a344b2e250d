# gr-tokenize: options, record kinds, truncation, text/decode modes, sources.
. "$(dirname "$0")/../lib.sh"
G=$GR_BIN/gr-tokenize
L3=$GR_ROOT/testdata/tokenizer/llama3/tokenizer.json.zst
SM=$GR_ROOT/testdata/tokenizer/smollm2/tokenizer.json.zst
unset GR_MODEL

expect tok_help 0 $G --help
grep_check tok_help_text "$T/out" 'Usage: gr-tokenize'
expect tok_version 0 $G --version
expect tok_bad_option 2 $G --nope
expect tok_bad_cutoff 2 $G -t "$L3" --cutoff 12x
expect tok_zero_cutoff 2 $G -t "$L3" --cutoff 0
expect tok_no_tokenizer 2 $G /dev/null
expect tok_bad_template 2 $G -t "$L3" --template alpaca /dev/null
expect tok_raw_system 2 $G -t "$L3" --template raw --system hi /dev/null
expect tok_text_cutoff 2 $G -t "$L3" --text --cutoff 10 /dev/null
expect tok_count_alone 2 $G -t "$L3" --count /dev/null
expect tok_missing_tokenizer 1 $G -t /nonexistent/tok.json /dev/null
grep_check tok_missing_tokenizer_msg "$T/err" '^gr-tokenize: /nonexistent/tok.json'

# --text: plain text, special-token strings stay text
printf '{"text":"Hello world","k":1}\n{"text":"<|eot_id|>"}\n' > "$T/t.jsonl"
expect tok_text 0 $G -t "$L3" --text "$T/t.jsonl"
got=$(jq -c '[.k, .ids]' "$T/out" | tr '\n' ' ')
[ "$got" = '[1,[9906,1917]] [null,[27,91,68,354,851,91,29]] ' ] && ok tok_text_ids || fail tok_text_ids "$got"
expect tok_count 0 $G -t "$L3" --text --count "$T/t.jsonl"
[ "$(jq -c .n_tokens "$T/out" | tr '\n' ' ')" = '2 7 ' ] && ok tok_count_values || fail tok_count_values "$(cat "$T/out")"
grep_check tok_text_report "$T/err" '2 records, 9 tokens'

# --text | --decode gives the text back, for every adversarial string
zstd -dc "$GR_ROOT/testdata/tokenizer/adversarial.jsonl.zst" | jq -c '{name, text}' | grep -v one-megabyte > "$T/adv.jsonl"
$G -q -t "$L3" --text "$T/adv.jsonl" | $G -q -t "$L3" --decode > "$T/back.jsonl"
bad=$(jq -n --slurpfile a "$T/adv.jsonl" --slurpfile b "$T/back.jsonl" \
    '[range($a|length) as $i | select($a[$i].text != $b[$i].text) | $a[$i].name] | length')
[ "$bad" = 0 ] && ok tok_decode_round_trip || fail tok_decode_round_trip "$bad texts differ"
# ... and the ids are the reference ids
zstd -dc "$GR_ROOT/testdata/tokenizer/adversarial.jsonl.zst" | grep -v one-megabyte | jq -c '{name, text, want: .smollm2}' > "$T/advs.jsonl"
bad=$($G -q -t "$SM" --text "$T/advs.jsonl" | jq -s '[.[] | select(.ids != .want)] | length')
[ "$bad" = 0 ] && ok tok_text_smollm2_reference || fail tok_text_smollm2_reference "$bad texts differ"
printf '{"ids":[128000,9906,128009]}\n' > "$T/ids.jsonl"
expect tok_decode_special 0 $G -t "$L3" --decode "$T/ids.jsonl"
grep_check tok_decode_special_kept "$T/out" '"text":"<\|begin_of_text\|>Hello<\|eot_id\|>"'
expect tok_decode_skip 0 $G -t "$L3" --decode --skip-special "$T/ids.jsonl"
grep_check tok_decode_skip_text "$T/out" '"text":"Hello"'
printf '{"ids":[128256]}\n' > "$T/badids.jsonl"
expect tok_decode_bad_id 1 $G -t "$L3" --decode "$T/badids.jsonl"
grep_check tok_decode_bad_id_line "$T/err" ':1: ids\[0\]'

# alpaca records through the llama3 template (REFERENCE-SEMANTICS §1)
cat > "$T/a.jsonl" <<'J'
{"id":"r1","instruction":"You are a classifier.\n","input":"Human user:\nhi <|eot_id|>\n\n","output":"Answers: \nRequest: unharmful\n"}
{"instruction":"You are a classifier.\n","input":"","output":"x"}
J
expect tok_alpaca 0 $G -t "$L3" "$T/a.jsonl"
got=$(jq -c '[.id, .ids[:5], .ids[.n_prompt-5:.n_prompt], .ids[-1], .template, ([.ids[] | select(. == 128009)] | length)]' "$T/out" | head -1)
[ "$got" = '["r1",[128000,128006,882,128007,271],[128009,128006,78191,128007,271],128009,"llama3",2]' ] \
    && ok tok_alpaca_layout || fail tok_alpaca_layout "$got"
[ "$(jq -c .id "$T/out" | tail -1)" = 1 ] && ok tok_alpaca_seq_id || fail tok_alpaca_seq_id "$(tail -1 "$T/out")"
grep_check tok_alpaca_report "$T/err" '2 records, [0-9]+ tokens, 0 truncated, 0 dropped \(cutoff 2048, template llama3\)'
printf '{"instruction":"a","input":"b"}\n{"instruction":"a"\n' > "$T/bad.jsonl"
printf '{"instruction":"a\\u0000b","input":"b","output":"c"}\n' > "$T/nul.jsonl"
expect tok_alpaca_nul 1 $G -t "$L3" "$T/nul.jsonl"
grep_check tok_alpaca_nul_msg "$T/err" 'nul.jsonl:1: .*NUL'
expect tok_alpaca_no_output 1 $G -t "$L3" "$T/bad.jsonl"
grep_check tok_alpaca_no_output_line "$T/err" 'bad.jsonl:1: no string `output`'

# truncation: lengths from an uncut run, cut with LLaMA-Factory's rule in jq, equal the tool's
if have_shared; then
    B=$SHARED/data/guardreasoner/benchmark/0_2_OpenAIModeration.json
    $G -q -t "$L3" --cutoff 100000 "$B" | jq -c '[.n_prompt, (.ids|length) - .n_prompt]' > "$T/full"
    expect tok_cutoff 0 $G -t "$L3" --cutoff 300 "$B"
    jq -c '[.n_prompt, (.ids|length) - .n_prompt]' "$T/out" > "$T/cut"
    jq -c --argjson C 300 '.[0] as $S | .[1] as $T |
        (if $T*2 < $C then $C elif $S*2 < $C then $C - $S else ($C * ($T / ($S + $T)) | floor) end) as $mt |
        ([$mt, $T] | min) as $nt | [([($C - $nt), 0] | max), $S] | min | [., $nt]' "$T/full" > "$T/want"
    cmp -s "$T/cut" "$T/want" && ok tok_cutoff_rule || fail tok_cutoff_rule "$(diff "$T/cut" "$T/want" | head -3)"
    ntrunc=$(jq -s --argjson C 300 '[.[] | select(.[0] + .[1] > $C)] | length' "$T/full")
    grep_check tok_cutoff_count "$T/err" " $ntrunc truncated"
    [ "$(jq -s 'map(select(.truncated)) | length' "$T/out")" = "$ntrunc" ] && ok tok_cutoff_flag || fail tok_cutoff_flag "flag count"
    expect tok_drop_long 0 $G -t "$L3" --cutoff 300 --drop-long "$B"
    kept=$(wc -l < "$T/out")
    [ $((kept + ntrunc)) = "$(wc -l < "$T/full")" ] && ok tok_drop_long_count || fail tok_drop_long_count "$kept kept"
    grep_check tok_drop_long_report "$T/err" " $ntrunc dropped"
    # threads change nothing
    $G -q -t "$L3" --threads 2 --cutoff 300 "$B" > "$T/th2"
    $G -q -t "$L3" --cutoff 300 "$B" > "$T/th1"
    cmp -s "$T/th1" "$T/th2" && ok tok_threads_same || fail tok_threads_same "outputs differ"
    # LLaMA 3 from Meta's tiktoken file: the same records
    M=$SHARED/data/tokenizers/llama3/tokenizer.model
    $G -q -t "$M" --cutoff 300 "$B" > "$T/tt"
    cmp -s "$T/th1" "$T/tt" && ok tok_tiktoken_source_same || fail tok_tiktoken_source_same "outputs differ"
    # -o writes atomically, .zst compresses
    expect tok_output_zst 0 $G -q -t "$L3" "$B" -o "$T/o.jsonl.zst"
    zstd -dc "$T/o.jsonl.zst" | cmp -s - "$T/full.raw" 2>/dev/null
    [ "$(zstd -dc "$T/o.jsonl.zst" | wc -l)" = "$(wc -l < "$T/full")" ] && ok tok_output_zst_lines || fail tok_output_zst_lines "line count"
fi

# pair records (HS-DPO): both responses cut to the same length
cat > "$T/p.jsonl" <<'J'
{"instruction":"You are a classifier.","input":"\nHuman user:\nhello","chosen":"a b c d e f g h i j","rejected":"k","sample_weight":1.2}
J
expect tok_pair 0 $G -t "$L3" "$T/p.jsonl"
got=$(jq -c '[.prompt_ids[:2], .chosen_ids[-1], .rejected_ids, .weight, .template]' "$T/out")
[ "$got" = '[[128000,128006],128009,[74,128009],1.2,"llama3"]' ] && ok tok_pair_fields || fail tok_pair_fields "$got"
expect tok_pair_cut 0 $G -t "$L3" --cutoff 20 "$T/p.jsonl"
got=$(jq -c '[(.prompt_ids|length), (.chosen_ids|length), (.rejected_ids|length), .truncated]' "$T/out")
[ "$got" = '[13,7,2,true]' ] && ok tok_pair_cut_lengths || fail tok_pair_cut_lengths "$got"

# chatml for SmolLM2, chosen by default from the tokenizer
expect tok_chatml_default 0 $G -t "$SM" "$T/a.jsonl"
grep_check tok_chatml_template "$T/out" '"template":"chatml"'
[ "$(jq -c '.ids[:1] + .ids[-1:]' "$T/out" | head -1)" = '[1,2]' ] && ok tok_chatml_ends || fail tok_chatml_ends "$(head -c 200 "$T/out")"

# the GGUF source, when the test model is cached
GG=${GR_TEST_GGUF:-$(ls "$HOME"/.cache/guardreasoner-c/SmolLM2-135M-Instruct.Q4_1.gguf "$HOME"/.cache/guardreasoner-c/*SmolLM2*.gguf "$HOME"/.cache/guardreasoner-c/*/*SmolLM2*.gguf 2>/dev/null | head -1)}
if [ -n "$GG" ] && [ -f "$GG" ]; then
    $G -q -t "$SM" "$T/a.jsonl" > "$T/j"
    expect tok_gguf 0 $G -t "$GG" "$T/a.jsonl"
    cmp -s "$T/j" "$T/out" && ok tok_gguf_same_as_json || fail tok_gguf_same_as_json "outputs differ"
fi

# a LLaMA 3 GGUF (vocabulary only, made by scripts/make-tokenizer-fixtures.py)
if [ -n "${GR_TEST_GGUF_LLAMA3:-}" ] && [ -f "$GR_TEST_GGUF_LLAMA3" ]; then
    $G -q -t "$L3" --text "$T/adv.jsonl" > "$T/j"
    expect tok_gguf_llama3 0 $G -t "$GR_TEST_GGUF_LLAMA3" --text "$T/adv.jsonl"
    cmp -s "$T/j" "$T/out" && ok tok_gguf_llama3_same_as_json || fail tok_gguf_llama3_same_as_json "outputs differ"
fi
