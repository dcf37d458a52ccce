# help_items WORDS...: the options and subcommands that 'queuectl WORDS --help' lists, as
# "opt --x" and "sub name" lines (CLI11's "Options:" and "Subcommands:" sections). Shared
# by the man page check and the completion test: what --help shows, both must cover.
help_items() {
  # shellcheck disable=SC2086
  "$QUEUECTL" $* --help | awk '
    /^Options:/ {sec="opt"; next}
    /^Subcommands:/ {sec="sub"; next}
    /^[^ ]/ {sec=""}
    sec=="opt" { for (i = 1; i <= NF; i++) if ($i ~ /^--[a-z]/) { sub(/[,=].*/, "", $i); print "opt " $i } }
    sec=="sub" && NF > 0 { print "sub " $1 }'
}
