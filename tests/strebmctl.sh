#!/bin/sh
# SPDX-License-Identifier: MIT
# strebmctl against io/osc behind tests/osc_testserver (a stand-in for strebmd
# that applies settings to a fake status at once). Checks output words, exit
# codes, errors, timeouts, save/load and monitor.
# usage: strebmctl.sh STREBMCTL OSC_TESTSERVER
set -u
CTL=$1
SRV=$2
tmp=$(mktemp -d)
fail=0
trap 'kill $spid 2>/dev/null; wait $spid 2>/dev/null; rm -rf "$tmp"' EXIT

"$SRV" >"$tmp/port" &
spid=$!
i=0
while [ ! -s "$tmp/port" ] && [ $i -lt 50 ]; do sleep 0.1; i=$((i + 1)); done
port=$(cat "$tmp/port")
[ -n "$port" ] || { echo "FAIL: test server did not start"; exit 1; }

# ok NAME EXPECTED-WORDS -- ARGS: exit 0 and stdout contains the words
ok() {
	name=$1; want=$2; shift 3
	if ! "$CTL" --port "$port" "$@" >"$tmp/out" 2>"$tmp/err"; then
		echo "FAIL: $name: exit $? ($(cat "$tmp/err"))"; fail=1; return
	fi
	grep -q -- "$want" "$tmp/out" || { echo "FAIL: $name: no '$want' in: $(cat "$tmp/out")"; fail=1; return; }
	echo "ok: $name: $(head -1 "$tmp/out")"
}

# bad NAME STATUS EXPECTED-WORDS -- ARGS: exit STATUS and stderr has the words
bad() {
	name=$1; code=$2; want=$3; shift 4
	"$CTL" --port "$port" "$@" >"$tmp/out" 2>"$tmp/err"
	got=$?
	[ "$got" -eq "$code" ] || { echo "FAIL: $name: exit $got, expected $code ($(cat "$tmp/err"))"; fail=1; return; }
	grep -q -- "$want" "$tmp/err" || { echo "FAIL: $name: no '$want' in: $(cat "$tmp/err")"; fail=1; return; }
	echo "ok: $name: $(head -1 "$tmp/err")"
}

ok ping "answers" -- ping
ok status "sources: 2" -- status
ok status-rate "sample rate: 48000 Hz" -- status
ok status-ell "source 2 length-scale: 2.000 ms" -- status
ok status-audio "audio: running" -- status
ok status-separation "separation: ok" -- status
ok status-dead "dead inputs: 2" -- status
ok mode-query "mode: linear" -- mode
ok mode-set "mode set to nonlinear" -- mode nonlinear
ok mode-after "mode: nonlinear" -- mode
ok ell-set "length-scale set to 1.500 ms (pinned)" -- lengthscale 1 1.5
ok ell-query "source 1 length-scale: 1.500 ms" -- lengthscale 1
ok learn-query "source 1 length-scale: pinned" -- learn 1
ok learn-set "learned again" -- learn 1 1
ok learn-after "source 1 length-scale: learned" -- learn 1
ok kernel-set "kernel set to matern32" -- kernel 2 matern32
ok kernel-query "source 2 kernel: matern32" -- kernel 2
ok gain-set "gain set to -6.0 dB" -- gain 2 -6
ok gain-query "source 2 gain: -6.0 dB" -- gain 2
ok mute-set "source 1 muted" -- mute 1 1
ok mute-query "source 1: muted" -- mute 1
ok freeze-set "adaptation frozen" -- freeze 1
ok freeze-query "adaptation: frozen" -- freeze
ok reset "model reset" -- reset
ok save "saved to $tmp/show.state" -- save "$tmp/show.state"
ok load "loaded from $tmp/show.state" -- load "$tmp/show.state"
(cd "$tmp" && "$CTL" --port "$port" save rel.state >/dev/null) && [ -s "$tmp/rel.state" ] &&
	echo "ok: save-relative" || { echo "FAIL: save with a relative path"; fail=1; }

bad gain-range 1 "out of range" -- gain 1 50
bad bad-source 1 "bad source index 3" -- lengthscale 3 2
bad bad-kernel 1 "unknown kernel" -- kernel 1 gauss
bad ell-range 1 "out of range" -- lengthscale 1 0
bad load-missing 1 "cannot open" -- load "$tmp/none.state"
bad load-garbage 1 "not a state" -- load /dev/null
bad usage-cmd 2 "unknown command" -- frobnicate
bad usage-flag 2 "0 or 1" -- mute 1 2
bad usage-src 2 "source number" -- gain x 1
bad usage-arg 2 "no argument" -- ping 1
bad usage-mode 2 "linear, nonlinear or convolutive" -- mode fast

# no strebmd there: a port nobody listens on, and an address that drops
free_port=$(( port == 65535 ? port - 1 : port + 1 ))
"$CTL" --port $free_port --timeout 0.5 ping >"$tmp/out" 2>"$tmp/err"
[ $? -eq 1 ] && grep -q -e "nothing listens" -e "no answer" "$tmp/err" &&
	echo "ok: no-server: $(cat "$tmp/err")" || { echo "FAIL: no-server: $(cat "$tmp/err")"; fail=1; }
# a socket that reads and never answers
/usr/bin/python3 -c 'import socket, time
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.bind(("127.0.0.1", 0))
print(s.getsockname()[1], flush=True)
time.sleep(20)' >"$tmp/silent" &
qpid=$!
i=0
while [ ! -s "$tmp/silent" ] && [ $i -lt 50 ]; do sleep 0.1; i=$((i + 1)); done
"$CTL" --port "$(cat "$tmp/silent")" --timeout 0.3 status >"$tmp/out" 2>"$tmp/err"
code=$?
kill $qpid 2>/dev/null
[ $code -eq 1 ] && grep -q "no answer from 127.0.0.1 port .* within 0.3 s" "$tmp/err" &&
	echo "ok: timeout: $(cat "$tmp/err")" || { echo "FAIL: timeout: $(cat "$tmp/err")"; fail=1; }

# monitor: lines of meters and counters until SIGINT, then exit 0
"$CTL" --port "$port" monitor >"$tmp/mon" 2>"$tmp/monerr" &
mpid=$!
sleep 1
kill -INT $mpid
wait $mpid
mcode=$?
lines=$(grep -c "source 1 .*dBFS" "$tmp/mon")
if [ $mcode -eq 0 ] && [ "$lines" -ge 3 ] && grep -q "source 2 .*-35.0 dBFS" "$tmp/mon"; then
	echo "ok: monitor: $lines lines, e.g. $(tail -1 "$tmp/mon")"
else
	echo "FAIL: monitor: exit $mcode, $lines lines: $(cat "$tmp/mon" "$tmp/monerr")"; fail=1
fi
# an overloaded daemon (the worker needs more than real time): status says so
"$SRV" 3.5 >"$tmp/port2" &
spid2=$!
i=0
while [ ! -s "$tmp/port2" ] && [ $i -lt 50 ]; do sleep 0.1; i=$((i + 1)); done
"$CTL" --port "$(cat "$tmp/port2")" status >"$tmp/out" 2>"$tmp/err"
kill $spid2 2>/dev/null
wait $spid2 2>/dev/null
if grep -q "audio: running, overloaded (the separation needs 3.5x real time" "$tmp/out" &&
   ! grep -q "overloaded" "$tmp/mon"; then
	echo "ok: overloaded: $(grep audio: "$tmp/out")"
else
	echo "FAIL: overloaded: $(cat "$tmp/out" "$tmp/err")"; fail=1
fi
exit $fail
