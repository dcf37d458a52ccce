# Builds the .deb and .rpm, lints the .deb, installs it for real with dpkg, runs the
# service's own ExecStart line as the service user on the system spool, removes the
# package and checks the jobs survived; installs the .rpm into a scratch root.
# Needs root (exit 77: skipped otherwise). An existing /var/spool/queuectl is moved aside
# for the test and put back afterwards.
set -eu
: "${BUILD_DIR:?}" "${SOURCE_DIR:?}"
fail() { echo "FAIL: $*" >&2; exit 1; }
if [ "$(id -u)" != 0 ]; then
  echo "SKIP: the package test installs packages and needs root"
  exit 77
fi
for tool in dpkg lintian rpm rpmbuild cpack systemd-analyze runuser setpriv; do
  command -v "$tool" >/dev/null || fail "$tool is missing (see .ci/install-deps)"
done
if dpkg-query -W -f='${Status}' queuectl 2>/dev/null | grep -q 'ok installed'; then
  echo "SKIP: a queuectl package is installed on this machine; not touching it"
  exit 77
fi

T=$(mktemp -d /tmp/queuectl-pkg.XXXXXX)
SPOOL=/var/spool/queuectl
SAVED=""
if [ -e $SPOOL ]; then
  SAVED="$T/saved-spool"
  mv $SPOOL "$SAVED"
fi
SUP=""
POLICY=""
POLICY_SAVED=""
cleanup() {
  [ -n "$SUP" ] && kill "$SUP" 2>/dev/null || true
  if [ -n "$POLICY" ]; then
    rm -f "$POLICY"
    [ -n "$POLICY_SAVED" ] && mv "$POLICY_SAVED" "$POLICY"
    rmdir /run/systemd/system 2>/dev/null || true
  fi
  dpkg -P queuectl >/dev/null 2>&1 || true
  userdel -r qtest >/dev/null 2>&1 || true
  userdel queuectl >/dev/null 2>&1 || true
  groupdel queuectl >/dev/null 2>&1 || true
  rm -rf $SPOOL /var/spool/queuectl.d
  [ -n "$SAVED" ] && mv "$SAVED" $SPOOL
  rm -rf "$T"
}
trap cleanup EXIT

# A distribution package links glibc dynamically (QUEUECTL_LINK=static-runtime; lintian
# rejects a static binary). README's test command configures the build under test that
# way, and the packages are then made from the very binaries the other tests ran; any
# other build tree gets a packaging build of its own beside it.
if grep -qx 'QUEUECTL_LINK:STRING=static-runtime' "$BUILD_DIR/CMakeCache.txt" &&
  ! grep -q '^QUEUECTL_SANITIZE:STRING=.' "$BUILD_DIR/CMakeCache.txt"; then
  P="$BUILD_DIR"
  build() { :; }
else
  P="$BUILD_DIR/package-build"
  build() {
    cmake -S "$SOURCE_DIR" -B "$P" -DCMAKE_BUILD_TYPE=Release -DBUILD_TESTING=OFF -DQUEUECTL_LINK=static-runtime &&
      cmake --build "$P" -j2
  }
fi
{ build && (cd "$P" && rm -f queuectl*.deb queuectl*.rpm && cpack -G "DEB;RPM"); } >"$T/cpack.log" 2>&1 ||
  { cat "$T/cpack.log"; fail "building the packages"; }
DEB=$(ls "$P"/queuectl_*.deb)
RPM=$(ls "$P"/queuectl-*.rpm)

# lintian: no errors and no warnings (hardening-no-pie is overridden, with its reason, in
# packaging/debian/lintian-overrides).
lintian --fail-on error,warning --tag-display-limit 0 "$DEB" >"$T/lintian.log" 2>&1 || { cat "$T/lintian.log"; fail "lintian reported errors or warnings"; }
if grep -E '^[EW]: ' "$T/lintian.log"; then fail "lintian warnings"; fi
dpkg-deb -f "$DEB" Depends | grep -q libc6 || fail "Depends lacks libc6: $(dpkg-deb -f "$DEB" Depends)"
dpkg-deb -f "$DEB" Depends | grep -q libnats || fail "Depends lacks libnats: $(dpkg-deb -f "$DEB" Depends)"
dpkg-deb -f "$DEB" Recommends | grep -q nats-server || fail "Recommends lacks nats-server: $(dpkg-deb -f "$DEB" Recommends)"

# The rpm lists the binary, every man page and the units.
rpm -qpl "$RPM" >"$T/rpm-files"
for f in /usr/bin/queuectl /usr/libexec/queuectl/queuectl-serve /usr/libexec/queuectl/queuectl-cluster \
  /usr/share/man/man1/queuectl.1.gz /usr/share/man/man1/queuectl-cluster.1.gz /usr/share/man/man1/queuectl-worker.1.gz \
  /usr/share/man/man5/queuectl-spool.5.gz /usr/lib/systemd/system/queuectl.service \
  /usr/lib/systemd/system/queuectl@.service /usr/lib/systemd/user/queuectl.service \
  /usr/lib/sysusers.d/queuectl.conf /usr/lib/tmpfiles.d/queuectl.conf; do
  grep -qx "$f" "$T/rpm-files" || fail "rpm lacks $f"
done
[ "$(grep -c '^/usr/share/man/' "$T/rpm-files")" -ge 13 ] || fail "rpm lacks man pages"
rpm -qpi "$RPM" 2>/dev/null | grep -q "maildir-style spool directory" || fail "rpm description: $(rpm -qpi "$RPM" 2>/dev/null | tail -3)"
rpm -qp --changelog "$RPM" 2>/dev/null | grep -q "^\* .* 2026 queuectl developers" || fail "rpm changelog: $(rpm -qp --changelog "$RPM" 2>/dev/null | head -3)"

# Install the .deb for real.
dpkg -i "$DEB" >"$T/dpkg.log" 2>&1 || { cat "$T/dpkg.log"; fail "dpkg -i"; }
[ "$(queuectl --version)" = "queuectl 0.1.0" ] || fail "queuectl --version: $(queuectl --version)"
man -w queuectl >/dev/null || fail "man -w queuectl"
# The installed queuectl finds its cluster helper in libexec.
queuectl --spool "$T/cl" config set max-retries 3 >/dev/null
out=$(queuectl --spool "$T/cl" cluster status 2>&1) && fail "cluster status on an unjoined spool exited 0"
case "$out" in *"has joined no cluster"*) ;; *) fail "the installed queuectl cannot run queuectl-cluster: $out" ;; esac
man -w 5 queuectl-spool >/dev/null || fail "man -w 5 queuectl-spool"
getent passwd queuectl >/dev/null || fail "no user queuectl"
[ "$(getent passwd queuectl | cut -d: -f7)" = /usr/sbin/nologin ] || fail "queuectl has a login shell"
[ "$(stat -c '%U:%G %a' $SPOOL)" = "queuectl:queuectl 2770" ] || fail "spool owner/mode: $(stat -c '%U:%G %a' $SPOOL)"
[ "$(stat -c '%U:%G %a' $SPOOL/pending)" = "queuectl:queuectl 2770" ] || fail "pending/ owner/mode"
for unit in queuectl.service queuectl@demo.service; do
  systemd-analyze verify "/usr/lib/systemd/system/${unit/@demo/@}" 2>"$T/verify" || true
  # "verify" of a template needs an instance name: check it through a copy.
  if [ "$unit" = queuectl@demo.service ]; then
    cp /usr/lib/systemd/system/queuectl@.service "$T/queuectl@demo.service"
    systemd-analyze verify "$T/queuectl@demo.service" 2>"$T/verify" || fail "verify $unit: $(cat "$T/verify")"
  else
    [ ! -s "$T/verify" ] || fail "verify $unit: $(cat "$T/verify")"
  fi
done
cp /usr/lib/systemd/system/queuectl-serve.service "$T/"
systemd-analyze verify "$T/queuectl-serve.service" 2>"$T/verify" || fail "verify queuectl-serve.service: $(cat "$T/verify")"
# The sandboxes: 2.0 or better (systemd-analyze's scale is 0 to 100 here).
for unit in queuectl.service queuectl@.service queuectl-serve.service; do
  systemd-analyze security --offline=true --threshold=20 "/usr/lib/systemd/system/$unit" >"$T/security" 2>&1 ||
    fail "systemd-analyze security $unit: $(tail -1 "$T/security")"
done
# Shell completions where each shell looks; bash-completion loads queuectl's on demand.
for f in /usr/share/bash-completion/completions/queuectl /usr/share/zsh/vendor-completions/_queuectl \
  /usr/share/fish/vendor_completions.d/queuectl.fish; do
  [ -s "$f" ] || fail "no completion file $f"
done
if [ -f /usr/share/bash-completion/bash_completion ]; then
  got=$(bash -c '. /usr/share/bash-completion/bash_completion; _completion_loader queuectl; complete -p queuectl')
  [ "$got" = "complete -F _queuectl queuectl" ] || fail "bash-completion does not load queuectl's: $got"
fi
mkdir -m 700 "$T/xdg"
XDG_RUNTIME_DIR="$T/xdg" systemd-analyze verify --user /usr/lib/systemd/user/queuectl.service 2>"$T/verify-user" ||
  fail "verify user unit: $(cat "$T/verify-user")"

# A member of the group enqueues; the unit's ExecStart runs as the service user.
useradd --create-home --groups queuectl qtest
EXEC=$(sed -n 's/^ExecStart=//p' /usr/lib/systemd/system/queuectl.service | sed 's/${QUEUECTL_WORKERS}/2/')
# shellcheck disable=SC2086
setpriv --reuid=queuectl --regid=queuectl --init-groups -- $EXEC >"$T/worker.log" 2>&1 &
SUP=$!
for i in 1 2 3 4 5; do
  runuser -u qtest -- queuectl enqueue --spool $SPOOL --command "id -un >>/var/spool/queuectl/whoami; echo job $i" >/dev/null ||
    fail "enqueue as a member of the group"
done
end=$((SECONDS + 30))
until [ "$(runuser -u qtest -- queuectl --spool $SPOOL status --json | python3 -c 'import json,sys; print(json.load(sys.stdin)["completed"])')" = 5 ]; do
  [ $SECONDS -lt $end ] || { cat "$T/worker.log"; queuectl --spool $SPOOL list; fail "jobs did not complete"; }
  sleep 0.1
done
[ "$(sort -u $SPOOL/whoami)" = queuectl ] || fail "jobs ran as $(sort -u $SPOOL/whoami), not queuectl"
runuser -u qtest -- queuectl --spool $SPOOL worker status | grep -q . || fail "worker status as a group member"
# A member of the group cancels a job that a worker of the service user runs: no signal
# crosses users, the worker sees the request appear in workers/.
id=$(runuser -u qtest -- queuectl --spool $SPOOL enqueue --command 'sleep 300')
end=$((SECONDS + 30))
until [ "$(queuectl --spool $SPOOL show "$id" | python3 -c 'import json,sys; print(json.load(sys.stdin)["state"])')" = processing ]; do
  [ $SECONDS -lt $end ] || fail "the long job did not start"
  sleep 0.1
done
runuser -u qtest -- queuectl --spool $SPOOL cancel "$id" >"$T/cancel.out" 2>&1 || fail "cancel by a group member: $(cat "$T/cancel.out")"
[ "$(queuectl --spool $SPOOL show "$id" | python3 -c 'import json,sys; j = json.load(sys.stdin); print(j["state"], j["last_error"])')" = "dead cancelled" ] ||
  fail "a job cancelled by a group member: $(queuectl --spool $SPOOL show "$id")"
[ -z "$(ls $SPOOL/workers | grep '^cancel-')" ] || fail "a cancel request was left: $(ls $SPOOL/workers)"
# The dashboard server from the package (its helper lives in /usr/libexec/queuectl).
setpriv --reuid=qtest --regid=qtest --init-groups -- queuectl --spool $SPOOL serve --listen 127.0.0.1:0 >"$T/serve.out" 2>&1 &
SERVE=$!
end=$((SECONDS + 10))
until grep -q "http://" "$T/serve.out"; do
  [ $SECONDS -lt $end ] || fail "serve did not start: $(cat "$T/serve.out")"
  sleep 0.1
done
URL=$(sed -n 's/.* on \(http:[^ ]*\)$/\1/p' "$T/serve.out")
curl -sf "${URL}api/status" | grep -q '"completed":5' || fail "serve from the package: $(curl -s "${URL}api/status")"
kill -TERM $SERVE
wait $SERVE || fail "serve exited $? on SIGTERM"

# A group member cannot stop the service's workers, and is told so.
set +e
runuser -u qtest -- queuectl --spool $SPOOL worker stop >"$T/stop.out" 2>"$T/stop.err"
rc=$?
set -e
[ "$rc" = 1 ] || fail "worker stop by a group member exited $rc"
grep -q "belongs to another user" "$T/stop.err" || fail "worker stop message: $(cat "$T/stop.err")"
kill -TERM "$SUP"
wait "$SUP" || fail "the service's main process exited $? on SIGTERM"
SUP=""

# The admin enables the units; an upgrade (the same package again) keeps them enabled.
systemctl enable queuectl.service queuectl-serve.service >/dev/null 2>&1
WANTS=/etc/systemd/system/multi-user.target.wants
[ -L $WANTS/queuectl.service ] && [ -L $WANTS/queuectl-serve.service ] || fail "enable made no links"
# What the maintainer scripts ask of systemd, seen through policy-rc.d, which
# deb-systemd-invoke consults before each action (Debian's own hook: it answers "run",
# and deb-systemd-invoke then calls systemctl, which has no systemd to talk to here).
# /run/systemd/system says that systemd runs, as the scripts check. The named spools'
# instances (queuectl@NAME) come from systemctl, and cannot be seen without systemd.
# A policy-rc.d already there (a container's, which forbids everything) is put back after.
if [ ! -e /run/systemd/system ]; then
  POLICY=/usr/sbin/policy-rc.d
  if [ -e $POLICY ]; then
    POLICY_SAVED="$T/policy-rc.d.saved"
    mv $POLICY "$POLICY_SAVED"
  fi
  printf '#!/bin/sh\necho "$*" >>%s\nexit 0\n' "$T/policy.log" >$POLICY
  chmod 755 $POLICY
  mkdir -p /run/systemd/system
  : >"$T/policy.log"
fi
dpkg -i "$DEB" >"$T/dpkg-up.log" 2>&1 || { cat "$T/dpkg-up.log"; fail "dpkg -i over itself"; }
[ -L $WANTS/queuectl.service ] || fail "an upgrade lost the enablement"
if [ -n "$POLICY" ]; then
  [ "$(LC_ALL=C sort "$T/policy.log")" = "$(printf '%s\n' 'queuectl-serve.service try-restart' 'queuectl.service try-restart')" ] ||
    fail "an upgrade should try-restart both units, and only that: $(cat "$T/policy.log")"
  : >"$T/policy.log"
fi

# Remove the package: the spool and its jobs stay; the units are masked (a link left
# behind starts nothing); purge removes the links and the masks.
dpkg -r queuectl >"$T/dpkg-r.log" 2>&1 || { cat "$T/dpkg-r.log"; fail "dpkg -r"; }
if [ -n "$POLICY" ]; then
  [ "$(LC_ALL=C sort "$T/policy.log")" = "$(printf '%s\n' 'queuectl-serve.service stop' 'queuectl.service stop')" ] ||
    fail "removal should stop both units, and only that: $(cat "$T/policy.log")"
fi
[ ! -e /usr/bin/queuectl ] || fail "binary still installed after dpkg -r"
[ "$(ls $SPOOL/done | grep -c '\.json$')" = 5 ] || fail "jobs lost on package removal"
[ "$(readlink /etc/systemd/system/queuectl.service)" = /dev/null ] || fail "dpkg -r did not mask queuectl.service"
dpkg -P queuectl >"$T/dpkg-p.log" 2>&1 || { cat "$T/dpkg-p.log"; fail "dpkg -P"; }
for link in $WANTS/queuectl.service $WANTS/queuectl-serve.service /etc/systemd/system/queuectl.service \
  /etc/systemd/system/queuectl-serve.service; do
  [ ! -e "$link" ] && [ ! -L "$link" ] || fail "purge left $link"
done
[ -d $SPOOL/done ] || fail "purge removed the spool"

# The rpm, into a scratch root.
R="$T/rpmroot"
mkdir -p "$R"
rpm -i --root "$R" --nodeps --noscripts "$RPM" >"$T/rpm-i.log" 2>&1 || { cat "$T/rpm-i.log"; fail "rpm -i"; }
for f in usr/bin/queuectl usr/share/man/man1/queuectl.1.gz usr/lib/systemd/system/queuectl.service etc/default/queuectl; do
  [ -f "$R/$f" ] || fail "rpm root lacks /$f"
done
"$R/usr/bin/queuectl" --version | grep -q "queuectl 0.1.0" || fail "the rpm's binary does not run"
echo "ok"
