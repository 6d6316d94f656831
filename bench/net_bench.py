#!/usr/bin/env python3
"""virtio-net: kvmkit vs QEMU with the same backend and the same guest, in one run.

Backends: `user` (kvmkit --net user / QEMU -netdev user, both libslirp) and
`tap` (a TAP device inside a network namespace this script creates and
deletes; kvmkit --net tap / QEMU -netdev tap), plus `vhost` (tap with
vhost-net) when /dev/vhost-net exists.  QEMU runs `-M pc` with a modern-only
virtio-net-pci device.  Runs are interleaved (kvmkit, QEMU, kvmkit, ...).

(a) Test guest (build/tests/guests/testguest.elf, `bench=net:...`,
    tests/guests/net_user.inc): its polling virtio-net driver pumps raw UDP
    frames, one synchronous send per frame, so the VMM's path per frame
    dominates what the host does:
      tx    the guest sends COUNT datagrams to the host (user: 10.0.2.2:PORT =
            the host's 127.0.0.1:PORT; tap: the namespace's 10.0.2.2); the
            host counts them; rate = received / (last - first arrival);
      rx    the host sends COUNT datagrams to the guest (user: a udp host
            forward; tap: straight to 10.0.2.15) as fast as it can; the guest
            counts them and times first to last with its TSC;
      rr    request/response: the host sends one datagram, the guest echoes
            it, COUNT times; the host times each round trip.
    Host CPU per frame: user+system CPU time of the VMM process
    (/proc/PID/stat, 10 ms ticks) from the guest's "ready" line to its
    result line, divided by the frames that crossed the NIC.  On PVM hosts the vCPU
    thread's time includes the emulated guest's own work.
(b) With --linux: the default Linux guest ($KVMKIT_CACHE/guest) with its
    virtio_net driver and guest/tools/nettool.c as a TCP server; the host
    runs nettool (built from the same source) as the client over a host
    forward (user) or to 10.0.2.15 (tap): stream host->guest, guest->host,
    and a ping-pong.  QEMU's user network runs with restrict=on there.

Only the Python 3 standard library; helpers come from bench/vmm_bench.py.
Nothing here asserts anything about timings.
"""

import argparse
import json
import os
import re
import select
import shlex
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import benchlib as bl  # noqa: E402  (shared helpers: machine_info, kill_group, find_linux_guest, ...)
from benchlib import proc_stat_cpu_s as process_cpu_s  # noqa: E402  (whole-process CPU)

REPO = bl.REPO
GUEST_IP, HOST_IP = "10.0.2.15", "10.0.2.2"
GUEST_PORT = 5555


# ------------------------------------------------------------ host peer ---
# The host side of a test-guest run.  It runs in this process for `user` and
# inside the namespace (`ip netns exec NS python3 net_bench.py --peer ...`)
# for tap; it prints one JSON line with what it measured.
def peer_main(spec):
    p = json.loads(spec)
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4 << 20)
    out = {}
    if p["mode"] == "tx":
        s.bind((p["bind"], p["port"]))
        print("PEER-READY", flush=True)
        s.settimeout(p["timeout"])
        n = nbytes = 0
        first = last = None
        try:
            while n < p["count"]:
                d = s.recv(65536)
                t = time.monotonic()
                first = first or t
                last = t
                n += 1
                nbytes += len(d)
                s.settimeout(3)
        except socket.timeout:
            pass
        out = {"received": n, "bytes": nbytes, "secs": (last - first) if first else None}
    elif p["mode"] == "rx":
        print("PEER-READY", flush=True)
        data = bytes(p["size"])
        t0 = time.monotonic()
        for _ in range(p["count"]):
            s.sendto(data, (p["dst"], p["port"]))
        out = {"sent": p["count"], "send_secs": time.monotonic() - t0}
    elif p["mode"] == "rr":
        print("PEER-READY", flush=True)
        s.settimeout(1.0)
        data = bytes(p["size"])
        rtts, lost = [], 0
        for i in range(p["count"]):
            t0 = time.monotonic()
            s.sendto(data, (p["dst"], p["port"]))
            try:
                s.recv(65536)
                rtts.append(time.monotonic() - t0)
            except socket.timeout:
                lost += 1
        out = {"rtts": rtts, "lost": lost}
    print(json.dumps(out), flush=True)
    return 0


def start_peer(spec, prefix):
    argv = list(prefix) + [sys.executable, os.path.abspath(__file__), "--peer", json.dumps(spec)]
    proc = subprocess.Popen(argv, stdout=subprocess.PIPE, text=True)
    line = proc.stdout.readline()
    if "PEER-READY" not in line:
        proc.kill()
        raise RuntimeError(f"peer did not start: {line!r}")
    return proc


def finish_peer(proc, timeout):
    try:
        out, _ = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        out, _ = proc.communicate()
    for l in out.splitlines()[::-1]:
        if l.startswith("{"):
            return json.loads(l)
    return {}


# ---------------------------------------------------------- environment ---
class Netns:
    """A network namespace with one tap (10.0.2.2/24); deleted at close."""

    def __init__(self, tag):
        self.name = f"kvmkit-nb-{os.getpid()}-{tag}"
        self.tap = "nbtap0"
        subprocess.run(["ip", "netns", "add", self.name], check=True)
        try:
            self.run("ip link set lo up")
            self.run(f"ip tuntap add dev {self.tap} mode tap")
            self.run(f"ip addr add {HOST_IP}/24 dev {self.tap}")
            self.run(f"ip link set {self.tap} up")
        except subprocess.CalledProcessError:
            self.close()
            raise

    def run(self, cmd):
        subprocess.run(["ip", "netns", "exec", self.name, "sh", "-c", cmd], check=True,
                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)

    def prefix(self):
        return ["ip", "netns", "exec", self.name]

    def close(self):
        subprocess.run(["ip", "netns", "del", self.name], stderr=subprocess.DEVNULL)


class Console:
    """A VMM process and its console lines, read without blocking."""

    def __init__(self, argv):
        self.t0 = time.monotonic()
        self.proc = subprocess.Popen(argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                     stderr=subprocess.PIPE, start_new_session=True)
        os.set_blocking(self.proc.stdout.fileno(), False)
        os.set_blocking(self.proc.stderr.fileno(), False)
        self.buf = b""
        self.err = b""
        self.lines = []

    def _pump(self, wait):
        fds = [self.proc.stdout.fileno(), self.proc.stderr.fileno()]
        rd, _, _ = select.select(fds, [], [], wait)
        for fd in rd:
            try:
                d = os.read(fd, 65536)
            except BlockingIOError:
                continue
            if fd == fds[1]:
                self.err += d
                continue
            self.buf += d
            while b"\n" in self.buf:
                l, self.buf = self.buf.split(b"\n", 1)
                self.lines.append(l.decode("utf-8", "replace").rstrip("\r"))

    def wait_line(self, regex, timeout, start=0):
        """(index, match) of the first line at or after `start` matching regex, or (None, None)."""
        rx = re.compile(regex)
        deadline = time.monotonic() + timeout
        i = start
        while True:
            while i < len(self.lines):
                m = rx.search(self.lines[i])
                if m:
                    return i, m
                i += 1
            if time.monotonic() > deadline or self.proc.poll() is not None:
                self._pump(0)
                if i >= len(self.lines):
                    return None, None
                continue
            self._pump(0.1)

    def send(self, text):
        self.proc.stdin.write(text.encode())
        self.proc.stdin.flush()

    def stop(self):
        bl.kill_group(self.proc, signal.SIGTERM)
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            bl.kill_group(self.proc)
            self.proc.wait()

    def tail(self):
        return " | ".join(self.lines[-5:]) + " || " + self.err.decode("utf-8", "replace")[-300:]


# ------------------------------------------------------------ commands ---
class Commands:
    def __init__(self, a):
        self.a = a

    def net_args(self, vmm, backend, env):
        """The NIC options for `vmm` with `backend`; env has ports / the tap name."""
        if vmm == "kvmkit":
            if backend == "user":
                fwd = "".join(f",hostfwd={f}" for f in env.get("hostfwd", []))
                return ["--net", "user" + fwd]
            return ["--net", f"tap,ifname={env['tap']}" + (",vhost=on" if backend == "vhost" else "")]
        if backend == "user":
            fwd = "".join(f",hostfwd={f}" for f in env.get("hostfwd", []))
            restrict = ",restrict=on" if env.get("restrict") else ""
            nd = f"user,id=n0,net=10.0.2.0/24{restrict}{fwd}"
        else:
            nd = f"tap,id=n0,ifname={env['tap']},script=no,downscript=no" + (",vhost=on" if backend == "vhost" else "")
        return ["-netdev", nd, "-device", "virtio-net-pci,netdev=n0,disable-legacy=on"]

    def qemu_base(self, mem_mib):
        a = self.a
        return [a.qemu, "-enable-kvm", "-M", "pc", "-cpu", a.qemu_cpu, "-m", str(mem_mib), "-smp", "1",
                "-nographic", "-nodefaults", "-serial", "stdio", "-no-reboot"]

    def test_guest(self, vmm, backend, cmdline, env):
        a = self.a
        if vmm == "kvmkit":
            return [a.kvmkit, "run", "--kernel", a.test_kernel, "--cmdline", cmdline, "--memory", "256M",
                    "--cpus", "1"] + self.net_args(vmm, backend, env)
        return self.qemu_base(256) + ["-kernel", a.test_kernel, "-append", cmdline] + \
            self.net_args(vmm, backend, env)

    def linux(self, vmm, backend, g, env):
        a = self.a
        if vmm == "kvmkit":
            return [a.kvmkit, "run", "--kernel", g["vmlinux"], "--initrd", g["initrd"], "--cmdline", g["cmdline"],
                    "--memory", "256M", "--cpus", "1"] + self.net_args(vmm, backend, env)
        cmdline = g["cmdline"]
        if bl.is_pvm_host() and bl.PVM_LINUX_EXTRA.split()[0] not in cmdline.split():
            cmdline = (cmdline + " " + bl.PVM_LINUX_EXTRA).strip()
        return self.qemu_base(256) + ["-kernel", g["vmlinux"], "-initrd", g["initrd"], "-append", cmdline] + \
            self.net_args(vmm, backend, env)


def free_port(kind=socket.SOCK_DGRAM):
    s = socket.socket(socket.AF_INET, kind)
    s.bind(("127.0.0.1", 0))
    p = s.getsockname()[1]
    s.close()
    return p


# ------------------------------------------------------ test-guest runs ---
def run_testguest(a, cmds, vmm, backend, mode, ns, log):
    """One test-guest run; returns a dict of metrics or None."""
    env, prefix = {}, []
    count = {"tx": a.tx_count, "rx": a.rx_count, "rr": a.rr_count}[mode]
    if backend == "user":
        sink = free_port()
        fwd_port = free_port()
        env["hostfwd"] = [f"udp:127.0.0.1:{fwd_port}-:{GUEST_PORT}"]
        guest_net = ""
        peer_dst, peer_port = "127.0.0.1", fwd_port
    else:
        env["tap"] = ns.tap
        prefix = ns.prefix()
        sink = 47100
        guest_net = f" net_dhcp=0 net_ip={GUEST_IP} net_peer={HOST_IP}"
        peer_dst, peer_port = GUEST_IP, GUEST_PORT
    if mode == "tx":
        spec = f"bench=net:tx:{count}:{a.size}:{sink}"
    elif mode == "rx":
        spec = f"bench=net:rx:{count}:{GUEST_PORT}"
    else:
        spec = f"bench=net:echo:{count}:{GUEST_PORT}"
    argv = prefix + cmds.test_guest(vmm, backend, spec + guest_net, env)
    peer = None
    if mode == "tx":
        bind = "127.0.0.1" if backend == "user" else HOST_IP
        peer = start_peer({"mode": "tx", "bind": bind, "port": sink, "count": count, "timeout": a.timeout},
                          prefix)
    vm = Console(argv)
    res = {}
    try:
        i, m = vm.wait_line(r"^KT: bench net ready", a.timeout)
        if i is None:
            log(f"{vmm} {backend} {mode}: no ready line: {vm.tail()}")
            return None
        cpu0 = process_cpu_s(vm.proc.pid)
        if mode == "rx":
            peer = start_peer({"mode": "rx", "dst": peer_dst, "port": peer_port, "count": count,
                               "size": a.rx_size}, prefix)
        elif mode == "rr":
            peer = start_peer({"mode": "rr", "dst": peer_dst, "port": peer_port, "count": count,
                               "size": a.rr_size}, prefix)
        if mode == "rx":
            # the guest ends 2 s after its last datagram; a lost one never comes
            j, m2 = vm.wait_line(r"^KT: bench net rx .*received=(\d+) .*bytes=(\d+) us=(\d+)", a.timeout, i)
        elif mode == "rr":
            pr = finish_peer(peer, a.timeout)
            peer = None
            cpu1 = process_cpu_s(vm.proc.pid)
            j, m2 = vm.wait_line(r"^KT: bench net echo", a.timeout, i)
        else:
            j, m2 = vm.wait_line(r"^KT: bench net tx count=\d+ sent=(\d+) size=\d+ us=(\d+)", a.timeout, i)
        if mode != "rr":
            cpu1 = process_cpu_s(vm.proc.pid)
        if j is None:
            log(f"{vmm} {backend} {mode}: no result line: {vm.tail()}")
            return None
        cpu = (cpu1 - cpu0) if cpu0 is not None and cpu1 is not None else None
        if mode == "tx":
            pr = finish_peer(peer, a.timeout)
            peer = None
            got, secs = pr.get("received", 0), pr.get("secs")
            if not got or not secs:
                log(f"{vmm} {backend} tx: host received nothing: {pr}")
                return None
            res = {"tx_pps": got / secs, "tx_mbps": pr["bytes"] / secs / 1e6, "tx_loss": 1 - got / count,
                   "tx_cpu_us": cpu / got * 1e6 if cpu else None}
        elif mode == "rx":
            got, nbytes, us = int(m2.group(1)), int(m2.group(2)), int(m2.group(3))
            finish_peer(peer, 30)
            peer = None
            if got < 2 or not us:
                log(f"{vmm} {backend} rx: guest received {got}")
                return None
            res = {"rx_pps": (got - 1) / (us * 1e-6), "rx_mbps": nbytes / (us * 1e-6) / 1e6,
                   "rx_delivered": got / count, "rx_cpu_us": cpu / got * 1e6 if cpu else None}
        else:
            rtts = pr.get("rtts", [])
            if not rtts:
                log(f"{vmm} {backend} rr: no replies: {pr}")
                return None
            res = {"rr_us": statistics.median(rtts) * 1e6, "rr_p99_us": sorted(rtts)[int(len(rtts) * 0.99) - 1] * 1e6,
                   "rr_lost": pr.get("lost", 0), "rr_cpu_us": cpu / (2 * len(rtts)) * 1e6 if cpu else None}
        return res
    finally:
        if peer is not None:
            peer.kill()
            peer.wait()
        vm.stop()


# ----------------------------------------------------------- Linux runs ---
def build_host_nettool(tmp):
    out = os.path.join(tmp, "nettool")
    subprocess.run(["gcc", "-O2", "-Wall", "-o", out, os.path.join(REPO, "guest/tools/nettool.c")], check=True)
    return out


def run_linux(a, cmds, vmm, backend, g, ns, nettool, log):
    env, prefix = {}, []
    if backend == "user":
        fwd = free_port(socket.SOCK_STREAM)
        env["hostfwd"] = [f"tcp:127.0.0.1:{fwd}-:{GUEST_PORT}"]
        env["restrict"] = True  # QEMU: TCP host forwards work, the guest reaches nothing else
        dst, port = "127.0.0.1", fwd
        setup = "udhcpc -i eth0 -n -q -t 5 -s /etc/udhcpc/default.script >/dev/null 2>&1"
    else:
        env["tap"] = ns.tap
        prefix = ns.prefix()
        dst, port = GUEST_IP, GUEST_PORT
        setup = f"ip addr add {GUEST_IP}/24 dev eth0 && ip link set eth0 up"
    vm = Console(prefix + cmds.linux(vmm, backend, g, env))
    res = {}
    try:
        i, _ = vm.wait_line(r"KVMKIT-GUEST-READY", a.linux_timeout)
        if i is None:
            log(f"{vmm} {backend} linux: not ready: {vm.tail()}")
            return None
        res["l_boot_s"] = time.monotonic() - vm.t0
        vm.send(f"{setup}; nettool server {GUEST_PORT} >/dev/null 2>&1 & echo NB-S''ETUP-$((40+2))\n")
        if vm.wait_line(r"NB-SETUP-42", a.linux_timeout, i)[0] is None:
            log(f"{vmm} {backend} linux: setup failed: {vm.tail()}")
            return None
        for key, args in (("l_h2g", ["send", str(a.linux_bytes)]), ("l_g2h", ["recv", str(a.linux_bytes)]),
                          ("l_rr", ["ping", str(a.linux_pings), "64"])):
            cpu0 = process_cpu_s(vm.proc.pid)
            r = subprocess.run(prefix + [nettool, "client", "-w", "120", dst, str(port)] + args,
                               capture_output=True, text=True, timeout=a.linux_timeout)
            cpu1 = process_cpu_s(vm.proc.pid)
            m = re.search(r"MBps=([\d.]+)", r.stdout) or re.search(r"median_us=([\d.]+)", r.stdout)
            if not m:
                log(f"{vmm} {backend} linux {key}: {r.stdout.strip()} {r.stderr.strip()}")
                continue
            res[key] = float(m.group(1))
            if cpu0 is not None and cpu1 is not None:
                res[key + "_cpu_s"] = cpu1 - cpu0
        return res
    finally:
        vm.stop()


# ---------------------------------------------------------------- table ---
METRICS = [
    ("Test guest: UDP frames pumped by its polling driver", None, None, None),
    ("tx_pps", "guest→host: frames/s (size {size} B)", "{:.0f}", None),
    ("tx_mbps", "guest→host: MB/s", "{:.2f}", None),
    ("tx_cpu_us", "guest→host: host CPU per frame (µs)", "{:.1f}", None),
    ("rx_pps", "host→guest: frames/s (size {rx_size} B)", "{:.0f}", None),
    ("rx_delivered", "host→guest: share of frames delivered", "{:.2f}", None),
    ("rx_cpu_us", "host→guest: host CPU per frame (µs)", "{:.1f}", None),
    ("rr_us", "request/response round trip, median (µs)", "{:.0f}", None),
    ("rr_p99_us", "request/response round trip, p99 (µs)", "{:.0f}", None),
    ("rr_cpu_us", "request/response: host CPU per frame (µs)", "{:.1f}", None),
    ("Linux guest (virtio_net driver) with nettool over TCP", None, None, "linux"),
    ("l_boot_s", "boot to shell (s)", "{:.1f}", "linux"),
    ("l_h2g", "host→guest stream (MB/s, {linux_bytes} B)", "{:.3f}", "linux"),
    ("l_g2h", "guest→host stream (MB/s)", "{:.3f}", "linux"),
    ("l_rr", "TCP ping-pong 64 B, median (µs)", "{:.0f}", "linux"),
]


def table(a, S, backends, vmms, with_linux):
    rows = []
    head = ["metric"]
    for b in backends:
        for v in vmms:
            head.append(f"{v} {b}")
        if len(vmms) == 2:
            head.append(f"ratio {b}")
    for key, label, fmt, kind in METRICS:
        if kind == "linux" and not with_linux:
            continue
        if fmt is None:
            rows.append(("section", key))
            continue
        cells = []
        for b in backends:
            vals = {}
            for v in vmms:
                xs = [x for x in S.get((v, b), {}).get(key, []) if x is not None]
                vals[v] = statistics.median(xs) if xs else None
                if vals[v] is None:
                    cells.append("n/a")
                elif a.spread and len(xs) > 1 and min(xs) != max(xs):
                    cells.append(fmt.format(vals[v]) + " [" + fmt.format(min(xs)) + "–" + fmt.format(max(xs)) + "]")
                else:
                    cells.append(fmt.format(vals[v]))
            if len(vmms) == 2:
                x, y = vals.get(vmms[0]), vals.get(vmms[1])
                cells.append("{:.2f}".format(x / y) if x is not None and y else "–")
        rows.append(("row", label.format(**vars(a)), cells))
    return head, rows


def print_rows(head, rows, markdown, out):
    (bl.print_markdown if markdown else bl.print_text)(head, rows, out)


def main():
    if len(sys.argv) >= 3 and sys.argv[1] == "--peer":
        return peer_main(sys.argv[2])
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--backends", default="user,tap,vhost",
                   help="comma list of user, tap, vhost (vhost only with /dev/vhost-net; tap/vhost need root)")
    p.add_argument("--vmms", default="kvmkit,qemu", help="comma list of kvmkit, qemu")
    p.add_argument("--runs", type=int, default=3, help="test-guest runs per VMM, backend and mode (default 3)")
    p.add_argument("--tx-count", type=int, default=5000)
    p.add_argument("--size", type=int, default=1024, help="guest→host datagram payload (default 1024)")
    p.add_argument("--rx-count", type=int, default=5000)
    p.add_argument("--rx-size", type=int, default=64)
    p.add_argument("--rr-count", type=int, default=2000)
    p.add_argument("--rr-size", type=int, default=64)
    p.add_argument("--linux", action="store_true", help="also the default Linux guest with nettool (slow here)")
    p.add_argument("--linux-runs", type=int, default=1)
    p.add_argument("--linux-bytes", type=int, default=2_000_000)
    p.add_argument("--linux-pings", type=int, default=200)
    p.add_argument("--linux-timeout", type=float, default=900)
    p.add_argument("--timeout", type=float, default=120)
    p.add_argument("--kvmkit", default=os.path.join(REPO, "build/bin/kvmkit"))
    p.add_argument("--qemu", default="qemu-system-x86_64")
    p.add_argument("--qemu-cpu", default="host,-arch-capabilities")
    p.add_argument("--guest-dir", default=os.path.join(REPO, "build/tests/guests"))
    p.add_argument("--cache", default=os.environ.get("KVMKIT_CACHE", "/var/cache/kvmkit"))
    p.add_argument("--markdown", action="store_true")
    p.add_argument("--spread", action="store_true")
    p.add_argument("--json", metavar="FILE")
    a = p.parse_args()
    vmms = [v for v in a.vmms.split(",") if v]
    backends = [b for b in a.backends.split(",") if b]
    log = lambda m: print(m, file=sys.stderr, flush=True)  # noqa: E731
    if "vhost" in backends and not os.path.exists("/dev/vhost-net"):
        log("net_bench: /dev/vhost-net missing: the vhost backend is left out")
        backends.remove("vhost")
    if any(b != "user" for b in backends) and os.geteuid() != 0:
        log("net_bench: tap needs root (ip netns, ip tuntap): only the user backend runs")
        backends = [b for b in backends if b == "user"]
    a.test_kernel = os.path.join(a.guest_dir, "testguest.elf")
    tmp = tempfile.mkdtemp(prefix="kvmkit-netbench-")
    # private copies: a rebuild during the run changes nothing
    for n in ("kvmkit", "kvmkit-vmm"):
        shutil.copy2(os.path.join(os.path.dirname(a.kvmkit), n), tmp)
    shown_kvmkit, a.kvmkit = a.kvmkit, os.path.join(tmp, "kvmkit")
    shutil.copy2(a.test_kernel, tmp)
    shown_kernel, a.test_kernel = a.test_kernel, os.path.join(tmp, "testguest.elf")
    g = bl.find_linux_guest(a.cache) if a.linux else None
    if a.linux and not g:
        log(f"net_bench: no Linux guest in {a.cache}/guest: --linux skipped")
    cmds = Commands(a)
    info = bl.machine_info(a.kvmkit, a.qemu)
    log(f"net_bench: {info['date']}, load {' '.join(info['loadavg'])}, backends {backends}, VMMs {vmms}")
    S = {}
    t_begin = time.monotonic()
    namespaces = {}
    try:
        for b in backends:
            if b != "user":
                namespaces[b] = Netns(b)
        nettool = build_host_nettool(tmp) if g else None
        for i in range(a.runs):
            for b in backends:
                for mode in ("tx", "rx", "rr"):
                    for v in vmms:
                        r = run_testguest(a, cmds, v, b, mode, namespaces.get(b), log)
                        log(f"{v:6s} {b:5s} {mode} #{i + 1}: {r}")
                        for k, x in (r or {}).items():
                            S.setdefault((v, b), {}).setdefault(k, []).append(x)
        if g:
            for i in range(a.linux_runs):
                for b in backends:
                    for v in vmms:
                        r = run_linux(a, cmds, v, b, g, namespaces.get(b), nettool, log)
                        log(f"{v:6s} {b:5s} linux #{i + 1}: {r}")
                        for k, x in (r or {}).items():
                            S.setdefault((v, b), {}).setdefault(k, []).append(x)
    finally:
        for ns in namespaces.values():
            ns.close()
        shutil.rmtree(tmp, ignore_errors=True)
    info["duration_s"] = round(time.monotonic() - t_begin)
    info["loadavg_end"] = open("/proc/loadavg").read().split()[:3]
    head, rows = table(a, S, backends, vmms, g is not None)
    out = sys.stdout
    print(f"\nMeasured {info['date']} in {info['duration_s']} s; load average before/after "
          f"{' '.join(info['loadavg'])} / {' '.join(info['loadavg_end'])}; ratios are {vmms[0]}/"
          f"{vmms[-1]} of medians.\n", file=out)
    print_rows(head, rows, a.markdown, out)
    print("", file=out)
    for k in ("nproc", "cpu", "kernel", "kvm", "kvmkit_commit", "qemu_version"):
        print(f"- {k}: {info[k]}", file=out)
    env = {"hostfwd": [f"udp:127.0.0.1:HOSTPORT-:{GUEST_PORT}"]}
    print("\nCommands (test guest, user backend, guest→host):\n", file=out)
    print("```", file=out)
    for v in vmms:
        argv = cmds.test_guest(v, "user", f"bench=net:tx:{a.tx_count}:{a.size}:PORT", env)
        argv = [shown_kvmkit if x == a.kvmkit else shown_kernel if x == a.test_kernel else x for x in argv]
        print(shlex.join(os.path.relpath(x, REPO) if x.startswith(REPO + "/") else x for x in argv), file=out)
    print("```", file=out)
    if a.json:
        with open(a.json, "w") as f:
            json.dump({"info": info, "samples": {f"{v} {b}": s for (v, b), s in S.items()}}, f, indent=1)
    return 0


if __name__ == "__main__":
    try:
        sys.exit(main())
    except KeyboardInterrupt:
        sys.exit(130)
