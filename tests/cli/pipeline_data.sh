# scripts/pipeline.mk's other two sources of reasoning data, up to the R-SFT token
# records (no training): SEEDS + ENDPOINT (gr-synth against tests/synth_server.py, the
# seeds mapped by scripts/seeds/*.jq; neither the API key nor the URL's secrets appear in
# make's output, make -n's listing or any file of the run; a second run asks for
# nothing) and DATA=FILE in GuardReasonerTrain's alpaca form (a JSON array per set, the
# set named by the file).
. "$(dirname "$0")/../lib.sh"
. "$GR_ROOT/tests/synth_lib.sh"
command -v jq >/dev/null || { echo "# skip: jq not installed"; exit 0; }
command -v python3 >/dev/null || { echo "# skip: python3 not installed"; exit 0; }
model=$("$GR_ROOT/scripts/fetch-test-model"); rc=$?
if [ "$rc" -eq 3 ]; then echo "# skip: the test model could not be downloaded"; exit 0; fi
[ "$rc" -eq 0 ] || { fail pipeline_data_test_model "scripts/fetch-test-model exited $rc"; exit 0; }

KEY=sk-pipeline-test-0123456789
QSECRET=qs3cretPipelineValue
start_server main --key "$KEY"
export OPENAI_API_KEY=$KEY
ENDPOINT="$URL?api-key=$QSECRET"
SEEDDIR=$GR_ROOT/testdata/seeds
O=$T/seeds
pmake() { make --no-print-directory -f "$GR_ROOT/scripts/pipeline.mk" PROFILE=ci BIN="$GR_BIN" "$@"; }
seeds_make() {
    pmake OUT="$O" SEEDS="WildGuardTrainR=$SEEDDIR/wildguardtrain.jsonl AegisTrain=$SEEDDIR/aegistrain.jsonl" \
        ENDPOINT="$ENDPOINT" SYNTH_MODEL=test-model KEEP_SET=WildGuardTrainR DIVERSE_SETS=AegisTrain "$@"
}
secret_free() { # secret_free NAME FILE...
    local name=$1
    shift
    if grep -rlE "$KEY|$QSECRET" "$@" >"$T/hits" 2>/dev/null; then fail "$name" "a secret in: $(tr '\n' ' ' <"$T/hits")"
    else ok "$name"; fi
}

# ---- SEEDS + ENDPOINT: gr-synth writes the sets, then gr-tokenize ----
expect pipeline_seeds_dry_run 0 seeds_make -n "$O/tok/all.jsonl" "$O/tok/drop-AegisTrain.jsonl"
cp "$T/out" "$T/dry.out"; cp "$T/err" "$T/dry.err"
grep -q "$GR_BIN/gr-synth " "$T/dry.out" && ok pipeline_seeds_dry_run_lists_synth \
    || fail pipeline_seeds_dry_run_lists_synth "$(head -c 300 "$T/dry.out")"
expect pipeline_seeds_runs 0 seeds_make "$O/tok/all.jsonl" "$O/tok/drop-AegisTrain.jsonl"
cp "$T/out" "$T/run.out"; cp "$T/err" "$T/run.err"
for s in WildGuardTrainR:wildguardtrain AegisTrain:aegistrain; do
    set_name=${s%%:*}; seeds=$SEEDDIR/${s#*:}.jsonl; f=$O/data/sets/$set_name.jsonl
    # every seed with a label answered (the server answers the labels it is given), in the
    # alpaca form, with its set and its seed's id
    want=$(jq -c "$(cat "$GR_ROOT/scripts/seeds/${s#*:}.jq")" "$seeds" | jq -s '[.[] | select(.label.request != null)] | length')
    bad=$(jq -s --arg s "$set_name" '[.[] | select(.source != $s or (.instruction | type) != "string" or (.input | startswith("Human user:\n") | not)
            or (.output | test("Answers: \nRequest: (harmful|unharmful)\n") | not))] | length' "$f" 2>/dev/null)
    if [ -f "$f" ] && [ "$(wc -l <"$f")" -eq "$want" ] && [ "$want" -gt 0 ] && [ "$bad" = 0 ]; then
        ok "pipeline_seeds_set_$set_name"
    else fail "pipeline_seeds_set_$set_name" "$(wc -l <"$f" 2>/dev/null) records, $want seeds with a label; $(head -c 300 "$T/run.err")"; fi
done
# the seeds' own ids are kept (WildGuardTrain's have none: SET:N)
want_ids=$(jq -r ".id as \$i | ($(cat "$GR_ROOT/scripts/seeds/aegistrain.jq")) | select(.label.request != null) | \$i" "$SEEDDIR/aegistrain.jsonl" | sort | tr '\n' ' ')
[ -n "$want_ids" ] && [ "$(jq -r .id "$O/data/sets/AegisTrain.jsonl" | sort | tr '\n' ' ')" = "$want_ids" ] \
    && ok pipeline_seeds_ids || fail pipeline_seeds_ids "$(jq -r .id "$O/data/sets/AegisTrain.jsonl" | tr '\n' ' '), wanted $want_ids"
n_train=$(wc -l <"$O/data/train.jsonl")
[ "$(jq -r .id "$O/tok/all.jsonl" | LC_ALL=C sort)" = "$(jq -r .id "$O/data/train.jsonl" | LC_ALL=C sort)" ] && [ "$n_train" -gt 0 ] \
    && ok pipeline_seeds_tokens || fail pipeline_seeds_tokens "$(wc -l <"$O/tok/all.jsonl") token records of $n_train"
[ "$(wc -l <"$O/tok/drop-AegisTrain.jsonl")" -eq "$(wc -l <"$O/data/sets/WildGuardTrainR.jsonl")" ] \
    && ok pipeline_seeds_drop_set || fail pipeline_seeds_drop_set "$(wc -l <"$O/tok/drop-AegisTrain.jsonl") records"
# the key reached the server (it refuses any other), and no secret is printed or written
grep -q "$GR_BIN/gr-synth .*--map" "$T/run.out" && ok pipeline_seeds_mapped || fail pipeline_seeds_mapped "$(grep gr-synth "$T/run.out" | head -c 300)"
secret_free pipeline_seeds_no_secret_in_logs "$T/dry.out" "$T/dry.err" "$T/run.out" "$T/run.err"
secret_free pipeline_seeds_no_secret_in_files "$O"
grep -qxF "ENDPOINT_SHOWN=${URL}?api-key=***" "$O/stamps/data" && ok pipeline_seeds_stamp_redacted || fail pipeline_seeds_stamp_redacted "$(cat "$O/stamps/data")"
# a second run asks the server nothing; another key in the query changes nothing either
curl -s -X POST "${URL%/v1}/reset" >/dev/null 2>&1
expect pipeline_seeds_second_run 0 seeds_make "$O/tok/all.jsonl" "$O/tok/drop-AegisTrain.jsonl"
grep -q "gr-synth" "$T/out" && fail pipeline_seeds_nothing_twice "$(grep gr-synth "$T/out" | head -c 200)" || ok pipeline_seeds_nothing_twice
ENDPOINT="$URL?api-key=otherValue123456"
expect pipeline_seeds_key_rotation_dry 0 seeds_make -n "$O/tok/all.jsonl"
grep -q "gr-synth" "$T/out" && fail pipeline_seeds_key_rotation_nothing "$(grep gr-synth "$T/out" | head -c 200)" \
    || ok pipeline_seeds_key_rotation_nothing
# a wrong key: gr-synth fails, make fails, the set is not written, and the key is not shown
export OPENAI_API_KEY=sk-wrong-pipeline-987654321
expect pipeline_seeds_wrong_key 2 pmake OUT="$T/bad" SEEDS="AegisTrain=$SEEDDIR/aegistrain.jsonl" ENDPOINT="$URL" \
    KEEP_SET= DIVERSE_SETS= "$T/bad/data/train.jsonl"
[ ! -e "$T/bad/data/sets/AegisTrain.jsonl" ] && ok pipeline_seeds_wrong_key_no_set || fail pipeline_seeds_wrong_key_no_set "written"
grep -q 'sk-wrong-pipeline-987654321' "$T/out" "$T/err" && fail pipeline_seeds_wrong_key_not_shown "$(grep -h sk-wrong "$T/out" "$T/err" | head -c 200)" \
    || ok pipeline_seeds_wrong_key_not_shown
export OPENAI_API_KEY=$KEY

# ---- DATA=FILE: GuardReasonerTrain's alpaca form (a JSON array; no ids, no labels) ----
for s in WildGuardTrainR AegisTrain; do
    jq -s '[.[] | {instruction, input, output}]' "$O/data/sets/$s.jsonl" >"$T/${s/AegisTrain/AegisTrainR}.json"
done
zstd -q "$T/AegisTrainR.json" -o "$T/AegisTrainR.json.zst" && rm "$T/AegisTrainR.json"
D=$T/data
expect pipeline_data_runs 0 pmake OUT="$D" DATA="$T/WildGuardTrainR.json $T/AegisTrainR.json.zst" MINE_DATA= MINE_PER_SET=1000 \
    KEEP_SET=WildGuardTrainR DIVERSE_SETS=AegisTrainR "$D/tok/all.jsonl" "$D/tok/drop-AegisTrainR.jsonl" "$D/data/mine.jsonl"
for s in WildGuardTrainR AegisTrainR; do
    f=$D/data/sets/$s.jsonl; src=$T/$s.json; [ -f "$src" ] || src=$T/$s.json.zst
    # the records as given, numbered SET:N, their set in source
    if [ -f "$f" ] && [ "$(jq -c '{instruction, input, output}' "$f")" = "$(zstd -dcf "$src" | jq -c '.[]')" ] \
        && [ "$(jq -r '.id' "$f" | tr '\n' ' ')" = "$(seq 0 $(($(wc -l <"$f") - 1)) | sed "s/^/$s:/" | tr '\n' ' ')" ] \
        && [ "$(jq -r .source "$f" | sort -u)" = "$s" ]; then ok "pipeline_data_set_$s"
    else fail "pipeline_data_set_$s" "$(head -c 300 "$f" 2>/dev/null) $(head -c 300 "$T/err")"; fi
done
[ "$(jq -r .id "$D/tok/all.jsonl" | LC_ALL=C sort)" = "$(jq -r .id "$D/data/train.jsonl" | LC_ALL=C sort)" ] \
    && [ "$(wc -l <"$D/tok/drop-AegisTrainR.jsonl")" -eq "$(wc -l <"$D/data/sets/WildGuardTrainR.jsonl")" ] \
    && ok pipeline_data_tokens || fail pipeline_data_tokens "$(wc -l <"$D/tok/all.jsonl") token records"
# the mining records keep their outputs: their answer blocks are the gold answers
[ "$(wc -l <"$D/data/mine.jsonl")" -eq "$(wc -l <"$D/data/train.jsonl")" ] \
    && [ "$(jq -s '[.[] | select(.output == null)] | length' "$D/data/mine.jsonl")" = 0 ] && ok pipeline_data_mine_records || fail pipeline_data_mine_records "$(head -c 200 "$D/data/mine.jsonl")"
grep -q 'training and evaluation requests are disjoint' "$T/out" && ok pipeline_data_disjoint || fail pipeline_data_disjoint "$(tail -c 300 "$T/err")"
