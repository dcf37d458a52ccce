# Every command and every long option that --help lists appears in its man page, and every
# page renders without warnings. Pages cannot fall behind the code.
set -eu
: "${QUEUECTL:?}" "${MANDIR:?}"
fail() { echo "FAIL: $*" >&2; exit 1; }

page_for() { # command words -> man page
  case "$1" in
  "" | help | completion) echo queuectl.1 ;;
  show) echo queuectl-list.1 ;;
  release) echo queuectl-hold.1 ;;
  *) echo "queuectl-${1%% *}.1" ;;
  esac
}

. "$(dirname "$0")/../help_items.sh"

checked=0
check() { # words...
  local words="$*" page text
  page="$MANDIR/$(page_for "$words")"
  [ -f "$page" ] || fail "no man page $page for '$words'"
  text=$(MANWIDTH=250 man -l "$page" 2>/dev/null | col -b)
  while read -r kind item; do
    case "$kind" in
    opt) printf '%s' "$text" | grep -q -- "$item" || fail "$(basename "$page") does not mention $item (from 'queuectl $words --help')" ;;
    sub)
      printf '%s' "$text" | grep -qw -- "$item" || fail "$(basename "$page") does not mention '$item' (from 'queuectl $words --help')"
      check $words $item
      ;;
    esac
    checked=$((checked + 1))
  done < <(help_items $words)
}
check
[ "$checked" -gt 30 ] || fail "only $checked items found in --help: the parser is broken"

for p in "$MANDIR"/*.[15]; do
  warn=$(MANWIDTH=80 man --warnings -l "$p" 2>&1 >/dev/null)
  [ -z "$warn" ] || fail "$(basename "$p"): $warn"
  if command -v mandoc >/dev/null; then
    lint=$(mandoc -Tlint -W warning "$p" 2>&1 | grep -v 'mandoc.db' || true)
    [ -z "$lint" ] || fail "$lint"
  fi
done
echo "ok: $checked help items found in the man pages"
