#!/usr/bin/env bash
# Checks packaging/kvmkit.bash-completion: verbs, per-verb options, domain
# names (from `kvmkit list --name`, stubbed here), and that the systemd unit
# keeps the VMs alive across a kvmkitd restart (KillMode=process).
set -euo pipefail
src="${1:?usage: completion_test.sh SOURCE_DIR}"
complete() { :; }  # not an interactive shell: the registration itself is not under test
# shellcheck source=/dev/null
source "$src/packaging/kvmkit.bash-completion"

kvmkit() {  # stub: what `kvmkit list --name [--all]` prints
  case "$*" in
    *"list --name --all"*) printf 'alpha\nbeta\n' ;;
    *"list --name"*) printf 'alpha\n' ;;
  esac
}

fail=0
expect() {  # expect "<words...>" "<expected COMPREPLY, sorted, space-separated>"
  local line="$1" want="$2"
  read -r -a COMP_WORDS <<<"$line"
  if [[ "$line" == *" " ]]; then COMP_WORDS+=(""); fi
  COMP_CWORD=$((${#COMP_WORDS[@]} - 1))
  COMPREPLY=()
  _kvmkit
  local got
  got="$(printf '%s\n' "${COMPREPLY[@]}" | sort | tr '\n' ' ' | sed 's/ $//')"
  if [ "$got" != "$want" ]; then
    echo "FAIL: '$line' -> '$got', expected '$want'"
    fail=1
  else
    echo "ok: '$line' -> '$got'"
  fi
}

expect "kvmkit sta" "start"
expect "kvmkit d" "define destroy dominfo domstate dumpconfig"
expect "kvmkit start " "alpha beta"
expect "kvmkit shutdown " "alpha"
expect "kvmkit list --" "--all --connect --help --inactive --json --name --readonly"
expect "kvmkit undefine --f" "--force"
expect "kvmkit -c /x.sock dom" "dominfo domstate"
expect "kvmkit help sus" "suspend"

grep -q '^KillMode=process$' "$src/packaging/kvmkitd.service.in" || { echo "FAIL: kvmkitd.service lacks KillMode=process"; fail=1; }
grep -q '^RuntimeDirectoryPreserve=yes$' "$src/packaging/kvmkitd.service.in" || { echo "FAIL: RuntimeDirectoryPreserve"; fail=1; }
exit $fail
