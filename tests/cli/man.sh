# Every man page renders without groff warnings.
. "$(dirname "$0")/../lib.sh"
command -v groff >/dev/null || { echo "# skip: groff not installed"; exit 0; }
for m in "$GR_ROOT"/man/*.[1-9]; do
    w=$(groff -man -Tutf8 -ww -z "$m" 2>&1)
    [ -z "$w" ] && ok "man_$(basename "$m")" || fail "man_$(basename "$m")" "$w"
done
# gr(7), the overview, names every tool, every profile and every exit status
g=$GR_ROOT/man/gr.7
if [ -f "$g" ]; then
    missing=
    for b in "$GR_ROOT"/cmd/gr-*.c; do n=$(basename "$b" .c); grep -q "^\.BR $n (1)" "$g" || missing="$missing $n"; done
    for p in "$GR_ROOT"/scripts/profiles/*.mk; do n=$(basename "$p" .mk); grep -q "^\.B $n\$" "$g" || missing="$missing profile:$n"; done
    for s in 0 1 2 3 4 130 143; do grep -Eq "^\.B(R)? ($s\$|$s \"|.* $s\$)" "$g" || missing="$missing exit:$s"; done
    for e in GR_MODEL OPENAI_API_KEY OPENAI_BASE_URL; do grep -q "^\.B $e\$" "$g" || missing="$missing env:$e"; done
    [ -z "$missing" ] && ok man_gr7_overview_complete || fail man_gr7_overview_complete "gr.7 lacks:$missing"
else
    fail man_gr7_overview_complete "no man/gr.7"
fi
