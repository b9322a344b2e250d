# Every man page renders without groff warnings.
. "$(dirname "$0")/../lib.sh"
command -v groff >/dev/null || { echo "# skip: groff not installed"; exit 0; }
for m in "$GR_ROOT"/man/*.[1-9]; do
    w=$(groff -man -Tutf8 -ww -z "$m" 2>&1)
    [ -z "$w" ] && ok "man_$(basename "$m")" || fail "man_$(basename "$m")" "$w"
done
