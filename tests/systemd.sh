#!/bin/sh
# SPDX-License-Identifier: MIT
# The systemd integration as installed: both units pass `systemd-analyze
# verify`, the system unit's sandbox scores an overall exposure of 2.0 or
# lower (`systemd-analyze security --offline=yes`), the sysusers.d entry
# creates the user in the audio group, and `meson install` puts everything
# where the build says.
#   systemd.sh STREBMD SYSTEM_UNIT USER_UNIT SYSUSERS BUILD_DIR BINDIR SYSCONFDIR \
#              SYSTEM_UNIT_DIR USER_UNIT_DIR SYSUSERS_DIR
set -u
STREBMD=$1 SYSTEM_UNIT=$2 USER_UNIT=$3 SYSUSERS=$4 BUILD=$5 BINDIR=$6 SYSCONFDIR=$7
SYSTEM_UNIT_DIR=$8 USER_UNIT_DIR=$9 SYSUSERS_DIR=${10}
TMP=$(mktemp -d)
trap 'rm -rf "$TMP"' EXIT
fails=0
pass() { echo "ok   - $1"; }
fail() { echo "FAIL - $1"; fails=$((fails + 1)); }

# --- the units name the installed binary; test copies name the built one
for u in "$SYSTEM_UNIT" "$USER_UNIT"; do
	grep -q "^ExecStart=$BINDIR/strebmd\( \|$\)" "$u" && pass "$(basename "$u"): ExecStart=$BINDIR/strebmd" \
		|| fail "$(basename "$u"): ExecStart is not $BINDIR/strebmd"
	grep -qx 'ExecReload=kill -HUP $MAINPID' "$u" && pass "$(basename "$u"): ExecReload sends SIGHUP" \
		|| fail "$(basename "$u"): no ExecReload=kill -HUP \$MAINPID"
done
mkdir -p "$TMP/system" "$TMP/user" "$TMP/xdg"
chmod 700 "$TMP/xdg"
sed "s|^ExecStart=$BINDIR/strebmd|ExecStart=$STREBMD|" "$SYSTEM_UNIT" >"$TMP/system/strebmd.service"
sed "s|^ExecStart=$BINDIR/strebmd|ExecStart=$STREBMD|" "$USER_UNIT" >"$TMP/user/strebmd.service"

# --- systemd-analyze verify: exit 0 and not a word on stderr/stdout
if systemd-analyze verify "$TMP/system/strebmd.service" >"$TMP/out" 2>&1 && [ ! -s "$TMP/out" ]; then
	pass "system unit: systemd-analyze verify"
else
	fail "system unit: systemd-analyze verify: $(cat "$TMP/out")"
fi
if XDG_RUNTIME_DIR="$TMP/xdg" systemd-analyze --user verify "$TMP/user/strebmd.service" >"$TMP/out" 2>&1 \
	&& [ ! -s "$TMP/out" ]; then
	pass "user unit: systemd-analyze --user verify"
else
	fail "user unit: systemd-analyze --user verify: $(cat "$TMP/out")"
fi

# --- the system unit's exposure
systemd-analyze security --offline=yes "$TMP/system/strebmd.service" >"$TMP/sec" 2>&1
level=$(sed -n 's/.*Overall exposure level for strebmd.service: \([0-9.]*\).*/\1/p' "$TMP/sec")
if [ -z "$level" ]; then
	fail "systemd-analyze security: no overall exposure in: $(tail -n 3 "$TMP/sec")"
elif awk -v l="$level" 'BEGIN { exit !(l <= 2.0) }'; then
	pass "system unit: overall exposure $level <= 2.0"
else
	fail "system unit: overall exposure $level > 2.0"
fi

# --- what the service needs, and hardening that must not break it
for d in 'Type=notify' 'NotifyAccess=main' 'WatchdogSec=10s' 'Restart=on-failure' 'User=strebmd' \
	'SupplementaryGroups=audio' 'LimitRTPRIO=95' 'LimitMEMLOCK=infinity' 'NoNewPrivileges=yes' \
	'ProtectSystem=strict' 'CapabilityBoundingSet='; do
	grep -qx "$d" "$SYSTEM_UNIT" && pass "system unit: $d" || fail "system unit: missing $d"
done
# RestrictRealtime=yes forbids SCHED_FIFO; PrivateDevices=yes/PrivateIPC=yes
# would cut JACK's shared memory or the ALSA devices off
for d in 'RestrictRealtime=yes' 'PrivateDevices=yes' 'PrivateIPC=yes' 'PrivateUsers=yes'; do
	grep -qx "$d" "$SYSTEM_UNIT" && fail "system unit: $d breaks realtime audio" || pass "system unit: no $d"
done
# the system calls of a filter group, nested groups expanded
syscalls() {
	systemd-analyze syscall-filter "$1" | sed -n 's/^    \([^#].*\)$/\1/p' | while read -r s; do
		case $s in
		@*) syscalls "$s" ;;
		*) echo "$s" ;;
		esac
	done
}
syscalls @system-service >"$TMP/allowed"
syscalls @privileged >"$TMP/denied"
grep -qx '^SystemCallFilter=@system-service' "$SYSTEM_UNIT" && grep -qx 'SystemCallFilter=~@privileged' "$SYSTEM_UNIT" \
	&& grep -qx sched_setscheduler "$TMP/allowed" && grep -qx mlockall "$TMP/allowed" \
	&& ! grep -qxE 'sched_setscheduler|sched_setattr|mlockall|mlock|setrlimit' "$TMP/denied" \
	&& pass "system unit: the syscall filter keeps sched_setscheduler and mlockall" \
	|| fail "system unit: the syscall filter blocks realtime calls"
grep -q 'JACK_PROMISCUOUS_SERVER' "$SYSTEM_UNIT" && grep -q 'JACK_DEFAULT_SERVER' "$SYSTEM_UNIT" \
	&& grep -q '^EnvironmentFile=-' "$SYSTEM_UNIT" \
	&& pass "system unit: says how it finds its JACK server" || fail "system unit: JACK server notes"

# --- sysusers.d: the user, in the audio group
mkdir -p "$TMP/root/etc"
printf 'root:x:0:\naudio:x:29:\n' >"$TMP/root/etc/group"
printf 'root:x:0:0:root:/root:/bin/sh\n' >"$TMP/root/etc/passwd"
if systemd-sysusers --root="$TMP/root" "$SYSUSERS" >"$TMP/out" 2>&1 \
	&& grep -q '^strebmd:x:[0-9]*:[0-9]*:.*:/var/lib/strebmd:' "$TMP/root/etc/passwd" \
	&& grep -q '^audio:x:29:strebmd$' "$TMP/root/etc/group"; then
	pass "sysusers.d: user strebmd, member of audio"
else
	fail "sysusers.d: $(cat "$TMP/out" "$TMP/root/etc/passwd" "$TMP/root/etc/group")"
fi

# --- meson install
if meson install -C "$BUILD" --no-rebuild --quiet --destdir "$TMP/dest" >"$TMP/out" 2>&1; then
	for f in "$BINDIR/strebmd" "$SYSTEM_UNIT_DIR/strebmd.service" "$USER_UNIT_DIR/strebmd.service" \
		"$SYSUSERS_DIR/strebmd.conf" "$SYSCONFDIR/strebmd/strebmd.conf"; do
		[ -f "$TMP/dest$f" ] && pass "installed $f" || fail "not installed: $f"
	done
	cmp -s "$TMP/dest$SYSTEM_UNIT_DIR/strebmd.service" "$SYSTEM_UNIT" \
		&& cmp -s "$TMP/dest$USER_UNIT_DIR/strebmd.service" "$USER_UNIT" \
		&& pass "installed units are the configured ones" || fail "installed units differ"
	"$TMP/dest$BINDIR/strebmd" --print-config | cmp -s - "$TMP/dest$SYSCONFDIR/strebmd/strebmd.conf" \
		&& pass "installed configuration is strebmd --print-config" \
		|| fail "installed configuration differs from --print-config"
else
	fail "meson install: $(cat "$TMP/out")"
fi

echo "$fails failure(s)"
[ "$fails" -eq 0 ]
