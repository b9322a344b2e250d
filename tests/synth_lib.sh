# Helpers for the gr-synth CLI tests: a fault-injecting server on 127.0.0.1
# (tests/synth_server.py) started and stopped per test script.
SERVER_PIDS=""
cleanup_synth() {
    for p in $SERVER_PIDS; do kill "$p" 2>/dev/null; wait "$p" 2>/dev/null; done
    rm -rf "$T"
}
trap cleanup_synth EXIT

# start_server NAME [ARGS...]: starts a server; its base URL in $URL
start_server() {
    local name=$1
    shift
    rm -f "$T/$name.port"
    python3 "$GR_ROOT/tests/synth_server.py" --port-file "$T/$name.port" "$@" 2>"$T/$name.log" &
    SERVER_PIDS="$SERVER_PIDS $!"
    local i
    for i in $(seq 1 100); do
        [ -s "$T/$name.port" ] && break
        sleep 0.05
    done
    URL="http://127.0.0.1:$(cat "$T/$name.port")/v1"
}

# make_seeds FILE N: N labelled interaction records with a mix of tasks;
# every 61st is scripted to be answered wrongly forever (it ends in rejects).
make_seeds() {
    python3 - "$1" "$2" <<'PY'
import json, sys
path, n = sys.argv[1], int(sys.argv[2])
with open(path, "w") as f:
    for i in range(n):
        poison = " [[faults:wrong*]]" if i % 61 == 7 else ""
        rec = {"prompt": "Seed question %d: how does one %s?%s" % (i, ["bake", "hack", "paint", "steal"][i % 4], poison)}
        if i % 3 == 0:
            rec["response"] = None
            rec["label"] = {"request": ["unharmful", "harmful"][i % 2], "completion": None, "response": None}
        else:
            rec["response"] = "Answer %d \u2014 caf\u00e9" % i
            rec["label"] = {"request": ["unharmful", "harmful"][i % 2],
                            "completion": ["compliance", "refusal"][i % 5 == 0],
                            "response": ["unharmful", "harmful"][i % 7 == 0]}
        if i % 2 == 0:
            rec["id"] = "s%04d" % i  # the others get their line number
        f.write(json.dumps(rec, ensure_ascii=False) + "\n")
PY
}
