#!/bin/sh
# SPDX-License-Identifier: MIT
# Integration tests of strebmd on a real JACK server (each test starts its own
# named dummy server; none is left behind).
#   live_jack.sh STREBMD PLAYER SCORE SHARED_DATA [STREBMD_RTCHECK]
# STREBM_LIVE_LONG sets the length of the M = K = 4 run (default 60 s).
set -u
STREBMD=$1
PLAYER=$2
SCORE=$3
DATA=$4
RTCHECK=${5:-}
LONG=${STREBM_LIVE_LONG:-60}
# set by meson in a sanitizer build: checks that only timing can fail (a
# dummy server dropping cycles, worker lateness) are reported, and judged in
# the plain build, which CI runs as well
SAN=${STREBM_SANITIZED:-}
SRCDIR=${STREBM_SOURCE_ROOT:-$(dirname "$0")/..}
PY=/usr/bin/python3 # Debian's: numpy and soundfile load only there
TMP=$(mktemp -d)
# a fixed name: a killed server leaves its entry in JACK's registry (8 slots),
# and only a server of the same name reclaims it
SRV=strebmtest_live
JPID=
SPID=
fails=0
pass() { echo "ok   - $1"; }
fail() { echo "FAIL - $1"; fails=$((fails + 1)); }
# JACK's command-line clients can hang in jack_client_open while another
# client registers (seen once: jack_lsp waited for minutes): each gets a bound
jlsp() { timeout 5 jack_lsp "$@"; }
player() { timeout 150 "$PLAYER" "$@"; }
cleanup() {
	[ -n "$SPID" ] && kill -9 "$SPID" 2>/dev/null
	[ -n "$JPID" ] && kill -9 "$JPID" 2>/dev/null
	rm -rf "$TMP"
}
trap cleanup EXIT
trap 'exit 1' INT TERM HUP # a killed test (meson's timeout) leaves no server behind
export JACK_DEFAULT_SERVER=$SRV
export JACK_NO_AUDIO_RESERVATION=1

command -v jackd >/dev/null || { echo "jackd not installed"; exit 1; }
[ -d "$DATA/linear_k2_16k" ] || { echo "shared data not found at $DATA"; exit 1; }

# start_server RATE PERIOD
start_server() {
	if jlsp >/dev/null 2>&1; then
		echo "a JACK server named $SRV is already running (a killed earlier run?): stop it first"
		exit 1
	fi
	jackd -n "$SRV" -d dummy -r "$1" -p "$2" >>"$TMP/jackd.log" 2>&1 &
	JPID=$!
	i=0
	while ! jlsp >/dev/null 2>&1; do
		i=$((i + 1)); [ $i -gt 100 ] && { echo "jackd did not start"; cat "$TMP/jackd.log"; exit 1; }
		sleep 0.1
	done
}
stop_server() {
	[ -n "$JPID" ] && kill "$JPID" 2>/dev/null && wait "$JPID" 2>/dev/null
	JPID=
}
# start_strebmd BINARY ARGS... (log in $TMP/strebmd.log); waits for its ports
start_strebmd() {
	bin=$1; shift
	"$bin" --backend jack --set osc.port=0 "$@" >"$TMP/strebmd.log" 2>&1 &
	SPID=$!
	wait_ports || { echo "strebmd ports did not appear"; cat "$TMP/strebmd.log"; return 1; }
}
wait_ports() { # up to 10 s
	i=0
	while ! jlsp 2>/dev/null | grep -q '^strebmd:source_1$'; do
		i=$((i + 1)); [ $i -gt 100 ] && return 1
		kill -0 "$SPID" 2>/dev/null || return 1
		sleep 0.1
	done
}
# jconnect FROM TO: jack_connect, tried again for up to 5 s (JACK refuses to
# connect a client whose ports exist but which is not active yet)
jconnect() {
	i=0
	until timeout 5 jack_connect "$1" "$2" 2>/dev/null; do
		i=$((i + 1)); [ $i -gt 50 ] && return 1
		sleep 0.1
	done
}
# stop_strebmd: SIGTERM, must exit 0 within 2 s
stop_strebmd() {
	kill -TERM "$SPID"
	i=0
	while kill -0 "$SPID" 2>/dev/null; do
		i=$((i + 1)); [ $i -gt 20 ] && { fail "strebmd did not stop within 2 s of SIGTERM"; kill -9 "$SPID"; break; }
		sleep 0.1
	done
	wait "$SPID"; rc=$?
	SPID=
	[ $rc -eq 0 ] || fail "strebmd exited $rc after SIGTERM: $(tail -3 "$TMP/strebmd.log")"
}
status_field() { # the last status line's "NAME N"
	grep 'stopping:' "$TMP/strebmd.log" | tail -1 | sed -n "s/.*$1 \([0-9a-z+]*\).*/\1/p"
}
median() { "$SCORE" "$DATA/$1/mix.wav" "$DATA/$1/refs" "$2" | sed -n 's/^median SI-SDR improvement: \([-0-9.]*\) dB.*/\1/p'; }

"$STREBMD" -q --backend file --input "$DATA/linear_k2_16k/mix.wav" --output-dir "$TMP/file" || exit 1
FILE_DB=$(median linear_k2_16k "$TMP/file")
echo "# file mode: median SI-SDR improvement $FILE_DB dB"

# --- 0. no server yet: strebmd waits for one (it never starts one); a SIGTERM
# while it waits is a clean stop (exit 0, as systemd expects), and a server
# that comes up is joined
"$STREBMD" --backend jack --set osc.port=0 --channels 2 >"$TMP/wait.log" 2>&1 &
SPID=$!
sleep 1.5
if grep -q "waiting for one" "$TMP/wait.log" && kill -0 "$SPID" 2>/dev/null; then
	f0=$fails
	stop_strebmd
	[ "$fails" = "$f0" ] && pass "waiting for a JACK server: SIGTERM exits 0 at once"
else
	fail "waiting for a JACK server: $(cat "$TMP/wait.log")"
	kill -9 "$SPID" 2>/dev/null
fi
"$STREBMD" --backend jack --set osc.port=0 --channels 2 >"$TMP/strebmd.log" 2>&1 &
SPID=$!
sleep 1
start_server 16000 256
if wait_ports; then
	pass "a server that comes up later is joined"
	stop_strebmd
else
	fail "a server that comes up later was not joined: $(cat "$TMP/strebmd.log")"
	kill -9 "$SPID" 2>/dev/null
fi
stop_server

# --- 1. separation through JACK equals file mode; latency reported = measured
# A dummy server xruns by itself on a loaded machine (these VMs share their
# cores); an xrun drops a cycle and so shifts the rest of the recording. A
# run with server xruns is repeated (up to 5 times) and the one with the
# fewest is judged: without xruns by the whole-file score against file mode;
# with one or two, block by block after re-aligning each block
# (tests/align_score.py); with more in every run, the comparison says nothing
# about strebmd and is reported, while its own underrun count (below) is
# still asserted.
for P in 256 64; do
	bx=
	for attempt in 1 2 3 4 5; do
		start_server 16000 $P
		start_strebmd "$STREBMD" --channels 2 || exit 1
		player --input "$DATA/linear_k2_16k/mix.wav" --sources 2 --out-dir "$TMP/try" >"$TMP/try.out" || fail "player failed (period $P)"
		stop_strebmd
		cp "$TMP/strebmd.log" "$TMP/try.log"
		stop_server
		x=$(sed -n 's/^xruns //p' "$TMP/try.out")
		if [ -z "$bx" ] || [ "${x:-999}" -lt "$bx" ]; then
			bx=${x:-999}
			rm -rf "$TMP/live$P"
			cp -r "$TMP/try" "$TMP/live$P"
			cp "$TMP/try.out" "$TMP/player.out"
			cp "$TMP/try.log" "$TMP/live$P.log"
		fi
		[ "$x" = 0 ] && break
		echo "# period $P: the server logged $x xruns during the run; again"
	done
	x=$bx
	cp "$TMP/live$P.log" "$TMP/strebmd.log" # the judged run's status lines
	db=$(median linear_k2_16k "$TMP/live$P")
	if [ "$x" = 0 ] && [ -n "$db" ] && awk -v a="$db" -v b="$FILE_DB" 'BEGIN { d = a - b; exit !(d < 1 && d > -1) }'; then
		pass "period $P: live median SI-SDR improvement $db dB, file mode $FILE_DB dB"
	elif [ "$x" -le 2 ] && [ "$x" -gt 0 ] && al=$($PY "$SRCDIR/tests/align_score.py" "$DATA/linear_k2_16k/mix.wav" \
			"$DATA/linear_k2_16k/refs" "$TMP/live$P" "$TMP/file" 2>&1); then
		pass "period $P ($x server xruns in the best of 5 runs): $al"
	elif [ "$x" -gt 2 ]; then
		echo "# period $P: the server xrun'd in every run ($x at best, $attempt runs): the recording is cut by dropped cycles ($db dB whole-file); not judged, strebmd's underruns are"
	else
		fail "period $P: live median SI-SDR improvement '$db' dB, file mode $FILE_DB dB (server xruns $x) ${al:-}"
	fi
	rep=$(sed -n 's/^reported_latency //p' "$TMP/player.out")
	mea=$(sed -n 's/^measured_delay //p' "$TMP/player.out")
	if [ "$rep" = $((256 + P)) ] && [ "$mea" -ge $((rep - P)) ] && [ "$mea" -le $((rep + P)) ]; then
		pass "period $P: reported latency $rep frames (hop + period), measured $mea"
	else
		fail "period $P: reported latency '$rep' (expected $((256 + P))), measured '$mea'"
	fi
	u=$(status_field underruns)
	if [ "$u" = 0 ]; then
		pass "period $P: no underrun"
	elif [ -n "$SAN" ] && [ -n "$u" ]; then
		echo "# $SAN build: period $P: $u underruns (server xruns $x): judged in the plain build"
	else
		fail "period $P: $u underruns"
	fi
done

# --- 1b. the PortAudio backend (its JACK host API) runs the same pipeline.
# A second run only when the first lost audio on the shared VM: a slow spell
# (seen once under ASan: the whole script took twice its time) drops blocks
# between PortAudio's JACK host API and the server; both runs are printed.
pa_db=""
for attempt in 1 2; do
	start_server 16000 256
	"$STREBMD" --backend portaudio --set portaudio.device=system --set portaudio.rate=16000 \
		--set portaudio.frames=256 --set osc.port=0 >"$TMP/strebmd.log" 2>&1 &
	SPID=$!
	i=0
	while ! jlsp 2>/dev/null | grep -q '^strebmd:out_1$'; do
		i=$((i + 1)); [ $i -gt 100 ] && break
		sleep 0.1
	done
	rm -rf "$TMP/pa"
	player --input "$DATA/linear_k2_16k/mix.wav" --sources 2 --out-dir "$TMP/pa" \
		--in-ports strebmd:in_ --out-ports strebmd:out_ --base 0 --align-measured \
		>"$TMP/player.out" 2>&1 || fail "player failed (PortAudio): $(cat "$TMP/player.out")"
	stop_strebmd
	"$STREBMD" --backend portaudio --set portaudio.device=nosuch --set osc.port=0 >"$TMP/err" 2>&1
	stop_server
	db=$(median linear_k2_16k "$TMP/pa")
	pa_db="$pa_db${pa_db:+, }'$db'"
	[ -n "$db" ] && awk -v a="$db" -v b="$FILE_DB" 'BEGIN { d = a - b; exit !(d < 1 && d > -1) }' && break
	echo "# PortAudio run $attempt: median '$db' dB against file mode $FILE_DB: $(tail -1 "$TMP/strebmd.log")"
done
if [ -n "$db" ] && awk -v a="$db" -v b="$FILE_DB" 'BEGIN { d = a - b; exit !(d < 1 && d > -1) }'; then
	pass "PortAudio backend: median SI-SDR improvement $db dB, file mode $FILE_DB dB (runs: $pa_db; delay $(sed -n 's/^measured_delay //p' "$TMP/player.out") frames)"
else
	fail "PortAudio backend: median SI-SDR improvement $pa_db dB (file mode $FILE_DB): $(tail -3 "$TMP/strebmd.log")"
fi
grep -q "no PortAudio device 'nosuch'; available: 0 'system'" "$TMP/err" \
	&& pass "an absent PortAudio device names the available ones: $(head -1 "$TMP/err")" \
	|| fail "absent PortAudio device: $(cat "$TMP/err")"

# --- 2. NaN/Inf in one channel, and an unconnected input
start_server 16000 256
start_strebmd "$STREBMD" --channels 3 --sources 2 --set daemon.status_interval=1 || exit 1
if player --input "$DATA/linear_k2_16k/mix.wav" --sources 2 --out-dir "$TMP/nan" \
	--nan-channel 1 --nan-at 2 --nan-for 0.5 >/dev/null 2>"$TMP/player.err"; then
	pass "NaN/Inf input on in_2: every output sample finite"
else
	fail "NaN/Inf input: $(cat "$TMP/player.err")"
fi
kill -0 "$SPID" 2>/dev/null && pass "strebmd still running after NaN/Inf input" || fail "strebmd died on NaN/Inf input"
stop_strebmd
stop_server
nf=$(status_field "non-finite hops")
[ -n "$nf" ] && [ "$nf" -gt 0 ] && pass "status counts $nf non-finite hops" || fail "non-finite hops not counted ('$nf')"
# while the player ran, only the unconnected in_3 was dead
grep -v stopping "$TMP/strebmd.log" | grep -q 'dead inputs 3, ' \
	&& pass "status names the unconnected input in_3 as dead while audio plays" \
	|| fail "dead inputs: $(grep -o 'dead inputs [^,]*' "$TMP/strebmd.log" | sort | uniq -c | tr '\n' ' ')"

# --- 3. buffer size switched 64 <-> 4096 while audio runs
start_server 48000 256
start_strebmd "$STREBMD" --channels 2 || exit 1
player --input "$DATA/linear_k2_48k/mix.wav" --sources 2 --out-dir "$TMP/bs" >/dev/null 2>"$TMP/player.err" &
PP=$!
for b in 64 4096 64 4096 128 2048 64 4096 64 1024; do
	timeout 5 jack_bufsize "$b" >/dev/null 2>&1
	sleep 0.4
done
# the test client itself may be dropped by a loaded server while the period
# changes under it (it then stops after 5 s without cycles): that is the
# client's problem; strebmd must be alive and separate afterwards
wait $PP || echo "# the test player was dropped during the changes: $(cat "$TMP/player.err")"
kill -0 "$SPID" 2>/dev/null && pass "buffer size switched 10 times between 64 and 4096: strebmd alive" \
	|| fail "strebmd died during buffer-size changes: $(tail -5 "$TMP/strebmd.log")"
# a client the server dropped meanwhile comes back by itself: wait for its ports
i=0
while [ "$(jlsp 2>/dev/null | grep -c '^strebmd:')" -lt 4 ] && [ $i -lt 100 ]; do
	i=$((i + 1)); sleep 0.1
done
grep -q "went away" "$TMP/strebmd.log" && echo "# the server dropped strebmd's client during the changes; it reconnected"
# the server may still be settling (a dropped client's zombie): a test client
# that cannot connect or gets no cycles tries again, up to 3 times
n=0; ok=0
while [ $n -lt 3 ]; do
	n=$((n + 1))
	player --input "$DATA/linear_k2_48k/mix.wav" --sources 2 --out-dir "$TMP/bs2" >"$TMP/player.out" 2>&1 \
		&& { ok=1; break; }
	grep -qE "cannot connect|no audio cycles|cannot open" "$TMP/player.out" || break
	echo "# test player attempt $n: $(tail -1 "$TMP/player.out"); again"
	sleep 1
done
[ $ok = 1 ] \
	&& pass "after the changes (period 1024) it separates, every output sample finite: $(grep -E '^(reported_latency|measured_delay)' "$TMP/player.out" | tr '\n' ' ')" \
	|| fail "after the buffer-size changes: $(cat "$TMP/player.out"); ports: $(jlsp -c 2>&1 | tr '\n' ' '); strebmd: $(tail -5 "$TMP/strebmd.log" | tr '\n' ' ')"
stop_strebmd
stop_server

# --- many ports: SIGTERM with 40 inputs stops at once (jack2 1.9.21 never
# answered jack_client_close for a client of 33+ ports that had not
# unregistered them itself) and leaves the server working
start_server 48000 256
if start_strebmd "$STREBMD" --channels 40 --sources 4; then
	sleep 1
	f0=$fails
	stop_strebmd
	if [ "$fails" = "$f0" ] && jlsp >/dev/null 2>&1; then
		pass "40 input ports: SIGTERM exits 0 within 2 s and the server still answers"
	else
		fail "40 input ports: the stop or the server after it ($(tail -2 "$TMP/jackd.log" | tr '\n' ' '))"
	fi
else
	fail "40 input ports: strebmd did not start"
fi
stop_server

# --- 4. the server killed and restarted: reconnects, connections restored,
# separation resumes; 20 cycles, no memory growth
start_server 16000 256
start_strebmd "$STREBMD" --channels 2 --set jack.connect_outputs=,system:playback_2 || exit 1
jconnect system:capture_1 strebmd:in_1 || fail "cannot connect system:capture_1 to strebmd:in_1"
jconnect strebmd:source_1 system:playback_1 || fail "cannot connect strebmd:source_1 to system:playback_1"
sleep 0.3
# a second strebmd under the same client name: a clear error, the first unharmed
if timeout 10 "$STREBMD" --backend jack --set osc.port=0 --channels 2 >/dev/null 2>"$TMP/dup.err"; then
	fail "a second strebmd named strebmd started"
elif grep -q "name in use" "$TMP/dup.err" && kill -0 "$SPID"; then
	pass "a second strebmd with the same client name: $(head -1 "$TMP/dup.err")"
else
	fail "a second strebmd with the same client name: $(cat "$TMP/dup.err")"
fi
worst=0
rss_at_10=0
res_at_10=
ok=1
for c in $(seq 1 20); do
	kill -9 "$JPID"; wait "$JPID" 2>/dev/null; JPID=
	sleep 0.3
	t0=$(date +%s.%N)
	start_server 16000 256
	wait_ports || { ok=0; fail "cycle $c: strebmd did not come back"; break; }
	# connections: the one we made, the one strebmd made, the configured one
	j=0
	while :; do
		conns=$(jlsp -c 2>/dev/null)
		echo "$conns" | grep -A3 '^system:capture_1$' | grep -q 'strebmd:in_1' &&
		echo "$conns" | grep -A3 '^system:playback_1$' | grep -q 'strebmd:source_1' &&
		echo "$conns" | grep -A3 '^system:playback_2$' | grep -q 'strebmd:source_2' && break
		j=$((j + 1)); [ $j -gt 50 ] && { ok=0; fail "cycle $c: connections not restored"; jlsp -c; break 2; }
		sleep 0.1
	done
	worst=$(awk -v a="$(date +%s.%N)" -v b="$t0" -v w="$worst" 'BEGIN { d = a - b; printf "%.2f", (d > w ? d : w) }')
	if [ $c -eq 10 ]; then
		rss_at_10=$(awk '/VmRSS/ { print $2 }' /proc/$SPID/status)
		res_at_10="$(ls /proc/$SPID/task | wc -l) threads, $(ls /proc/$SPID/fd | wc -l) fds"
	fi
done
rss_end=$(awk '/VmRSS/ { print $2 }' /proc/$SPID/status 2>/dev/null || echo 0)
res_end="$(ls /proc/$SPID/task | wc -l) threads, $(ls /proc/$SPID/fd | wc -l) fds"
if [ $ok = 1 ]; then
	awk -v w="$worst" 'BEGIN { exit !(w <= 5) }' && pass "20 server restarts: back with its connections within $worst s (<= 5)" \
		|| fail "reconnection took $worst s (> 5)"
	# after a warm-up (allocator arenas, thread-stack cache), a leak shows as
	# steady growth: 10 more restarts may not add 2 MB, a thread or a descriptor.
	# Under AddressSanitizer RSS holds its quarantine of freed memory: there
	# LeakSanitizer judges leaks instead, at the exit stop_strebmd checks.
	grow=$((rss_end - rss_at_10))
	if grep -q asan "/proc/$SPID/maps" 2>/dev/null; then
		[ "$res_end" = "$res_at_10" ] \
			&& pass "restarts 10 to 20: $res_end both times (RSS $rss_at_10 -> $rss_end kB under ASan; LeakSanitizer checks the exit)" \
			|| fail "over restarts 10 to 20: $res_at_10 -> $res_end"
	else
		[ $grow -lt 2048 ] && [ "$res_end" = "$res_at_10" ] \
			&& pass "RSS after restart 10: $rss_at_10 kB, after 20: $rss_end kB (growth $grow kB < 2 MB); $res_end both times" \
			|| fail "over restarts 10 to 20: RSS $rss_at_10 -> $rss_end kB, $res_at_10 -> $res_end"
	fi
	# the capture port adds its latency to in_1's path: the player's is direct
	timeout 5 jack_disconnect system:capture_1 strebmd:in_1
	# a second pass only if the first lost audio (a slow spell of the shared VM
	# once cost the dummy server's blocks: 15.6 dB, the next run 33.8)
	dbs=""
	for pass_no in 1 2; do
		rm -rf "$TMP/after"
		player --input "$DATA/linear_k2_16k/mix.wav" --sources 2 --out-dir "$TMP/after" >/dev/null || fail "player failed after restarts"
		db=$(median linear_k2_16k "$TMP/after")
		dbs="$dbs${dbs:+, }'$db'"
		awk -v a="$db" 'BEGIN { exit !(a >= 20) }' && break
	done
	awk -v a="$db" 'BEGIN { exit !(a >= 20) }' && pass "separation resumed after 20 restarts: $db dB (passes: $dbs)" \
		|| fail "separation after restarts: $dbs dB"
fi
stop_strebmd
stop_server

# --- 5. M = K = 4 at 48 kHz, period 128, for $LONG s: no underrun. A dummy
# server on a loaded machine has xrun storms of its own; a run with
# underruns in which the server logged more than 10 xruns is repeated (5 runs
# at most): the underruns must be 0 in one of them.
loops=$(( (LONG + 5) / 6 ))
for attempt in 1 2 3 4 5; do
	start_server 48000 128
	start_strebmd "$STREBMD" --channels 4 || exit 1
	player --input "$DATA/linear_k4_48k/mix.wav" --sources 4 --loops $loops --tail 0.2 --out-dir "$TMP/k4" >"$TMP/player.out" 2>&1 || fail "player failed (M = K = 4)"
	stop_strebmd
	stop_server
	u=$(status_field underruns)
	x=$(status_field xruns)
	early=$(grep 'stopping:' "$TMP/strebmd.log" | sed -n 's/.*(+\([0-9]*\) after server xruns).*/\1/p')
	[ "$u" = 0 ] && break
	[ "$x" -gt 10 ] || break
	echo "# M = K = 4: $u underruns during $x server xruns; again"
done
if [ "$u" = 0 ]; then
	pass "M = K = 4, 48 kHz, period 128, $((loops * 6)) s: 0 underruns (server xruns: $x; periods the server's catch-up left short: $early)"
elif [ -n "$SAN" ] && [ -n "$u" ]; then
	echo "# $SAN build: M = K = 4: $u underruns (server xruns $x): judged in the plain build"
else
	fail "M = K = 4 long run: $u underruns (server xruns $x)"
fi

# --- 6. the realtime rule, checked by the interposing build
if [ -n "$RTCHECK" ]; then
	start_server 48000 128
	start_strebmd "$RTCHECK" --channels 2 || exit 1
	player --input "$DATA/linear_k2_48k/mix.wav" --sources 2 --out-dir "$TMP/rt" >/dev/null 2>&1 &
	PP=$!
	sleep 1
	timeout 5 jack_bufsize 64 >/dev/null 2>&1; sleep 0.5; timeout 5 jack_bufsize 1024 >/dev/null 2>&1
	wait $PP
	stop_strebmd
	n=$(sed -n 's/^rtcheck: \([0-9]*\) audio callbacks checked.*/\1/p' "$TMP/strebmd.log")
	[ -n "$n" ] && [ "$n" -gt 500 ] && pass "rtcheck: $n audio callbacks, no allocation, lock, wait or syscall" \
		|| fail "rtcheck: '$n' callbacks checked: $(grep rtcheck "$TMP/strebmd.log")"
	# and the check does fire when the callback allocates
	STREBMD_RTCHECK_SELFTEST=1 "$RTCHECK" --backend jack --channels 2 --set osc.port=0 >"$TMP/self.log" 2>&1 &
	SPID=$!
	wait_ports
	player --input "$DATA/linear_k2_48k/mix.wav" --sources 2 --out-dir "$TMP/rt2" >/dev/null 2>&1
	wait "$SPID"; rc=$?; SPID=
	grep -q 'VIOLATION on the audio thread: malloc' "$TMP/self.log" && [ $rc -ne 0 ] \
		&& pass "rtcheck self-test: an allocation in the callback aborts (exit $rc)" \
		|| fail "rtcheck self-test did not fire (exit $rc): $(tail -2 "$TMP/self.log")"
	stop_server
fi

echo "$fails failure(s)"
[ $fails -eq 0 ]
