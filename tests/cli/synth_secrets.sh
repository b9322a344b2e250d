# gr-synth never prints the secrets of its endpoint URL (userinfo, query
# values) nor the API key, also when the server echoes them into an error or
# into an answer that ends in the rejects file; the URL keeps its query after
# the path (issue 12 §5). Against the local test server.
. "$(dirname "$0")/../lib.sh"
. "$GR_ROOT/tests/synth_lib.sh"
S=$GR_BIN/gr-synth
rec() { # rec PROMPT [ID]
    printf '{"id":"%s","prompt":"%s","response":"Sure.","label":{"request":"unharmful","completion":"compliance","response":"unharmful"}}\n' \
        "${2:-r1}" "$1"
}
secret_free() { # secret_free NAME FILE...: none of the secrets in the files
    local name=$1 f hit=""
    shift
    for f in "$@"; do
        [ -f "$f" ] || continue
        grep -Eq 'pa55word|s3cretQuery|sk-test-0123456789|qvalue%2Bx|qvalue\+x|qvalue x' "$f" && hit="$hit $(basename "$f")"
    done
    [ -z "$hit" ] && ok "$name" || fail "$name" "a secret in:$hit: $(grep -Eho '.{0,60}(pa55word|s3cretQuery|sk-test-0123456789|qvalue).{0,20}' "$@" | head -n 3)"
}
start_server main --key sk-test-0123456789
HP=${URL#http://}
export OPENAI_API_KEY=sk-test-0123456789

# the query string stays after the path: the request reaches /v1/chat/completions
rec "Hello" >"$T/a.jsonl"
expect synth_url_query_after_path 0 "$S" --endpoint "http://$HP?api-version=2024&key=s3cretQuery" -q -o "$T/a.out" "$T/a.jsonl"
[ "$(wc -l <"$T/a.out")" -eq 1 ] && ok synth_url_query_record || fail synth_url_query_record "$(cat "$T/err")"
expect synth_url_trailing_slash_query 0 "$S" --endpoint "http://$HP/?key=s3cretQuery" -q -o "$T/a2.out" "$T/a.jsonl"
expect synth_url_full_path_query 0 "$S" --endpoint "http://$HP/chat/completions?key=s3cretQuery" -q -o "$T/a3.out" "$T/a.jsonl"

# a fatal error names the URL without its userinfo and query values, and the
# server's echo of them (and of the key) is cut
rec "Lost [[faults:echo404*]]" >"$T/b.jsonl"
expect synth_url_fatal 1 "$S" --endpoint "http://user:pa55word@$HP?key=s3cretQuery&v=qvalue%2Bx" -o "$T/b.out" "$T/b.jsonl"
grep_check synth_url_fatal_shown "$T/err" "http://\*\*\*@127\.0\.0\.1:[0-9]+/v1/chat/completions\?key=\*\*\*&v=\*\*\*: HTTP 404"
secret_free synth_url_fatal_redacted "$T/err" "$T/out"

# an answer quoting the key and the URL, rejected: the rejects file has neither
rec "Echo [[faults:echokey*]]" e1 >"$T/c.jsonl"
expect synth_echo_rejected 0 "$S" --endpoint "http://user:pa55word@$HP?key=s3cretQuery" --max-attempts 1 -o "$T/c-out.jsonl" "$T/c.jsonl"
[ "$(wc -l <"$T/c-out.rejects.jsonl")" -eq 1 ] && ok synth_echo_in_rejects || fail synth_echo_in_rejects "$(cat "$T/err")"
grep_check synth_echo_answer_kept "$T/c-out.rejects.jsonl" 'sent Bearer \*\*\* to /v1/chat/completions\?key=\*\*\*'
secret_free synth_echo_redacted "$T/c-out.rejects.jsonl" "$T/c-out.jsonl" "$T/err" "$T/out"

# --replace-invalid reaches the input reader
printf '{"id":"u1","prompt":"bad \377 byte","response":"Sure.","label":{"request":"unharmful","completion":"compliance","response":"unharmful"}}\n' >"$T/u.jsonl"
expect synth_invalid_utf8 1 "$S" --endpoint "$URL" --strict -q -o "$T/u.out" "$T/u.jsonl"
grep_check synth_invalid_utf8_hint "$T/err" "u.jsonl:1: .*--replace-invalid"
expect synth_replace_invalid 0 "$S" --endpoint "$URL" -q -o "$T/u2.out" --replace-invalid "$T/u.jsonl"
[ "$(wc -l <"$T/u2.out")" -eq 1 ] && ok synth_replace_invalid_written || fail synth_replace_invalid_written "$(cat "$T/err")"
