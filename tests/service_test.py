#!/usr/bin/python3
# SPDX-License-Identifier: MIT
"""Integration test of strebmd as a service on a JACK dummy server:
sd_notify (READY after the ports exist, STATUS, WATCHDOG cadence and its
stop when the worker stalls, STOPPING on SIGTERM), OSC through strebmctl
against the live daemon (pinned length-scale, mode switch, flood), SIGHUP
reload (valid and invalid), every bad-configuration class (exit before
READY with file:line), and SIGTERM in file mode (complete output files).

    service_test.py STREBMD STREBMCTL PLAYER SHARED_DATA
"""
import os
import shutil
import signal
import socket
import stat
import struct
import subprocess
import sys
import tempfile
import threading
import time

STREBMD, CTL, PLAYER, DATA = sys.argv[1:5]
TMP = tempfile.mkdtemp(prefix="strebm-svc-")
SRV = "strebmtest_svc"  # fixed: a killed server's registry slot is reclaimed by name
ENV = dict(os.environ, JACK_DEFAULT_SERVER=SRV, JACK_NO_AUDIO_RESERVATION="1")
fails = 0


def separation_blocks(rec, *blocks):
    """Median SI-SDR (dB, best permutation) of the recorded outputs against
    the looped linear_k2_16k sources over each (start s, end s) block of the
    recording. The player aligns the recording with what it played, but a
    server xrun (a dummy server on a loaded machine) drops a cycle and shifts
    the rest: each block is re-aligned first, by the lag (within +-0.25 s)
    that best matches the outputs' sum to the mixture's reference channel
    (projection back makes the images add up to it)."""
    import numpy as np
    import soundfile as sf
    sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
    from align_score import best_lag
    try:
        ys = [sf.read(os.path.join(rec, "source_%d.wav" % (k + 1)))[0] for k in range(2)]
        refs = [sf.read(os.path.join(DATA, "linear_k2_16k/refs/src%d.wav" % k))[0]
                for k in range(2)]
        mix0 = sf.read(os.path.join(DATA, "linear_k2_16k/mix.wav"), always_2d=True)[0][:, 0]
    except (OSError, RuntimeError):
        return [None] * len(blocks)
    fs = 16000

    def sisdr(r, y):
        a = np.dot(y, r) / max(np.dot(r, r), 1e-20)
        e = y - a * r
        return 10 * np.log10(max(np.dot(a * r, a * r), 1e-20) / max(np.dot(e, e), 1e-20))

    out = []
    for b0, b1 in blocks:
        i0, i1 = int(b0 * fs), int(b1 * fs)
        if i0 < 0 or i1 - i0 < fs // 2 or i1 > min(len(y) for y in ys):
            out.append(None)
            continue
        L = fs // 4
        s = ys[0][i0:i1] + ys[1][i0:i1]
        lag = best_lag(mix0[np.arange(i0 - L, i1 + L) % len(mix0)], s, L)
        idx = np.arange(i0, i1) + lag
        r = [ref[idx % len(ref)] for ref in refs]
        y = [yk[i0:i1] for yk in ys]
        best = max(((sisdr(r[0], y[p]), sisdr(r[1], y[1 - p])) for p in (0, 1)), key=sum)
        out.append(round(float(np.median(best)), 1))
    return out


def ok(cond, what):
    global fails
    print(("ok   - " if cond else "FAIL - ") + what, flush=True)
    if not cond:
        fails += 1
    return cond


def free_port():
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.bind(("127.0.0.1", 0))
    p = s.getsockname()[1]
    s.close()
    return p


class Notify:
    """An AF_UNIX datagram socket standing in for systemd's."""

    def __init__(self, path):
        self.path = path
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.sock.bind(path)
        self.sock.settimeout(0.2)
        self.msgs = []  # (time, line)
        self.lock = threading.Lock()
        self.run = True
        self.t = threading.Thread(target=self.loop, daemon=True)
        self.t.start()

    def loop(self):
        while self.run:
            try:
                data = self.sock.recv(4096)
            except socket.timeout:
                continue
            now = time.monotonic()
            with self.lock:
                for line in data.decode(errors="replace").split("\n"):
                    if line:
                        self.msgs.append((now, line))

    def wait_for(self, prefix, timeout):
        end = time.monotonic() + timeout
        while time.monotonic() < end:
            with self.lock:
                for t, m in self.msgs:
                    if m.startswith(prefix):
                        return t
            time.sleep(0.02)
        return None

    def times(self, prefix, since=0.0):
        with self.lock:
            return [t for t, m in self.msgs if m.startswith(prefix) and t >= since]

    def close(self):
        self.run = False
        self.t.join()
        self.sock.close()


def osc_enc(path, *args):
    def pad(b):
        b += b"\0"
        return b + b"\0" * ((4 - len(b) % 4) % 4)
    tags, data = ",", b""
    for a in args:
        if isinstance(a, int):
            tags += "i"
            data += struct.pack(">i", a)
        else:
            tags += "s"
            data += pad(a.encode())
    return pad(path.encode()) + pad(tags.encode()) + data

def osc_dec(b):
    def rd(i):
        j = b.index(b"\0", i)
        return b[i:j].decode(), (j + 4) & ~3
    path, i = rd(0)
    tags, i = rd(i)
    args = []
    for t in tags[1:]:
        if t == "s":
            v, i = rd(i)
        elif t == "i":
            v = struct.unpack(">i", b[i:i + 4])[0]
            i += 4
        elif t == "f":
            v = struct.unpack(">f", b[i:i + 4])[0]
            i += 4
        else:
            break
        args.append(v)
    return path, args



def ctl(port, *args, timeout=3):
    r = subprocess.run([CTL, "--port", str(port)] + list(args), capture_output=True,
                       text=True, timeout=timeout + 5)
    return r.returncode, r.stdout + r.stderr


def jack_ports():
    r = subprocess.run(["jack_lsp"], capture_output=True, text=True, env=ENV)
    return r.stdout.split()


def status_of(port):
    rc, out = ctl(port, "status")
    return out if rc == 0 else ""


jackd = subprocess.Popen(["jackd", "-n", SRV, "-d", "dummy", "-r", "16000", "-p", "256"],
                         stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=ENV)
procs = []
try:
    for _ in range(100):
        if subprocess.run(["jack_lsp"], capture_output=True, env=ENV).returncode == 0:
            break
        time.sleep(0.1)

    # ---- 1. a daemon under a stand-in systemd
    port = free_port()
    conf = os.path.join(TMP, "strebmd.conf")
    with open(conf, "w") as f:
        f.write("[audio]\nchannels = 2\n[engine]\nkernel = rbf\n[osc]\nport = %d\n"
                "[daemon]\nstatus_interval = 1\n" % port)
    notify = Notify(os.path.join(TMP, "notify.sock"))
    env = dict(ENV, NOTIFY_SOCKET=notify.path, WATCHDOG_USEC="2000000",
               STREBMD_TEST_HOOKS="1")
    log = open(os.path.join(TMP, "daemon.log"), "w")
    t0 = time.monotonic()
    d = subprocess.Popen([STREBMD, "--backend", "jack", "--config", conf], stdout=log,
                         stderr=log, env=env)
    procs.append(d)
    t_ready = notify.wait_for("READY=1", 10)
    ports_at_ready = jack_ports()
    ok(t_ready is not None, "READY=1 arrives (%.2f s after start)" % ((t_ready or t0) - t0))
    ok("strebmd:source_1" in ports_at_ready and "strebmd:in_2" in ports_at_ready,
       "the ports exist when READY=1 arrives")
    rc, out = ctl(port, "ping")
    ok(rc == 0, "the OSC port answers once READY=1 is sent: " + out.strip())
    time.sleep(3)
    ok(len(notify.times("STATUS=")) >= 2, "STATUS= lines arrive: %s" %
       ([m for _, m in notify.msgs if m.startswith("STATUS=")][-1:]))
    pings = notify.times("WATCHDOG=1", t_ready or 0)
    gaps = [b - a for a, b in zip(pings, pings[1:])]
    ok(len(pings) >= 3 and max(gaps) <= 1.05,
       "WATCHDOG=1 pings at WATCHDOG_USEC=2 s: %d pings, largest gap %.2f s (<= half)"
       % (len(pings), max(gaps) if gaps else -1))

    # ---- 2. OSC against the running daemon, audio playing
    player = subprocess.Popen([PLAYER, "--input", os.path.join(DATA, "linear_k2_16k/mix.wav"),
                               "--sources", "2", "--loops", "3", "--out-dir",
                               os.path.join(TMP, "rec")], stdout=subprocess.DEVNULL,
                              stderr=subprocess.DEVNULL, env=ENV)
    procs.append(player)
    # the recording's time 0 is when the player starts playing: 0.3 s after
    # it has connected to strebmd (slow to come in a sanitizer build), not
    # when it was launched
    t_player = time.monotonic()
    for _ in range(300):
        try:
            r = subprocess.run(["jack_lsp", "-c", "strebm-player:out_1"], capture_output=True,
                               text=True, env=ENV, timeout=5)
            if "strebmd:in_1" in r.stdout:
                t_player = time.monotonic() + 0.3
                break
        except subprocess.TimeoutExpired:
            pass
        time.sleep(0.05)
    time.sleep(1)
    rc, out = ctl(port, "lengthscale", "1", "5")
    ok(rc == 0, "lengthscale 1 5 accepted")
    time.sleep(0.5)
    rc, q1 = ctl(port, "lengthscale", "1")
    time.sleep(2.5)
    rc2, q2 = ctl(port, "lengthscale", "1")
    ok(rc == 0 and rc2 == 0 and "5" in q1 and q1 == q2,
       "a pinned length-scale shows and stays put while audio runs: %r then %r"
       % (q1.strip(), q2.strip()))
    rc, out = ctl(port, "lengthscale", "1", "-3")
    ok(rc != 0 and "error" in out.lower(), "a negative length-scale is refused: " + out.strip())
    # a mode switch shows in the output: the recording's separation before
    # and after a switch to nonlinear mode (which on this linear mixture
    # separates less well: 17 dB in file mode against 34), scored below
    t_switch = time.monotonic() - t_player
    rc, out = ctl(port, "mode", "nonlinear")
    time.sleep(4.0)
    ok("nonlinear" in status_of(port), "mode switch shows in the status")
    t_back = time.monotonic() - t_player
    ctl(port, "mode", "linear")
    # flood: 10^5 valid gain messages, the last one -7 dB
    before = status_of(port)

    def counters(s):
        out = {}
        for key in ("xruns", "underruns"):
            for line in s.splitlines():
                line = line.strip().replace(":", "")
                parts = line.split()
                if key in parts:
                    i = parts.index(key)
                    if i + 1 < len(parts) and parts[i + 1].isdigit():
                        out[key] = int(parts[i + 1])
        return out

    def osc_msg(path, f):
        p = path.encode() + b"\0"
        p += b"\0" * ((4 - len(p) % 4) % 4)
        return p + b",f\0\0" + struct.pack(">f", f)

    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 1 << 20)
    n = 100000
    for i in range(n):
        s.sendto(osc_msg("/strebm/source/2/gain", -1.0 - (i % 5)), ("127.0.0.1", port))
        if i % 200 == 199:
            time.sleep(0.001)
    s.sendto(osc_msg("/strebm/source/2/gain", -7.0), ("127.0.0.1", port))
    time.sleep(1.0)
    rc, g = ctl(port, "gain", "2")
    after = status_of(port)
    cb, ca = counters(before), counters(after)
    ok(rc == 0 and "-7" in g, "after a flood of %d messages the last value is in force: %s"
       % (n, g.strip()))
    ok(cb and cb.get("underruns") == ca.get("underruns"),
       "the flood changed no underrun count (%s -> %s)" % (cb, ca))
    ok(ctl(port, "ping")[0] == 0, "strebmd answers /strebm/ping after the flood")
    player.wait(timeout=60)
    lin, non = separation_blocks(os.path.join(TMP, "rec"), (t_switch - 2.5, t_switch - 0.5),
                                 (t_switch + 2.0, t_back - 0.5))
    ok(lin is not None and non is not None and lin > 20 and lin - non > 6,
       "mode switch shows in the output: SI-SDR %s dB (linear) -> %s dB (nonlinear)"
       % (lin, non))
    st = os.path.join(TMP, "show.strebm")
    rc, out = ctl(port, "save", st)
    ok(rc == 0 and os.path.getsize(st) > 0, "save: the model state is written (%s)" % out.strip())
    rc, out = ctl(port, "load", st)
    ok(rc == 0, "load: the state saved is taken back (%s)" % out.strip())
    with open(os.path.join(TMP, "junk.strebm"), "wb") as f:
        f.write(b"not a state" * 10)
    rc, out = ctl(port, "load", os.path.join(TMP, "junk.strebm"))
    ok(rc != 0 and "error" in out.lower() and ctl(port, "ping")[0] == 0,
       "load of a corrupt file is refused, the daemon answers: " + out.strip())
    fifo = os.path.join(TMP, "fifo")
    os.mkfifo(fifo)
    t1 = time.monotonic()
    rc, out = ctl(port, "load", fifo)
    ok(rc != 0 and time.monotonic() - t1 < 2.5 and ctl(port, "ping")[0] == 0,
       "load of a FIFO is refused at once, the daemon answers: " + out.strip())
    rc, out = ctl(port, "save", fifo)
    ok(rc != 0 and stat.S_ISFIFO(os.lstat(fifo).st_mode),
       "save never replaces a FIFO (or device, link): " + out.strip())
    # a link to a state is followed (the link stays, its target is written);
    # a link to anything else, or a file that is not a state, is never replaced
    os.symlink(st, os.path.join(TMP, "link"))
    before = os.stat(st).st_mtime_ns
    time.sleep(0.02)
    rc, out = ctl(port, "save", os.path.join(TMP, "link"))
    ok(rc == 0 and os.path.islink(os.path.join(TMP, "link")) and os.stat(st).st_mtime_ns != before,
       "save through a symbolic link to a state writes its target, keeps the link: " + out.strip())
    notes = os.path.join(TMP, "notes.txt")
    with open(notes, "w") as f:
        f.write("set list\n")
    os.symlink(notes, os.path.join(TMP, "link2"))
    for target in (notes, os.path.join(TMP, "link2")):
        rc, out = ctl(port, "save", target)
        ok(rc != 0 and open(notes).read() == "set list\n" and "not a strebmd state" in out,
           "save never replaces a file that is not a state: " + out.strip())

    # ---- 3. SIGHUP: a valid changed file, then an invalid one
    with open(conf, "w") as f:
        f.write("[audio]\nchannels = 2\n[engine]\nkernel = matern32\n[osc]\nport = %d\n"
                "[daemon]\nstatus_interval = 1\n" % port)
    d.send_signal(signal.SIGHUP)
    time.sleep(1.0)
    rc, k = ctl(port, "kernel", "1")
    ok(rc == 0 and "matern32" in k, "SIGHUP with a changed file: kernel now %s" % k.strip())
    with open(conf, "w") as f:
        f.write("[audio]\nchannels = 2\n[engine]\nkernel = matern52\nwindoww = 3\n[osc]\n"
                "port = %d\n" % port)
    d.send_signal(signal.SIGHUP)
    time.sleep(1.0)
    rc, k = ctl(port, "kernel", "1")
    logtext = open(os.path.join(TMP, "daemon.log")).read()
    ok(rc == 0 and "matern32" in k and "reload rejected" in logtext and
       "strebmd.conf:5" in logtext,
       "SIGHUP with an invalid file: old configuration kept (%s), error logged with file:line"
       % k.strip())
    ok(ctl(port, "ping")[0] == 0 and d.poll() is None, "the daemon still answers after it")
    with open(conf, "w") as f:
        f.write("[audio]\nchannels = 2\n[engine]\nkernel = matern52\n[osc]\nport = %d\n"
                "allow = 10.0.0.0/33\n" % port)
    d.send_signal(signal.SIGHUP)
    time.sleep(1.0)
    rc, k = ctl(port, "kernel", "1")
    logtext = open(os.path.join(TMP, "daemon.log")).read()
    ok(rc == 0 and "matern32" in k and logtext.count("reload rejected") >= 2 and
       "strebmd.conf:7" in logtext,
       "SIGHUP with a bad osc.allow: the whole reload is rejected (kernel still %s)" % k.strip())

    # ---- 4. watchdog stops while the worker is stalled (test hook), resumes after
    d.send_signal(signal.SIGUSR1)
    t_stall = time.monotonic()
    time.sleep(3)
    during = notify.times("WATCHDOG=1", t_stall + 0.6)
    ok(len(during) == 0, "no WATCHDOG=1 while the worker is stalled (%d pings)" % len(during))
    d.send_signal(signal.SIGUSR1)
    t_rel = time.monotonic()
    time.sleep(2)
    ok(len(notify.times("WATCHDOG=1", t_rel)) >= 1, "pings resume when the worker does")

    # ---- 5. SIGTERM: STOPPING=1, exit 0 within 2 s
    t_term = time.monotonic()
    d.send_signal(signal.SIGTERM)
    try:
        rc = d.wait(timeout=2.5)
    except subprocess.TimeoutExpired:
        rc = None
    dt = time.monotonic() - t_term
    ok(rc == 0 and dt <= 2.0, "SIGTERM: exit %s after %.2f s" % (rc, dt))
    ok(notify.wait_for("STOPPING=1", 0.5) is not None, "STOPPING=1 arrives on SIGTERM")
    ok("strebmd:source_1" not in jack_ports(), "its ports are gone")
    notify.close()

    # ---- 5b. under a session manager (NSM): announce, open, save, quit
    nsm = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    nsm.bind(("127.0.0.1", 0))
    nsm.settimeout(10)
    sess = os.path.join(TMP, "session")
    os.mkdir(sess)
    d = subprocess.Popen([STREBMD, "--backend", "jack", "--channels", "2", "--set", "osc.port=0"],
                         stdout=log, stderr=log,
                         env=dict(ENV, NSM_URL="osc.udp://127.0.0.1:%d/" % nsm.getsockname()[1]))
    procs.append(d)
    try:
        data, peer = nsm.recvfrom(4096)
        path, args = osc_dec(data)
        ok(path == "/nsm/server/announce" and args[0] == "strebmd" and args[-1] == d.pid,
           "NSM: announce arrives (%s)" % args)
        nsm.sendto(osc_enc("/reply", "/nsm/server/announce", "welcome", "fake-nsm", ":"), peer)
        nsm.sendto(osc_enc("/nsm/client/open", os.path.join(sess, "strebmd.nABC"), "strebmd",
                           "strebmd.nABC"), peer)
        path, args = osc_dec(nsm.recvfrom(4096)[0])
        ok(path == "/reply" and args[:2] == ["/nsm/client/open", "OK"], "NSM: open answered OK")
        for _ in range(50):
            if "strebmd.nABC:source_1" in jack_ports():
                break
            time.sleep(0.1)
        ok("strebmd.nABC:source_1" in jack_ports(), "NSM: the JACK client takes the client id")
        time.sleep(0.5)
        nsm.sendto(osc_enc("/nsm/client/save"), peer)
        path, args = osc_dec(nsm.recvfrom(4096)[0])
        ok(path == "/reply" and args[:2] == ["/nsm/client/save", "OK"] and
           os.path.exists(os.path.join(sess, "strebmd.nABC.strebm")),
           "NSM: save answered OK, the state file is in the session directory")
    except (socket.timeout, ValueError, IndexError) as e:
        ok(False, "NSM exchange: %r" % e)
    d.send_signal(signal.SIGTERM)
    ok(d.wait(timeout=5) == 0, "NSM: quit (SIGTERM) exits 0")
    nsm.close()

    # ---- 5c. a reload asking for a mode the window cannot run: said at the reload
    port2 = free_port()
    conf2 = os.path.join(TMP, "odd.conf")
    with open(conf2, "w") as f:
        f.write("[audio]\nchannels = 2\n[engine]\nwindow = 1023\n[osc]\nport = %d\n" % port2)
    log2 = os.path.join(TMP, "odd.log")
    with open(log2, "w") as lf:
        d = subprocess.Popen([STREBMD, "--backend", "jack", "--config", conf2], stdout=lf, stderr=lf,
                             env=ENV)
    procs.append(d)
    for _ in range(50):
        if ctl(port2, "ping")[0] == 0:
            break
        time.sleep(0.1)
    with open(conf2, "w") as f:
        f.write("[audio]\nchannels = 2\n[engine]\nwindow = 1023\nmode = convolutive\n[osc]\n"
                "port = %d\n" % port2)
    d.send_signal(signal.SIGHUP)
    time.sleep(1.0)
    rc, m = ctl(port2, "mode")
    text = open(log2).read()
    ok(rc == 0 and "linear" in m and "the running mode is kept" in text and
       "reloaded (0 keys changed)" in text and "refused" not in text,
       "SIGHUP asking for convolutive with an odd window: refused at the reload, linear kept "
       "(%s; %s)" % (m.strip(), " | ".join(l for l in text.splitlines() if "reload" in l or "mode" in l)))
    d.send_signal(signal.SIGTERM)
    ok(d.wait(timeout=5) == 0, "that daemon exits 0")

    # ---- 6. every bad configuration exits non-zero before READY=1, with file:line
    bad = {
        "unknown section": ("[enginee]\nmode = linear\n", "bad.conf:1"),
        "unknown key": ("[engine]\n\nmodee = linear\n", "bad.conf:3"),
        "wrong type": ("[engine]\ncontext = many\n", "bad.conf:2"),
        "out of range": ("[engine]\nbands = 0\n", "bad.conf:2"),
        "K > M": ("[audio]\nchannels = 2\n[engine]\nsources = 3\n", "bad.conf:4"),
        "invalid UTF-8": (b"[engine]\n# caf\xe9\nmode = linear\n", "bad.conf:2"),
    }
    for name, (text, where) in bad.items():
        path = os.path.join(TMP, "bad.conf")
        with open(path, "wb") as f:
            f.write(text if isinstance(text, bytes) else text.encode())
        nt = Notify(os.path.join(TMP, "n-%d.sock" % len(name)))
        r = subprocess.run([STREBMD, "--backend", "jack", "--config", path], capture_output=True,
                           text=True, timeout=20,
                           env=dict(ENV, NOTIFY_SOCKET=nt.path))
        time.sleep(0.1)
        ok(r.returncode != 0 and where in r.stderr and not nt.times("READY=1"),
           "bad config (%s): exit %d before READY=1: %s" % (name, r.returncode,
                                                             r.stderr.strip()))
        nt.close()
    r = subprocess.run([STREBMD, "--backend", "jack", "--config", os.path.join(TMP, "none.conf")],
                       capture_output=True, text=True, timeout=20, env=ENV)
    ok(r.returncode != 0 and "none.conf" in r.stderr, "missing config file: " + r.stderr.strip())
    with open(conf, "w") as f:
        f.write("[audio]\nchannels = 2\n[engine]\nkernel = matern52\nwindoww = 3\n")
    r = subprocess.run([STREBMD, "--check-config", "--config", conf], capture_output=True,
                       text=True, env=ENV)
    ok(r.returncode != 0 and "strebmd.conf:5" in r.stderr,
       "--check-config names the bad line: " + r.stderr.strip())

    # ---- 7. SIGTERM during file mode leaves complete, readable files
    import numpy as np
    import soundfile as sf
    x, fs = sf.read(os.path.join(DATA, "linear_k4_48k/mix.wav"))
    long = os.path.join(TMP, "long.wav")
    sf.write(long, np.tile(x, (20, 1)), fs, subtype="FLOAT")
    out = os.path.join(TMP, "fileout")
    p = subprocess.Popen([STREBMD, "-q", "--input", long, "--output-dir", out, "--report",
                          os.path.join(TMP, "rep.json")], stderr=subprocess.PIPE, text=True)
    time.sleep(1.0)
    p.send_signal(signal.SIGTERM)
    rc = p.wait(timeout=10)
    lens = []
    try:
        for k in range(1, 5):
            y, _ = sf.read(os.path.join(out, "source_%d.wav" % k))
            lens.append(len(y))
    except Exception as e:  # noqa: BLE001
        lens.append(str(e))
    import json
    rep = json.load(open(os.path.join(TMP, "rep.json")))
    ok(rc == 0 and len(set(lens)) == 1 and isinstance(lens[0], int) and
       0 < lens[0] < 20 * len(x) and rep.get("interrupted") is True,
       "SIGTERM in file mode: exit %d, 4 readable files of %s frames, report says interrupted"
       % (rc, lens[0]))
finally:
    for pr in procs:
        if pr.poll() is None:
            pr.kill()
    jackd.kill()
    jackd.wait()
    shutil.rmtree(TMP, ignore_errors=True)

print("%d failure(s)" % fails)
sys.exit(1 if fails else 0)
