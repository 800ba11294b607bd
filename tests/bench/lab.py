#!/usr/bin/python3
"""Run conv-lab (core/conv with setting overrides) on the delayed/reverb sets and
score it as bench.py does (SI-SDRi vs the mic-0 image, first second skipped).

    /usr/bin/python3 tests/bench/lab.py [--lab build/tests/bench/conv-lab]
        [--sets a,b] [--jobs 2] [key=value ...]
"""
import argparse
import json
import subprocess
import sys
import tempfile
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
import bench  # noqa: E402

SEGMENTS = False


def run(lab, data_dir, name, overrides, tmp):
    d = bench.load_set(data_dir / name)
    K = d["meta"]["n_src"]
    out = Path(tmp) / name
    out.mkdir()
    p = subprocess.run([lab, str(d["dir"] / "mix.wav"), str(out), str(K)] + overrides,
                       capture_output=True, text=True, check=True)
    est = np.vstack([bench.read_wav(out / f"source_{k + 1}.wav")[0][0] for k in range(K)])
    fs = int(round(d["fs"]))
    s = bench.score(est, d["refs"], d["mix"][0], fs)
    info = p.stdout.strip()
    if SEGMENTS:  # median SI-SDRi per second, permutation of the whole file
        perm = s["perm"]
        seg = []
        for t0 in range(0, est.shape[1] - fs // 2, fs):
            sl = slice(t0, t0 + fs)
            v = [bench.si_sdr(est[perm[k], sl], d["refs"][k, sl])
                 - bench.si_sdr(d["mix"][0, sl], d["refs"][k, sl]) for k in range(K)]
            seg.append(float(np.median(v)))
        info = "seg " + " ".join(f"{v:5.1f}" for v in seg) + "  " + info
    return name, s, info


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--lab", default="build/tests/bench/conv-lab")
    ap.add_argument("--data", type=Path, default=Path("/work/shared/data"))
    ap.add_argument("--sets", default="")
    ap.add_argument("--jobs", type=int, default=2)
    ap.add_argument("--segments", action="store_true")
    ap.add_argument("--keep", type=Path, help="keep outputs in KEEP/<set>/")
    ap.add_argument("overrides", nargs="*")
    a = ap.parse_args()
    global SEGMENTS
    SEGMENTS = a.segments
    names = [s for s in a.sets.split(",") if s] or [
        p.name for p in sorted(a.data.iterdir()) if (p / "meta.json").is_file()
        and json.loads((p / "meta.json").read_text())["mode"] in ("delayed", "reverb")]
    with tempfile.TemporaryDirectory() as tmp, ThreadPoolExecutor(a.jobs) as ex:
        if a.keep:
            a.keep.mkdir(parents=True, exist_ok=True)
        res = list(ex.map(lambda n: run(a.lab, a.data, n, a.overrides, a.keep or tmp), names))
    meds = []
    for name, s, info in res:
        meds.append(s["si_sdri_median"])
        print(f"{name:22s} {s['si_sdri_median']:6.1f}  "
              f"[{'/'.join(f'{v:.1f}' for v in s['si_sdri'])}]  {info}")
    print(f"{'min':22s} {min(meds):6.1f}   mean {np.mean(meds):.2f}   {' '.join(a.overrides)}")


if __name__ == "__main__":
    main()
