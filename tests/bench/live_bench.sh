#!/bin/sh
# SPDX-License-Identifier: MIT
# Live benchmark: M = K = 4 at 48 kHz through a dummy JACK server, one row per
# period: strebmd's underruns (worker late), the server's xruns during the
# strebmd run and during a jack_thru run of the same length (the machine's own
# xrun rate), the worker's real-time factor, and the latency reported by the
# ports against the delay measured on the recording.
#   tests/bench/live_bench.sh [BUILD_DIR] [SECONDS_PER_ROW] [HOP]
set -u
B=${1:-build}
SECS=${2:-12}
HOP=${3:-256}
DATA=${STREBM_SHARED_DATA:-$(dirname "$0")/../../../shared/data}
TMP=$(mktemp -d)
SRV=strebmbench
export JACK_DEFAULT_SERVER=$SRV JACK_NO_AUDIO_RESERVATION=1
J=; S=; T=
trap 'kill -9 $J $S $T 2>/dev/null; rm -rf "$TMP"' EXIT
loops=$(( (SECS + 5) / 6 ))
printf "%-7s %-9s %-14s %-16s %-8s %-9s %-9s\n" period underruns "xruns(strebmd)" "xruns(jack_thru)" "rtf" reported measured
for P in 32 64 128 256 512 1024; do
	jackd -n $SRV -d dummy -r 48000 -p $P >/dev/null 2>&1 & J=$!
	until jack_lsp >/dev/null 2>&1; do sleep 0.1; done
	"$B/daemon/strebmd" --backend jack --channels 4 --set engine.hop=$HOP --set osc.port=0 \
		>"$TMP/s.log" 2>&1 & S=$!
	until jack_lsp 2>/dev/null | grep -q strebmd:source_4; do sleep 0.1; done
	"$B/tests/strebm-jack-player" --input "$DATA/linear_k4_48k/mix.wav" --sources 4 \
		--loops $loops --tail 0.2 --out-dir "$TMP/o" >"$TMP/p.out" 2>&1
	kill $S; wait $S
	kill $J; wait $J 2>/dev/null
	line=$(grep stopping: "$TMP/s.log")
	u=$(echo "$line" | sed -n 's/.*underruns \([0-9]*\).*/\1/p')
	x=$(sed -n 's/^xruns //p' "$TMP/p.out")
	rtf=$(echo "$line" | sed -n 's/.*(mean \([0-9.]*\)).*/\1/p')
	rep=$(sed -n 's/^reported_latency //p' "$TMP/p.out")
	mea=$(sed -n 's/^measured_delay //p' "$TMP/p.out")
	# jack_thru's xruns: a player run against jack_thru counts the server's
	jackd -n $SRV -d dummy -r 48000 -p $P >/dev/null 2>&1 & J=$!
	until jack_lsp >/dev/null 2>&1; do sleep 0.1; done
	jack_thru >/dev/null 2>&1 & T=$!
	sleep 0.3
	"$B/tests/strebm-jack-player" --input "$DATA/linear_k2_48k/mix.wav" --sources 2 \
		--loops $loops --tail 0.2 --in-ports jack_thru:input_ --out-ports jack_thru:output_ \
		--out-dir "$TMP/t" >"$TMP/t.out" 2>&1
	tx=$(sed -n 's/^xruns //p' "$TMP/t.out")
	kill $T; wait $T 2>/dev/null
	kill $J; wait $J 2>/dev/null
	printf "%-7s %-9s %-14s %-16s %-8s %-9s %-9s\n" "$P" "$u" "$x" "${tx:-?}" "$rtf" "$rep" "$mea"
done
echo "(hop $HOP frames; latency in frames: reported by the ports = hop + period)"
