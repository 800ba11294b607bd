#!/usr/bin/python3
"""Separation-quality and CPU benchmark for strebmd, against scikit-learn FastICA.

Usage (from the repository root, with Debian's interpreter, which has numpy, scipy,
scikit-learn, mir_eval and soundfile):

    /usr/bin/python3 tests/bench/bench.py [--strebmd build/daemon/strebmd]
        [--data /work/shared/data] [--sets a,b,c | --kinds linear,nonlinear]
        [--mode MODE] [--extra "ARGS"] [--skip 1.0] [--timeout 600]
        [--keep-dir DIR] [--json OUT] [--targets]

For every selected set under the data directory (default: $STREBM_SHARED_DATA, else
/work/shared/data; default selection: the linear_* and nonlinear_* sets) the bench

1. runs the separator in file mode:
       STREBMD --backend file --input SET/mix.wav --output-dir DIR --sources K
               --mode MODE --report DIR/report.json [EXTRA...]
   MODE is the set's mode from meta.json ('linear' or 'nonlinear'; 'delayed' and
   'reverb' sets run in 'convolutive' mode) unless --mode is given. The run must write DIR/source_1.wav ...
   source_K.wav (same length and rate as the mixture) and report.json with
   audio_seconds and worker_cpu_seconds;
2. runs FastICA (whiten='unit-variance', max_iter=1000, random_state=0) on the whole
   mixture, timed in process CPU seconds (all threads);
3. scores both against the true sources -- for delayed/reverb sets against each
   source's image at mic 0, conv(filters[0*K + k], src_k) -- on the samples after
   the first --skip seconds:
   - estimates are matched to sources by the permutation maximising summed SI-SDR;
   - SI-SDRi = SI-SDR(estimate, ref) - SI-SDR(mic 0, ref), zero-mean SI-SDR;
   - BSS-eval SDR/SIR from mir_eval.separation.bss_eval_sources, on the matched
     estimates as they are (no rescaling: its 512-tap distortion filter already
     absorbs any gain, so FastICA's arbitrary scale and sign do not matter);
   - |corr| = mean absolute Pearson correlation of matched estimate and source;
   - RTF = CPU seconds / audio seconds (strebmd: worker_cpu_seconds / audio_seconds
     from its report).

It prints per-source details for each set, then one fixed-width row per set. With
--targets it also checks the acceptance figures and prints PASS/FAIL per row:
linear sets median SI-SDRi >= 25 dB; nonlinear tanh sets median SI-SDRi >= FastICA's
+ 3 dB and mean |corr| >= 0.9; linear_k4_48k RTF <= 0.05; nonlinear_tanh_k2_16k
RTF <= 0.5; delayed/reverb sets (run in convolutive mode) median SI-SDRi >= 0,
delayed_frac_k2_16k/_48k >= 15, reverb_rt200_k2_16k >= 5, reverb_rt200_k3_16k >= 3,
RTF <= 0.1 for M=K=2 at 48 kHz and M=K=3 at 16 kHz (issue 6). Sets without any
target show 'n/a'.

Exit status: 0 on success; 1 if any strebmd run failed (its stderr is printed) or a
set could not be loaded; 2 if all runs succeeded but a --targets check failed.
"""

import argparse
import itertools
import json
import math
import os
import shlex
import subprocess
import sys
import tempfile
import time
import warnings
from pathlib import Path

import mir_eval
import numpy as np
import soundfile as sf
from scipy.signal import fftconvolve
from sklearn.decomposition import FastICA
from sklearn.exceptions import ConvergenceWarning

DEFAULT_KINDS = ("linear", "nonlinear")
ALL_KINDS = ("linear", "nonlinear", "delayed", "reverb")
FASTICA_MAX_ITER = 1000
# strebmd mode for a set's mixing model (meta.json "mode") unless --mode is given
SET_MODE = {"delayed": "convolutive", "reverb": "convolutive"}
REPORT_KEYS = ("audio_seconds", "worker_cpu_seconds", "rtf", "window", "hop",
               "latency_samples")


class BenchError(Exception):
    """A set could not be loaded or the separator run failed."""


# --------------------------------------------------------------------------- data


def read_wav(path):
    """Return (channels x samples float64 array, sample rate)."""
    data, fs = sf.read(str(path), dtype="float64", always_2d=True)
    return data.T, fs


def load_set(set_dir):
    """Load meta.json, the mixture and the scoring references of one set.

    For delayed/reverb sets the references are the source images at mic 0,
    conv(filters[0*K + k], src_k) truncated to the mixture length.
    """
    meta = json.loads((set_dir / "meta.json").read_text())
    mix, fs = read_wav(set_dir / meta["files"]["mix"])
    n_src, n_samples = meta["n_src"], mix.shape[1]
    refs = np.vstack([read_wav(set_dir / f)[0][0] for f in meta["files"]["refs"]])
    if refs.shape != (n_src, n_samples):
        raise BenchError(f"{set_dir.name}: refs shape {refs.shape}, "
                         f"expected {(n_src, n_samples)}")
    if "filters" in meta["files"]:
        filters, _ = read_wav(set_dir / meta["files"]["filters"])
        refs = np.vstack([fftconvolve(filters[k], refs[k])[:n_samples]
                          for k in range(n_src)])
    return {"name": set_dir.name, "dir": set_dir, "meta": meta, "mix": mix,
            "refs": refs, "fs": fs}


def select_sets(data_dir, names, kinds):
    """Set directories named in `names`, or else every set whose mode is in `kinds`."""
    if names:
        dirs = [data_dir / n for n in names]
        missing = [d.name for d in dirs if not (d / "meta.json").is_file()]
        if missing:
            raise BenchError(f"no such set(s) in {data_dir}: {', '.join(missing)}")
        return dirs
    return [d for d in sorted(data_dir.iterdir())
            if (d / "meta.json").is_file()
            and json.loads((d / "meta.json").read_text())["mode"] in kinds]


# ------------------------------------------------------------------------ metrics


def si_sdr(est, ref):
    """Zero-mean scale-invariant SDR in dB (-inf for a silent estimate)."""
    est = est - est.mean()
    ref = ref - ref.mean()
    if not est.any():
        return -math.inf
    target = (est @ ref) / (ref @ ref) * ref
    noise = est - target
    with np.errstate(divide="ignore"):
        return float(10.0 * np.log10((target @ target) / (noise @ noise)))


def abs_corr(a, b):
    """Absolute Pearson correlation (0 for a constant signal)."""
    a = a - a.mean()
    b = b - b.mean()
    denom = math.sqrt((a @ a) * (b @ b))
    return float(abs(a @ b) / denom) if denom > 0 else 0.0


def score(est, refs, mic0, start):
    """Score estimates (K x N) against references (K x N) from sample `start` on."""
    est, refs, mic0 = est[:, start:], refs[:, start:], mic0[start:]
    n_src = refs.shape[0]
    table = np.array([[si_sdr(e, r) for r in refs] for e in est])  # [est, ref]
    finite = np.clip(table, -1e3, 1e3)  # so that +-inf (exact/silent) cannot tie
    perm = max(itertools.permutations(range(n_src)),
               key=lambda p: sum(finite[p[k], k] for k in range(n_src)))
    matched = est[list(perm)]
    sisdr = np.array([table[perm[k], k] for k in range(n_src)])
    base = np.array([si_sdr(mic0, r) for r in refs])
    try:
        sdr, sir, _, _ = mir_eval.separation.bss_eval_sources(
            refs, matched, compute_permutation=False)
    except ValueError as exc:  # mir_eval refuses silent estimates
        print(f"  bss_eval_sources failed: {exc}", file=sys.stderr)
        sdr = sir = np.full(n_src, np.nan)
    corr = np.array([abs_corr(m, r) for m, r in zip(matched, refs)])
    sisdri = sisdr - base
    return {"perm": list(perm), "si_sdr": sisdr.tolist(), "si_sdr_mic0": base.tolist(),
            "si_sdri": sisdri.tolist(), "si_sdri_median": float(np.median(sisdri)),
            "sdr": sdr.tolist(), "sir": sir.tolist(),
            "sdr_median": float(np.median(sdr)), "sir_median": float(np.median(sir)),
            "corr": corr.tolist(), "corr_mean": float(corr.mean())}


# --------------------------------------------------------------------- separators


def run_strebmd(args, data, out_dir):
    """Run the separator on one set; return (estimates K x N, report dict, command)."""
    meta = data["meta"]
    n_src = meta["n_src"]
    cmd = [args.strebmd, "--backend", "file", "--input", str(data["dir"] / "mix.wav"),
           "--output-dir", str(out_dir), "--sources", str(n_src),
           "--mode", args.mode or SET_MODE.get(meta["mode"], meta["mode"]),
           "--report", str(out_dir / "report.json")] + shlex.split(args.extra)
    try:
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=args.timeout)
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise BenchError(f"{shlex.join(cmd)}\n  {exc}") from exc
    if proc.returncode != 0:
        raise BenchError(f"{shlex.join(cmd)}\n  exited with status {proc.returncode}; "
                         f"stderr:\n{proc.stderr.rstrip()}")
    try:
        report = json.loads((out_dir / "report.json").read_text())
        missing = [k for k in REPORT_KEYS if k not in report]
        if missing:
            raise BenchError(f"report.json lacks {', '.join(missing)}")
        est = []
        for k in range(1, n_src + 1):
            sig, fs = read_wav(out_dir / f"source_{k}.wav")
            if fs != data["fs"] or sig.shape != (1, data["mix"].shape[1]):
                raise BenchError(f"source_{k}.wav: {sig.shape[0]} channel(s) x "
                                 f"{sig.shape[1]} samples at {fs} Hz, expected 1 x "
                                 f"{data['mix'].shape[1]} at {data['fs']} Hz")
            est.append(sig[0])
    except (BenchError, OSError, ValueError, RuntimeError) as exc:  # missing/bad output
        raise BenchError(f"{shlex.join(cmd)}\n  bad output: {exc}") from exc
    est = np.vstack(est)
    if not np.isfinite(est).all():
        raise BenchError(f"{shlex.join(cmd)}\n  output contains NaN/Inf samples")
    return est, report, cmd


def run_fastica(mix, n_src):
    """FastICA on the whole mixture; return (estimates K x N, CPU seconds, n_iter)."""
    ica = FastICA(n_components=n_src, whiten="unit-variance",
                  max_iter=FASTICA_MAX_ITER, random_state=0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)  # n_iter is reported
        t0 = time.process_time()
        est = ica.fit_transform(mix.T).T
        cpu = time.process_time() - t0
    return est, cpu, int(ica.n_iter_)


# ------------------------------------------------------------------------ targets


def check_targets(row):
    """Acceptance checks for one row: list of {"check": description, "pass": bool}."""
    meta, st, ica = row["meta"], row["strebmd"], row["fastica"]
    checks = []
    if meta["mode"] == "linear":
        checks.append(("SI-SDRi >= 25", st["si_sdri_median"] >= 25.0))
    if meta["mode"] == "nonlinear" and meta.get("variant") == "tanh":
        checks.append(("SI-SDRi >= ICA+3",
                       st["si_sdri_median"] >= ica["si_sdri_median"] + 3.0))
        checks.append(("|corr| >= 0.9", st["corr_mean"] >= 0.9))
    if meta["mode"] in ("delayed", "reverb"):  # issue 6 figures (image reference)
        least = {"delayed_frac_k2_16k": 15.0, "delayed_frac_k2_48k": 15.0,
                 "reverb_rt200_k2_16k": 5.0, "reverb_rt200_k3_16k": 3.0}.get(row["set"], 0.0)
        checks.append((f"SI-SDRi >= {least:g}", st["si_sdri_median"] >= least))
    rtf_limit = {"linear_k4_48k": 0.05, "nonlinear_tanh_k2_16k": 0.5,
                 "delayed_frac_k2_48k": 0.1, "reverb_rt200_k2_48k": 0.1,
                 "delayed_frac_k3_16k": 0.1, "reverb_rt200_k3_16k": 0.1}.get(row["set"])
    if rtf_limit is not None:
        checks.append((f"RTF <= {rtf_limit}", st["rtf"] <= rtf_limit))
    return [{"check": d, "pass": bool(ok)} for d, ok in checks]


# ------------------------------------------------------------------------- output


def fmt(x, spec="5.1f"):
    """One number as a table cell (dB values by default)."""
    return format(x, spec)


def per_source(values):
    """Per-source values joined with '/', in reference order."""
    return "/".join(fmt(v) for v in values)


def print_details(row):
    print(f"{row['set']}  (mode {row['meta']['mode']}, M={row['M']}, K={row['K']}, "
          f"fs={row['fs']}, scored from {row['skip_seconds']:g} s)")
    for label in ("strebmd", "fastica"):
        s = row[label]
        if label == "strebmd" and not s["ok"]:
            print(f"  {label:8s} FAILED")
            continue
        print(f"  {label:8s} SI-SDRi {per_source(s['si_sdri'])}  "
              f"SDR {per_source(s['sdr'])}  SIR {per_source(s['sir'])}  "
              f"|corr| {'/'.join(fmt(c, '.3f') for c in s['corr'])}  "
              f"perm {s['perm']}  RTF {s['rtf']:.4f}")
    sys.stdout.flush()


COLUMNS = ["set", "mode", "M", "K", "fs",
           "SI-SDRi/src", "med", "SDR", "SIR", "|corr|", "RTF",
           "ICA med", "SDR", "SIR", "|corr|", "RTF"]


def table_cells(row, with_targets):
    st, ica = row["strebmd"], row["fastica"]
    cells = [row["set"], row["meta"]["mode"], str(row["M"]), str(row["K"]), str(row["fs"])]
    if st["ok"]:
        cells += [per_source(st["si_sdri"]), fmt(st["si_sdri_median"]),
                  fmt(st["sdr_median"]), fmt(st["sir_median"]),
                  fmt(st["corr_mean"], ".3f"), fmt(st["rtf"], ".4f")]
    else:
        cells += ["FAILED"] + ["-"] * 5
    cells += [fmt(ica["si_sdri_median"]), fmt(ica["sdr_median"]), fmt(ica["sir_median"]),
              fmt(ica["corr_mean"], ".3f"), fmt(ica["rtf"], ".4f")]
    if with_targets:
        if not st["ok"]:
            cells.append("FAIL (run failed)")
        elif not row["targets"]:
            cells.append("n/a")
        else:
            failed = [t["check"] for t in row["targets"] if not t["pass"]]
            cells.append("PASS" if not failed else "FAIL (" + "; ".join(failed) + ")")
    return cells


def print_table(rows, with_targets):
    header = COLUMNS + (["targets"] if with_targets else [])
    body = [table_cells(r, with_targets) for r in rows]
    widths = [max(len(line[i]) for line in [header] + body) for i in range(len(header))]
    left = {0, 1, len(header) - 1} if with_targets else {0, 1}

    def line(cells):
        return "  ".join(c.ljust(w) if i in left else c.rjust(w)
                         for i, (c, w) in enumerate(zip(cells, widths))).rstrip()

    print()
    print(line(header))
    print("-" * len(line(header)))
    for cells in body:
        print(line(cells))
    print("\nstrebmd columns: SI-SDRi per source and median (dB), BSS-eval SDR/SIR median "
          "(dB), mean |corr|, RTF (worker CPU s / audio s); ICA: FastICA, same metrics, "
          "RTF = process CPU s / audio s.")


def finite_or_none(obj):
    """Replace NaN/Inf (not valid JSON) by None, recursively."""
    if isinstance(obj, float):
        return obj if math.isfinite(obj) else None
    if isinstance(obj, dict):
        return {k: finite_or_none(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [finite_or_none(v) for v in obj]
    return obj


# --------------------------------------------------------------------------- main


def bench_set(args, set_dir, work_dir):
    data = load_set(set_dir)
    meta, mix, refs, fs = data["meta"], data["mix"], data["refs"], data["fs"]
    n_src = meta["n_src"]
    start = int(round(args.skip * fs))
    if start >= mix.shape[1]:
        raise BenchError(f"--skip {args.skip} s is longer than the set")
    audio_seconds = mix.shape[1] / fs
    row = {"set": data["name"], "meta": meta, "M": mix.shape[0], "K": n_src, "fs": fs,
           "n_samples": mix.shape[1], "skip_seconds": args.skip}

    ica_est, ica_cpu, ica_iter = run_fastica(mix, n_src)
    row["fastica"] = {**score(ica_est, refs, mix[0], start), "cpu_seconds": ica_cpu,
                      "rtf": ica_cpu / audio_seconds, "n_iter": ica_iter,
                      "converged": ica_iter < FASTICA_MAX_ITER}

    out_dir = work_dir / data["name"]
    out_dir.mkdir(parents=True, exist_ok=True)
    try:
        est, report, cmd = run_strebmd(args, data, out_dir)
    except BenchError as exc:
        print(f"strebmd run failed on {data['name']}: {exc}", file=sys.stderr)
        row["strebmd"] = {"ok": False, "error": str(exc)}
        return row
    row["strebmd"] = {"ok": True, "command": cmd, "report": report,
                      "rtf": report["worker_cpu_seconds"] / report["audio_seconds"],
                      **score(est, refs, mix[0], start)}
    row["targets"] = check_targets(row)
    return row


def parse_args(argv):
    p = argparse.ArgumentParser(
        description="Benchmark strebmd separation quality and CPU cost against FastICA.")
    p.add_argument("--strebmd", default="./build/daemon/strebmd",
                   help="separator binary (default: %(default)s)")
    p.add_argument("--data", type=Path,
                   default=Path(os.environ.get("STREBM_SHARED_DATA", "/work/shared/data")),
                   help="data directory (default: $STREBM_SHARED_DATA or /work/shared/data)")
    p.add_argument("--sets", help="comma-separated set names (overrides --kinds)")
    p.add_argument("--kinds", default=",".join(DEFAULT_KINDS),
                   help="comma-separated modes to select from %s (default: %%(default)s)"
                   % ",".join(ALL_KINDS))
    p.add_argument("--mode", help="--mode passed to strebmd (default: the set's mode)")
    p.add_argument("--extra", default="", help="extra strebmd arguments, shell-quoted")
    p.add_argument("--skip", type=float, default=1.0,
                   help="seconds at the start not scored (default: %(default)s)")
    p.add_argument("--timeout", type=float, default=600.0,
                   help="per-run strebmd timeout in seconds (default: %(default)s)")
    p.add_argument("--keep-dir", type=Path,
                   help="keep strebmd outputs in DIR/<set>/ (default: a temporary dir)")
    p.add_argument("--json", type=Path, metavar="OUT", help="write all numbers to OUT")
    p.add_argument("--targets", action="store_true",
                   help="check the acceptance targets and print PASS/FAIL per row")
    args = p.parse_args(argv)
    kinds = [k for k in args.kinds.split(",") if k]
    bad = sorted(set(kinds) - set(ALL_KINDS))
    if bad:
        p.error(f"unknown kind(s): {', '.join(bad)}")
    args.kinds = kinds
    args.sets = [s for s in (args.sets or "").split(",") if s]
    if args.skip < 0:
        p.error("--skip must be >= 0")
    return args


def main(argv=None):
    args = parse_args(argv)
    try:
        set_dirs = select_sets(args.data, args.sets, args.kinds)
    except (BenchError, OSError) as exc:
        print(f"bench: {exc}", file=sys.stderr)
        return 1
    if not set_dirs:
        print(f"bench: no sets selected in {args.data}", file=sys.stderr)
        return 1

    rows, load_failed = [], False
    with tempfile.TemporaryDirectory(prefix="strebm-bench-") as tmp:
        work_dir = args.keep_dir or Path(tmp)
        for set_dir in set_dirs:
            try:
                row = bench_set(args, set_dir, work_dir)
            except (BenchError, OSError, KeyError, ValueError) as exc:
                print(f"bench: {set_dir.name}: {exc}", file=sys.stderr)
                load_failed = True
                continue
            print_details(row)
            rows.append(row)

    if rows:
        print_table(rows, args.targets)
    if args.json:
        out = {"strebmd": args.strebmd, "extra": args.extra, "mode": args.mode,
               "skip_seconds": args.skip, "sets": rows}
        args.json.write_text(json.dumps(finite_or_none(out), indent=1) + "\n")

    if load_failed or any(not r["strebmd"]["ok"] for r in rows):
        return 1
    if args.targets and any(not t["pass"] for r in rows for t in r.get("targets", [])):
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
