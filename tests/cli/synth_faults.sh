# gr-synth's central promise: with faults (429 with and without Retry-After,
# 500/502/503, replies slower than --timeout, malformed JSON, wrong labels,
# empty answers, dropped and half-sent replies) and SIGKILLs mid-run, every seed
# ends exactly once in the output or the rejects, and the output equals a
# fault-free run's byte for byte, except for the order of lines.
. "$(dirname "$0")/../lib.sh"
. "$GR_ROOT/tests/synth_lib.sh"
S=$GR_BIN/gr-synth
N=300
make_seeds "$T/seeds.jsonl" $N
FAST="--backoff-base 0.02 --backoff-max 0.2 --max-retries 30 --max-attempts 3"

# 1. the reference: a server without faults (only the scripted always-wrong seeds)
start_server clean
"$S" --endpoint "$URL" --model m -j 8 $FAST -o "$T/ref.jsonl" --rejects "$T/ref.rej.jsonl" \
    "$T/seeds.jsonl" 2>"$T/ref.err"
rc=$?
nref=$(wc -l <"$T/ref.jsonl")
nrej=$(wc -l <"$T/ref.rej.jsonl")
if [ $rc -eq 0 ] && [ $((nref + nrej)) -eq $N ] && [ "$nrej" -eq 5 ]; then ok synth_faults_reference_run
else fail synth_faults_reference_run "rc $rc, $nref accepted, $nrej rejected: $(tail -3 "$T/ref.err")"; fi

# 2. the same seeds against a faulty server, killed twice with SIGKILL mid-run
# (Retry-After pauses every new request for a whole second, so it is drawn
# less often than the other faults to keep the test short)
MIX=429,500,502,503,slow,badjson,wrong,empty,drop,partial
start_server faulty --fault-rate 0.35 --max-faults 2 --slow 0.6 --fault-seed 7 --faults "429ra=1,$MIX,$MIX"
FAULTY="--endpoint $URL --model m -j 16 --timeout 0.3 $FAST -o $T/out.jsonl --rejects $T/out.rej.jsonl"
kills=0
for target in 60 160; do
    "$S" $FAULTY "$T/seeds.jsonl" 2>>"$T/faulty.err" &
    pid=$! # gr-synth itself, not a subshell
    for i in $(seq 1 400); do
        have=$(cat "$T/out.jsonl" 2>/dev/null | wc -l)
        [ "$have" -ge $target ] && break
        kill -0 $pid 2>/dev/null || break
        sleep 0.02
    done
    if kill -0 $pid 2>/dev/null; then kill -KILL $pid; kills=$((kills + 1)); fi
    wait $pid 2>/dev/null
done
"$S" $FAULTY "$T/seeds.jsonl" 2>>"$T/faulty.err"
rc=$?
if [ $rc -eq 0 ] && [ $kills -eq 2 ]; then ok synth_faults_killed_and_resumed
else fail synth_faults_killed_and_resumed "rc $rc after $kills kills: $(tail -5 "$T/faulty.err")"; fi

# every seed exactly once in output + rejects
python3 - "$T/seeds.jsonl" "$T/out.jsonl" "$T/out.rej.jsonl" >"$T/count" 2>&1 <<'PY'
import json, sys
seeds = [json.loads(l) for l in open(sys.argv[1])]
want = sorted(json.dumps(s.get("id", i + 1)) for i, s in enumerate(seeds))
got = []
for p in sys.argv[2:]:
    for l in open(p):
        got.append(json.dumps(json.loads(l)["id"]))
dup = len(got) - len(set(got))
missing = set(want) - set(got)
print("dup=%d missing=%d extra=%d" % (dup, len(missing), len(set(got) - set(want))))
PY
if grep -q '^dup=0 missing=0 extra=0$' "$T/count"; then ok synth_faults_every_seed_exactly_once
else fail synth_faults_every_seed_exactly_once "$(cat "$T/count")"; fi

if cmp -s <(LC_ALL=C sort "$T/ref.jsonl") <(LC_ALL=C sort "$T/out.jsonl"); then ok synth_faults_output_identical
else fail synth_faults_output_identical "$(diff <(LC_ALL=C sort "$T/ref.jsonl") <(LC_ALL=C sort "$T/out.jsonl") | head -c 400)"; fi
if cmp -s <(LC_ALL=C sort "$T/ref.rej.jsonl") <(LC_ALL=C sort "$T/out.rej.jsonl"); then ok synth_faults_rejects_identical
else fail synth_faults_rejects_identical "$(diff <(LC_ALL=C sort "$T/ref.rej.jsonl") <(LC_ALL=C sort "$T/out.rej.jsonl") | head -c 400)"; fi

# the faults did happen, and nothing was paid twice beyond what the kills cut off
curl -s "${URL%/v1}/stats" >"$T/stats"
python3 - "$T/stats" $N >"$T/paid" <<'PY'
import json, sys
s = json.load(open(sys.argv[1]))
n = int(sys.argv[2])
f = s["faults"]
kinds = [k for k in ("429", "429ra=1", "500", "502", "503", "slow", "badjson", "wrong", "empty", "drop", "partial") if f.get(k)]
twice = sum(v - 1 for v in s["ok_by_body"].values() if v > 1)
print("kinds=%d ok=%d twice=%d" % (len(kinds), s["ok"], twice))
PY
read -r kinds okc twice <"$T/paid"
if [ "${kinds#kinds=}" -ge 10 ]; then ok synth_faults_injected; else fail synth_faults_injected "$(cat "$T/paid") $(cat "$T/stats" | head -c 300)"; fi
# a request answered "ok" twice can only be one in flight when a SIGKILL came (2 kills x 16)
if [ "${twice#twice=}" -le 32 ]; then ok synth_faults_no_double_pay; else fail synth_faults_no_double_pay "$(cat "$T/paid")"; fi
grep_check synth_faults_torn_tail_or_clean_resume "$T/faulty.err" 'skipped \(already done\)'
