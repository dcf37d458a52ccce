# Shell completion: bash's completion function, driven as bash drives it at a Tab, offers
# every subcommand and option of every command (read from --help, as the man page check
# does), and job ids, states, queue names and settings from the spool. fish and zsh run
# the same question through their own scripts.
. "$QUEUECTL_TEST_LIB"

BIN=$(dirname "$QUEUECTL")
SCRIPT="$T/queuectl.bash"
expect 0 "$QUEUECTL" completion bash
printf '%s\n' "$OUT" >"$SCRIPT"
bash -n "$SCRIPT" || fail "the bash script does not parse"

# complete LINE: what bash's completion offers for the last word of LINE (a trailing
# space: a new, empty word), one per line, sorted.
complete_line() {
  PATH="$BIN:$PATH" bash -c '
    source "$1"
    read -ra COMP_WORDS <<<"$2"
    case "$2" in *" ") COMP_WORDS+=("") ;; esac
    COMP_CWORD=$((${#COMP_WORDS[@]} - 1))
    COMP_LINE=$2
    COMP_POINT=${#2}
    _queuectl
    printf "%s\n" "${COMPREPLY[@]}"' _ "$SCRIPT" "$1" | sort
}
offers() { # LINE WORD...: each WORD is among the candidates
  local line=$1 got w
  shift
  got=$(complete_line "$line")
  for w in "$@"; do
    printf '%s\n' "$got" | grep -qxF -- "$w" || fail "completing '$line' does not offer '$w'; it offers: $(echo $got)"
  done
}

# Every subcommand and option in every command's --help.
. "$(dirname "$QUEUECTL_TEST_LIB")/../help_items.sh"
checked=0
check() { # words...
  local words="$*" kind item
  while read -r kind item; do
    case "$kind" in
    opt) offers "queuectl${words:+ $words} -" "$item" ;;
    sub)
      offers "queuectl${words:+ $words} " "$item"
      # shellcheck disable=SC2086
      check $words $item
      ;;
    esac
    checked=$((checked + 1))
  done < <(help_items $words)
}
check
[ "$checked" -gt 80 ] || fail "only $checked items checked"

# Prefixes narrow the candidates.
assert_eq "$(complete_line 'queuectl wor')" worker
assert_eq "$(complete_line 'queuectl worker st')" "start
status
stop"
assert_eq "$(complete_line 'queuectl help worker s')" "start
status
stop"
assert_eq "$(complete_line 'queuectl enqueue --max')" --max-retries

# Values from the spool: job ids, queue names; and fixed ones: states, settings, shells.
q enqueue --id alpha --command true >/dev/null
q enqueue --id alpine --command true --hold >/dev/null
q enqueue --id beta --command true >/dev/null
q queue set builds --concurrency 2
assert_eq "$(complete_line "queuectl --spool $S show al")" "alpha
alpine"
assert_eq "$(complete_line "queuectl cancel --spool=$S beta al")" "alpha
alpine"
# bash splits "--spool=DIR" at the '=' (COMP_WORDBREAKS): three words.
got=$(PATH="$BIN:$PATH" bash -c 'source "$1"; COMP_WORDS=(queuectl --spool = "$2" show al); COMP_CWORD=5; _queuectl; printf "%s\n" "${COMPREPLY[@]}"' _ "$SCRIPT" "$S" | sort)
assert_eq "$got" "alpha
alpine" "--spool = DIR"
assert_eq "$(QUEUECTL_SPOOL=$S complete_line 'queuectl release ')" "alpha
alpine
beta"
assert_eq "$(complete_line "queuectl --spool $S enqueue --after b")" beta
assert_eq "$(complete_line "queuectl --spool $S list --queue ")" "builds
default"
assert_eq "$(complete_line 'queuectl list --state d')" "dead
done"
# "--state=d": bash splits it at '=' into three words; zsh and fish keep one.
got=$(PATH="$BIN:$PATH" bash -c 'source "$1"; COMP_WORDS=(queuectl list --state = d); COMP_CWORD=4; _queuectl; printf "%s\n" "${COMPREPLY[@]}"' _ "$SCRIPT" | sort)
assert_eq "$got" "dead
done" "--state = d"
got=$(PATH="$BIN:$PATH" bash -c 'source "$1"; COMP_WORDS=(queuectl list --state =); COMP_CWORD=3; _queuectl; printf "%s\n" "${COMPREPLY[@]}"' _ "$SCRIPT" | grep -c '^=')
assert_eq "$got" 7 "--state = (bash keeps the '=' it completes)"
assert_eq "$("$QUEUECTL" __complete list --state=pe)" "--state=pending"
assert_eq "$(complete_line 'queuectl config set back')" "backoff-base
backoff-max"
assert_eq "$(complete_line 'queuectl config set backoff-max ')" "" "a setting's value"
assert_eq "$(complete_line 'queuectl completion ')" "bash
fish
zsh"
# Paths: the shell completes them.
mkdir "$T/spooldir"
assert_eq "$(cd "$T" && complete_line 'queuectl --spool spoold')" "spooldir"
# No spool: no ids, and no error on the terminal.
assert_eq "$(complete_line "queuectl --spool $T/none show ")" ""
[ ! -e "$T/none" ] || fail "completion created a spool"

# fish: its own script, through fish's completion.
if command -v fish >/dev/null; then
  "$QUEUECTL" completion fish >"$T/queuectl.fish"
  got=$(PATH="$BIN:$PATH" fish -c "source $T/queuectl.fish; complete -C 'queuectl dlq '" | cut -f1 | sort)
  assert_eq "$got" "list
purge
retry" "fish: dlq"
  got=$(PATH="$BIN:$PATH" fish -c "source $T/queuectl.fish; complete -C 'queuectl --spool $S hold al'" | cut -f1 | sort)
  assert_eq "$got" "alpha
alpine" "fish: ids"
else
  echo "fish is not installed: its completion is not checked" >&2
fi
# zsh: the script parses (zsh's completion needs a terminal to be driven).
if command -v zsh >/dev/null; then
  "$QUEUECTL" completion zsh >"$T/_queuectl"
  zsh -n "$T/_queuectl" || fail "the zsh script does not parse"
fi
expect 2 "$QUEUECTL" completion tcsh
assert_one_error_line
echo "ok"
