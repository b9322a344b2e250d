#!/usr/bin/env bash
# gr-sft and gr-dpo take the lock on their --out folder (DIR/.lock, gr_lock.h):
# while another process holds it a run exits 4 (GR_EXIT_LOCKED) at once,
# touching nothing; once it is free the run goes on and removes the lock file.
. "$(dirname "$0")/../lib.sh"
M=$GR_ROOT/testdata/models/tiny-gqa-tied
D=$GR_ROOT/testdata/train/synth.jsonl
wait_for() { local i; for i in $(seq 300); do "$@" && return 0; sleep 0.1; done; return 1; }
# hold DIR: an flock(1) holder on DIR/.lock until its sleep ends or it is killed
hold() { mkdir -p "$1"; ( exec 9>"$1/.lock"; flock 9; touch "$1/held"; exec sleep 60 ) & holder=$!; wait_for test -e "$1/held"; }

hold "$T/sft"
expect sft_out_locked 4 "$GR_BIN/gr-sft" --base "$M" --data "$D" --out "$T/sft" --max-steps 2 --quiet
grep_check sft_out_locked_msg "$T/err" "sft: another run .*is writing it"
[ -z "$(ls "$T/sft" | grep -v held)" ] && ok sft_locked_touches_nothing || fail sft_locked_touches_nothing "$(ls "$T/sft")"
kill $holder; wait $holder 2>/dev/null
expect sft_out_unlocked 0 "$GR_BIN/gr-sft" --base "$M" --data "$D" --out "$T/sft" --max-steps 2 --quiet
[ ! -e "$T/sft/.lock" ] && ok sft_lock_removed || fail sft_lock_removed "lock file left"

# gr-dpo on raw-id pairs of the tiny model
printf '{"prompt_ids":[1,5],"chosen_ids":[6,2],"rejected_ids":[7,2]}\n' > "$T/pairs.jsonl"
hold "$T/dpo"
expect dpo_out_locked 4 "$GR_BIN/gr-dpo" --base "$M" --pairs "$T/pairs.jsonl" --out "$T/dpo" --max-steps 1 --quiet
grep_check dpo_out_locked_msg "$T/err" "dpo: another run .*is writing it"
kill $holder; wait $holder 2>/dev/null
expect dpo_out_unlocked 0 "$GR_BIN/gr-dpo" --base "$M" --pairs "$T/pairs.jsonl" --out "$T/dpo" --max-steps 1 --quiet
[ ! -e "$T/dpo/.lock" ] && ok dpo_lock_removed || fail dpo_lock_removed "lock file left"
