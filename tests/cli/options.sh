# Every tool's --help and the OPTIONS section of its man page list the same options.
# An option is in --help when it starts a column of an option line (a line indented by
# fewer than 8 spaces that starts with '-', split at runs of two or more spaces:
# "  -h, --help   this help;   --version   the version" gives -h, --help, --version);
# it is in the man page when it is in the tag line of a .TP paragraph of OPTIONS. The
# check is the contract: a new option shows in both, or this test names the one that
# lacks it.
. "$(dirname "$0")/../lib.sh"

help_opts() { # the options of --help text on stdin
    awk '
        /^ +-/ && match($0, /^ +/) && RLENGTH < 8 {
            n = split($0, f, /   */)
            for (i = 1; i <= n; i++) {
                if (f[i] !~ /^ *-/) continue
                s = f[i]
                while (match(s, /(^|[ ,\/])--?[A-Za-z0-9][A-Za-z0-9-]*/)) {
                    o = substr(s, RSTART, RLENGTH); sub(/^[ ,\/]/, "", o); print o
                    s = substr(s, RSTART + RLENGTH)
                }
            }
        }' | LC_ALL=C sort -u
}
man_opts() { # the options of the OPTIONS section of man page $1
    awk '
        /^\.SH / { sect = $0; prev = ".SH"; next }
        sect ~ /^\.SH "?OPTIONS"?$/ && prev == ".TP" {
            s = $0
            gsub(/\\-/, "-", s); gsub(/\\f[BIRP]/, "", s); gsub(/\\\//, "", s); gsub(/\\&/, "", s)
            gsub(/"/, " ", s)
            while (match(s, /(^|[ ,\/|\[])--?[A-Za-z0-9][A-Za-z0-9-]*/)) {
                o = substr(s, RSTART, RLENGTH); sub(/^[ ,\/|\[]/, "", o); print o
                s = substr(s, RSTART + RLENGTH)
            }
        }
        { prev = $1 }' "$1" | LC_ALL=C sort -u
}
# differ NAME HELP-OPTIONS MAN-OPTIONS: ok, or the options only one side has
differ() {
    local only_help only_man
    only_help=$(LC_ALL=C comm -23 "$2" "$3" | paste -sd ' ')
    only_man=$(LC_ALL=C comm -13 "$2" "$3" | paste -sd ' ')
    if [ -z "$only_help$only_man" ] && [ -s "$2" ]; then ok "$1"
    else fail "$1" "only in --help: ${only_help:-none}; only in the man page: ${only_man:-none}"; fi
}

# the checker itself, on a made-up tool: it sees an option the man page lacks
printf '%s\n' 'Usage: x [OPTIONS]' '  -a, --alpha N   first' '                  -not-an-option here' \
    '  --beta X        second;   --version   the version' > "$T/x.help"
printf '%s\n' '.TH X 1' '.SH DESCRIPTION' '.TP' '.B \-\-gamma' 'not an option section' '.SH OPTIONS' \
    '.TP' '.BR \-a ", " \-\-alpha " \fIN\fR"' 'first' '.TP' '.BI \-\-beta " X" "\fR, \fP" \-\-version' 'second' > "$T/x.1"
help_opts < "$T/x.help" > "$T/x.h"; man_opts "$T/x.1" > "$T/x.m"
[ "$(paste -sd ' ' "$T/x.h")" = "--alpha --beta --version -a" ] && cmp -s "$T/x.h" "$T/x.m" \
    && ok options_checker_reads_both || fail options_checker_reads_both "help: $(paste -sd ' ' "$T/x.h"); man: $(paste -sd ' ' "$T/x.m")"
sed -i '/second;/s/--beta X/--beta X, --delta/' "$T/x.help"
help_opts < "$T/x.help" > "$T/x.h"
[ "$(LC_ALL=C comm -23 "$T/x.h" "$T/x.m")" = "--delta" ] && ok options_checker_sees_drift \
    || fail options_checker_sees_drift "$(LC_ALL=C comm -3 "$T/x.h" "$T/x.m" | paste -sd ' ')"

# every tool
for bin in "$GR_BIN"/gr-*; do
    name=$(basename "$bin")
    page="$GR_ROOT/man/$name.1"
    if [ ! -f "$page" ]; then fail "options_$name" "no man page man/$name.1"; continue; fi
    "$bin" --help 2>&1 | help_opts > "$T/$name.help"
    man_opts "$page" > "$T/$name.man"
    differ "options_$name" "$T/$name.help" "$T/$name.man"
done
