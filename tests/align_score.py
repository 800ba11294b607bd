#!/usr/bin/python3
"""Live recording against file mode, robust to dropped cycles.

A dummy JACK server that xruns drops cycles, which shifts the rest of a
recording and ruins a whole-file score although the separation is intact.
Here both outputs are cut into 0.25 s blocks from 1 s on; each block of each
output is re-aligned by the lag (within +-0.25 s) that best matches the sum of
the outputs to the mixture's reference channel (projection back makes the
images add up to it), then scored (SI-SDR improvement over the reference
channel, median over sources, best permutation). Prints the share of blocks
where the live score is within TOL dB of (or above) file mode's and both
medians; exits 0 when at least 75 % of the blocks are.

    align_score.py MIX.wav REFS_DIR LIVE_DIR FILE_DIR [TOL]
"""
import itertools
import sys
from pathlib import Path

import numpy as np
import soundfile as sf


def sisdr(r, y):
    a = np.dot(y, r) / max(np.dot(r, r), 1e-20)
    e = y - a * r
    return 10 * np.log10(max(np.dot(a * r, a * r), 1e-20) / max(np.dot(e, e), 1e-20))


def best_lag(seg, s, L):
    """The lag (-L..L) at which block s best matches seg, which holds the
    reference channel from L samples before the block to L after it."""
    m = 1 << int(np.ceil(np.log2(len(seg) + len(s))))
    cc = np.fft.irfft(np.fft.rfft(seg, m) * np.conj(np.fft.rfft(s, m)), m)[:2 * L + 1]
    return int(np.argmax(cc)) - L


def block_scores(x0, refs, ys, fs):
    K, n = len(refs), min(len(y) for y in ys)
    L, B = fs // 4, fs // 4
    out = []
    for i0 in range(fs, n - B + 1, B):
        i1 = i0 + B
        s = sum(y[i0:i1] for y in ys)
        if i0 - L < 0 or i1 + L > len(x0):
            out.append(None)
            continue
        j = np.arange(i0, i1) + best_lag(x0[i0 - L:i1 + L], s, L)
        r = [ref[j] for ref in refs]
        base = [sisdr(r[k], x0[j]) for k in range(K)]
        best = max(([sisdr(r[k], ys[p[k]][i0:i1]) - base[k] for k in range(K)]
                    for p in itertools.permutations(range(K))), key=sum)
        out.append(float(np.median(best)))
    return out


def main():
    mix, fs = sf.read(sys.argv[1], always_2d=True)
    refdir = Path(sys.argv[2])
    K = len(list(refdir.glob("src*.wav")))
    refs = [sf.read(refdir / ("src%d.wav" % k))[0] for k in range(K)]
    tol = float(sys.argv[5]) if len(sys.argv) > 5 else 1.0
    sc = []
    for d in sys.argv[3:5]:
        ys = [sf.read(Path(d) / ("source_%d.wav" % (k + 1)))[0] for k in range(K)]
        sc.append(block_scores(mix[:, 0], refs, ys, fs))
    pairs = [(a, b) for a, b in zip(*sc) if a is not None and b is not None]
    good = sum(a >= b - tol for a, b in pairs)
    share = good / len(pairs) if pairs else 0.0
    print("%d of %d blocks within %.1f dB of file mode (median %.1f dB live, %.1f dB file)"
          % (good, len(pairs), tol, np.median([a for a, _ in pairs]),
             np.median([b for _, b in pairs])))
    sys.exit(0 if share >= 0.75 else 1)


if __name__ == "__main__":
    main()
