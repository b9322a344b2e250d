# The README's statements about every tool (issue 12 §5): which tools take
# --map, that every tool reading records takes --replace-invalid, that a
# resumable .zst output is refused, and that the verdict's error field is
# documented.
. "$(dirname "$0")/../lib.sh"
R=$GR_ROOT/README.md
for t in gr-classify gr-sample gr-eval gr-mine gr-synth gr-tokenize; do
    "$GR_BIN/$t" --help >"$T/h" 2>&1
    grep -q -- '--map' "$T/h" && ok "readme_map_$t" || fail "readme_map_$t" "README says $t takes --map; --help does not list it"
done
for t in gr-sft gr-dpo; do
    "$GR_BIN/$t" --help >"$T/h" 2>&1
    grep -q -- '--map' "$T/h" && fail "readme_no_map_$t" "README says $t takes no --map" || ok "readme_no_map_$t"
    expect "readme_no_map_${t}_refused" 2 "$GR_BIN/$t" --map . --base x --out "$T/x"
done
grep -q '`gr-sft` and `gr-dpo` read' "$R" && ok readme_map_sentence || fail readme_map_sentence "the --map sentence is gone"
for t in gr-classify gr-sample gr-eval gr-mine gr-synth gr-tokenize gr-sft gr-dpo; do
    "$GR_BIN/$t" --help >"$T/h" 2>&1
    grep -q -- '--replace-invalid' "$T/h" && ok "readme_replace_invalid_$t" || fail "readme_replace_invalid_$t" "--help has no --replace-invalid"
done
# a resumable .zst output is refused, before any work
printf '{"prompt":"hi","label":{"request":"harmful"}}\n' >"$T/in.jsonl"
expect readme_synth_zst_refused 1 "$GR_BIN/gr-synth" --endpoint http://127.0.0.1:9/v1 -q -o "$T/o.jsonl.zst" "$T/in.jsonl"
grep_check readme_synth_zst_msg "$T/err" 'appending to a zstd file is not supported'
grep -q 'a `.zst` name there is refused' "$R" && ok readme_zst_sentence || fail readme_zst_sentence "missing"
grep -q "and \`error\`: present only when the record could not be classified" "$R" && ok readme_error_field || fail readme_error_field "missing"
