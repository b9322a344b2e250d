# make install puts the binaries and man pages under PREFIX (and DESTDIR).
. "$(dirname "$0")/../lib.sh"
expect install_runs 0 make -s -C "$GR_ROOT" install PREFIX="$T/prefix"
n_bin=$(ls "$GR_ROOT"/bin | wc -l)
[ "$(ls "$T/prefix/bin" | wc -l)" -eq "$n_bin" ] && [ -x "$T/prefix/bin/gr-eval" ] && ok install_binaries || fail install_binaries "$(ls "$T/prefix/bin")"
[ -f "$T/prefix/share/man/man1/gr-eval.1" ] && [ -f "$T/prefix/share/man/man5/gr-formats.5" ] && [ -f "$T/prefix/share/man/man7/gr.7" ] && ok install_man_pages || fail install_man_pages "$(find "$T/prefix/share")"
[ -f "$T/prefix/share/guardreasoner-c/gr-verdict.schema.json" ] && [ -f "$T/prefix/share/guardreasoner-c/check-schema.jq" ] \
    && ok install_verdict_schema || fail install_verdict_schema "$(find "$T/prefix/share" | head)"
expect install_destdir 0 make -s -C "$GR_ROOT" install PREFIX=/usr DESTDIR="$T/stage"
[ -x "$T/stage/usr/bin/gr-eval" ] && ok install_destdir_layout || fail install_destdir_layout "$(find "$T/stage" | head)"
expect installed_binary_runs 0 "$T/prefix/bin/gr-eval" --version
