#!/usr/bin/env python3
"""virtio-blk: kvmkit vs QEMU vs the host, side by side, in one run.

The same I/O, O_DIRECT on the same raw image file, issued three ways:
  * the project's test guest (build/tests/guests), whose small virtio-blk
    driver runs `bench=blk:<op>:<count>:<sectors>:<qd>`: cheap in guest
    instructions, so the VMM's I/O path weighs as much as it can here;
  * with --linux, the default Linux guest ($KVMKIT_CACHE/guest) running
    /usr/bin/blkbench (guest/tools/blkbench.c, Linux AIO) on /dev/vda;
  * on the host: the same blkbench, built for the host, on the image file
    ("host" column: no VMM at all).
kvmkit gets `--disk IMG,cache=none`; QEMU (-M pc) gets
`-drive file=IMG,if=none,id=d0,format=raw,cache=none,aio=io_uring -device
virtio-blk-pci,drive=d0,disable-legacy=on`: both open the image with
O_DIRECT and use io_uring, so the host page cache serves neither.

Workloads: sequential 1 MiB reads and writes, random 4 KiB reads at queue
depth 1 and at --qd (16).  The runs are interleaved (for each run, each
workload: kvmkit, QEMU, host) so that changes in the host's load hit all alike.

Metrics, medians over --runs runs:
  * throughput: MB/s (10^6 bytes) for sequential, IOPS for random I/O.  Test
    guest: bytes or requests / the host-side time between its `KT: bench
    start` and `KT: bench end` lines.  blkbench (Linux guest, host): its own
    clock around the I/O loop.
  * latency per request, at queue depth 1: test guest, the same time /
    requests; blkbench, the mean time from io_submit to io_getevents.
  * host CPU per request: the VMM process's utime+stime (all threads, exited
    ones included: /proc/<pid>/stat) over the same interval / requests; for
    the host column, blkbench's own user+system time (getrusage) / requests.
Ratios kvmkit/QEMU and kvmkit/host are of the medians.

Only the Python 3 standard library (and gcc, to build blkbench for the host).
Benchmarks are never part of the test suite; nothing here asserts timings.
"""

import argparse
import json
import os
import re
import shlex
import subprocess
import sys
import tempfile
import time

from benchlib import (REPO, CpuSample, PrivateCopies, cell, collect, find_linux_guest, find_vcpu_tids,
                      linux_cmdline_for_qemu, machine_info, median_spread, print_markdown, print_text,
                      qemu_argv, run_vm)

SIDES = ("kvmkit", "qemu", "host")
HEAD = ["metric", "kvmkit", "qemu-pc", "host", "kvmkit/qemu", "kvmkit/host"]

# The test guest's driver: completions by MSI-X, and the vCPU sleeps in HLT
# while it waits for one (tests/guests/README.md, bench=blk).
TEST_GUEST_BLK_OPTS = "blk_irq=msix blk_wait=hlt"
DONE_MARK = "BLKBENCH-ALL-DONE"


class Workload:
    def __init__(self, key, label, op, bs, qd, count, linux_count):
        self.key, self.label, self.op, self.bs, self.qd = key, label, op, bs, qd
        self.count, self.linux_count = count, linux_count

    @property
    def sequential(self):
        return not self.op.startswith("rand")


def workloads(a):
    mib, kib4 = 1 << 20, 4096
    return [
        Workload("seqread", f"seq read 1 MiB, QD{a.seq_qd}", "read", mib, a.seq_qd, a.seq_count, a.linux_seq_count),
        Workload("seqwrite", f"seq write 1 MiB, QD{a.seq_qd}", "write", mib, a.seq_qd, a.seq_count,
                 a.linux_seq_count),
        Workload("randread1", "rand read 4 KiB, QD1", "randread", kib4, 1, a.rand_count, a.linux_rand_count),
        Workload("randreadN", f"rand read 4 KiB, QD{a.qd}", "randread", kib4, a.qd, a.rand_qd_count,
                 a.linux_rand_qd_count),
    ]


# ------------------------------------------------------------- commands ---
class Commands:
    def __init__(self, a):
        self.a = a

    def kvmkit_disk(self):
        return ["--disk", f"{self.a.image},cache=none"]

    def qemu_disk(self):
        return ["-drive", f"file={self.a.image},if=none,id=d0,format=raw,cache=none,aio=io_uring",
                "-device", "virtio-blk-pci,drive=d0,disable-legacy=on"]

    def test_guest(self, side, w):
        a = self.a
        cmdline = f"bench=blk:{w.op}:{w.count}:{w.bs // 512}:{w.qd} {TEST_GUEST_BLK_OPTS}"
        if side == "kvmkit":
            return [a.kvmkit, "run", "--kernel", a.test_kernel, "--cmdline", cmdline,
                    "--memory", f"{a.memory}M", "--cpus", "1"] + self.kvmkit_disk()
        return qemu_argv(a.qemu, a.qemu_cpu, "pc", a.memory, 1) + [
            "-kernel", a.test_kernel, "-append", cmdline] + self.qemu_disk()

    def linux(self, side, g):
        a = self.a
        if side == "kvmkit":  # kvmkit appends the PVM parameters itself
            return [a.kvmkit, "run", "--kernel", g["vmlinux"], "--initrd", g["initrd"],
                    "--cmdline", g["cmdline"], "--memory", f"{a.linux_memory}M", "--cpus", "1"] + self.kvmkit_disk()
        return qemu_argv(a.qemu, a.qemu_cpu, "pc", a.linux_memory, 1) + [
            "-kernel", g["vmlinux"], "-initrd", g["initrd"],
            "-append", linux_cmdline_for_qemu(g["cmdline"])] + self.qemu_disk()

    @staticmethod
    def blkbench(tool, path, w, count):
        return [tool, path, w.op, str(w.bs), str(count), str(w.qd)]

    def linux_script(self, wls):
        """One shell line for the guest: every workload, then the end mark
        (split by quotes so that the shell's echo of the line never matches)."""
        cmds = [shlex.join(self.blkbench("blkbench", "/dev/vda", w, w.linux_count)) for w in wls]
        return "; ".join(cmds + [f'echo {DONE_MARK[:9]}""{DONE_MARK[9:]}']) + "\n"


# ----------------------------------------------------------------- runs ---
END_RE = re.compile(r"BLKBENCH end (.*)")


def parse_kv(text):
    return {k: v for k, v in (x.split("=", 1) for x in text.split() if "=" in x)}


def per_request(x, n):
    return None if x is None else x / n


def blkbench_result(fields, cpu=None):
    """A sample from blkbench's end line; cpu: the VMM's (all, vCPU threads,
    other threads) CPU seconds over it; None: blkbench's own (host column)."""
    n = int(fields["requests"])
    secs = int(fields["usec"]) * 1e-6
    total, _, other = cpu if cpu is not None else (int(fields["cpu_us"]) * 1e-6, None, None)
    return {"requests": n, "bytes": int(fields["bytes"]), "secs": secs, "errors": int(fields["errors"]),
            "lat": int(fields["lat_avg_us"]) * 1e-6, "cpu": per_request(total, n),
            "cpu_other": per_request(other, n)}


def run_host(a, w, count):
    p = subprocess.run(Commands.blkbench(a.host_tool, a.image, w, count), capture_output=True, text=True,
                       timeout=a.timeout)
    m = END_RE.search(p.stdout)
    if p.returncode != 0 or not m:
        return None, f"blkbench rc={p.returncode}: {p.stderr.strip()[-300:]}"
    return blkbench_result(parse_kv(m.group(1))), None


def run_test_guest(a, cmds, side, w):
    r = run_vm(cmds.test_guest(side, w), ready_re=re.compile(r"^KT: start\b"), timeout=a.timeout, bench=True,
               stop_mode="done", done_grace=a.done_grace, split_vcpu=True)
    if r.error:
        return None, r.error
    log = bytes(r.log).decode("utf-8", "replace")
    m = re.search(r"KT: bench bytes=(\d+) requests=(\d+) errors=(\d+)", log)
    if "KT: PASS bench" not in log or not m or r.bench_start is None or r.bench_end is None:
        fails = re.findall(r"KT: FAIL .*", log)
        return None, "bench did not pass: " + (fails[0].strip() if fails else "no result lines")
    secs = r.bench_end - r.bench_start
    n = int(m.group(2))
    return {"requests": n, "bytes": int(m.group(1)), "secs": secs, "errors": int(m.group(3)),
            "lat": secs / n if w.qd == 1 else None, "cpu": per_request(r.bench_cpu_s, n),
            "cpu_other": per_request(r.bench_cpu_other_s, n)}, None


def run_linux(a, cmds, side, g, wls):
    """One boot; every workload in it.  Returns ({key: sample}, error)."""
    by_key = {(w.op, w.bs, w.qd): w.key for w in wls}
    results, starts, vcpus = {}, {}, set()

    def on_line(text, t, pid):
        i = text.find("BLKBENCH ")
        if i < 0:
            return "stop" if DONE_MARK in text and '""' not in text else None
        kind, _, rest = text[i + 9:].partition(" ")
        f = parse_kv(rest)
        try:
            key = by_key[(f.get("op"), int(f.get("bs", 0)), int(f.get("qd", 0)))]
        except (KeyError, ValueError):
            return None
        if kind == "start":
            starts[key] = CpuSample(pid)
            vcpus.update(find_vcpu_tids(pid))
        elif kind == "end" and key in starts:
            later = CpuSample(pid)
            vcpus.update(find_vcpu_tids(pid, rounds=5))
            results[key] = blkbench_result(f, starts[key].until(later, vcpus))
        return None

    r = run_vm(cmds.linux(side, g), ready_re=re.compile(r"KVMKIT-GUEST-READY"), timeout=a.linux_timeout,
               on_ready=cmds.linux_script(wls).encode(), stop_mode="sigterm", stdin_pipe=True, on_line=on_line)
    if r.error:
        return results, r.error
    if r.last_line_t is None:
        log = bytes(r.log).decode("utf-8", "replace")
        return results, f"no {DONE_MARK} line; console tail: {log[-400:]!r}"
    missing = [w.key for w in wls if w.key not in results]
    return results, (f"no result for {', '.join(missing)}" if missing else None)


def record(S, side, section, w, res):
    s = S[side]
    tput = res["bytes"] / res["secs"] / 1e6 if w.sequential else res["requests"] / res["secs"]
    collect(s, f"{section}/{w.key}/tput", tput)
    collect(s, f"{section}/{w.key}/lat", res["lat"])
    collect(s, f"{section}/{w.key}/cpu", res["cpu"])
    collect(s, f"{section}/{w.key}/cpu_other", res["cpu_other"])
    if res["errors"]:
        collect(s, "errors", res["errors"])
    return tput


def describe(side, w, res, tput):
    unit = "MB/s" if w.sequential else "IOPS"
    lat = "" if res["lat"] is None else f", {res['lat'] * 1e6:7.1f} us/req"
    cpu = "" if res["cpu"] is None else f", cpu {res['cpu'] * 1e6:7.1f} us/req"
    if res.get("cpu_other") is not None:
        cpu += f" (not vCPU {res['cpu_other'] * 1e6:6.1f})"
    return f"{tput:9.1f} {unit}{lat}{cpu}"


def run_suite(a, cmds, sides, wls, linux_guest, log):
    S = {s: {} for s in sides}

    def one(section, side, w, i, fn):
        res, err = fn()
        tag = f"{side:6s} {section:5s} {w.key:9s} #{i + 1}"
        if err:
            log(f"{tag}: FAILED: {err}")
            collect(S[side], "failures", 1)
            return
        log(f"{tag}: {describe(side, w, res, record(S, side, section, w, res))}")

    for i in range(0 if a.no_test_guest else a.runs):
        for w in wls:
            for side in sides:
                if side == "host":
                    one("test", side, w, i, lambda: run_host(a, w, w.count))
                else:
                    one("test", side, w, i, lambda: run_test_guest(a, cmds, side, w))
    if linux_guest:
        for i in range(a.linux_runs):
            for side in sides:
                if side == "host":
                    for w in wls:
                        one("linux", side, w, i, lambda: run_host(a, w, w.linux_count))
                    continue
                results, err = run_linux(a, cmds, side, linux_guest, wls)
                if err:
                    log(f"{side:6s} linux #{i + 1}: FAILED: {err}")
                    collect(S[side], "failures", 1)
                for w in wls:
                    if w.key in results:
                        res = results[w.key]
                        log(f"{side:6s} linux {w.key:9s} #{i + 1}: {describe(side, w, res, record(S, side, 'linux', w, res))}")
    return S


# ---------------------------------------------------------------- table ---
def build_rows(a, S, sides, wls, sections):
    rows = []
    titles = {
        "test": f"Test guest (bench=blk, {TEST_GUEST_BLK_OPTS}), medians of {a.runs} runs; "
                f"host: blkbench on the image file",
        "linux": f"Linux guest (blkbench on /dev/vda), medians of {a.linux_runs} runs; "
                 f"host: blkbench on the image file",
    }
    for section in sections:
        rows.append(("section", titles[section]))
        for w in wls:
            count = w.count if section == "test" else w.linux_count
            metrics = [("tput", "MB/s" if w.sequential else "IOPS", 1, "{:.1f}" if w.sequential else "{:.0f}")]
            if w.qd == 1:
                metrics.append(("lat", "µs per request", 1e6, "{:.1f}"))
            metrics.append(("cpu", "host CPU µs per request", 1e6, "{:.1f}"))
            metrics.append(("cpu_other", "… of it outside vCPU threads", 1e6, "{:.1f}"))
            for key, unit, scale, fmt in metrics:
                vals, cells = {}, []
                for side in SIDES:
                    xs = [x * scale for x in S.get(side, {}).get(f"{section}/{w.key}/{key}", [])
                          if x is not None and x == x]
                    vals[side], spread = median_spread(xs)
                    cells.append("–" if side not in sides else cell(fmt, vals[side], spread, a.spread))
                for other in ("qemu", "host"):
                    k, o = vals.get("kvmkit"), vals.get(other)
                    cells.append("{:.2f}".format(k / o) if k is not None and o else "–")
                rows.append(("row", f"{w.label} ×{count}: {unit}", cells))
    return rows


# ---------------------------------------------------------------- image ---
def prepare_image(path, size_mib, log):
    """Creates and fills the image unless it exists with that size.  Filled
    with data (not a sparse file or fallocate's unwritten extents): reads of
    holes would never reach the disk."""
    size = size_mib << 20
    if os.path.isfile(path) and os.path.getsize(path) == size:
        return
    log(f"blk_bench: writing {size_mib} MiB to {path}")
    chunk = os.urandom(1 << 20)
    with open(path, "wb") as f:
        for _ in range(size_mib):
            f.write(chunk)
        f.flush()
        os.fsync(f.fileno())


def build_host_tool(dst):
    src = os.path.join(REPO, "guest/tools/blkbench.c")
    subprocess.run(["gcc", "-O2", "-Wall", "-o", dst, src], check=True)
    return dst


# ----------------------------------------------------------------- main ---
def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--runs", type=int, default=3, help="test-guest runs per workload and VMM (default 3)")
    p.add_argument("--linux", action="store_true",
                   help="also run the default Linux guest, if built (one boot per VMM and run: 1 to several "
                        "minutes each here)")
    p.add_argument("--linux-runs", type=int, default=1, help="Linux guest boots per VMM (default 1)")
    p.add_argument("--no-test-guest", action="store_true", help="run only the Linux guest part")
    p.add_argument("--vmms", default=",".join(SIDES), help="comma-separated subset of " + ",".join(SIDES))
    p.add_argument("--qd", type=int, default=16, help="queue depth of the second random-read workload (default 16)")
    p.add_argument("--seq-qd", type=int, default=1, help="queue depth of the sequential workloads (default 1)")
    p.add_argument("--seq-count", type=int, default=256, help="1 MiB requests per sequential test-guest run")
    p.add_argument("--rand-count", type=int, default=2000, help="4 KiB requests per QD1 test-guest run")
    p.add_argument("--rand-qd-count", type=int, default=8000, help="4 KiB requests per --qd test-guest run")
    p.add_argument("--linux-seq-count", type=int, default=16, help="1 MiB requests per sequential Linux run")
    p.add_argument("--linux-rand-count", type=int, default=100, help="4 KiB requests at QD1 (Linux)")
    p.add_argument("--linux-rand-qd-count", type=int, default=200, help="4 KiB requests at --qd (Linux)")
    p.add_argument("--image", help="raw image to use (default: a temporary file in /var/tmp, removed "
                                   "afterwards); created and filled unless it exists with --size-mib")
    p.add_argument("--size-mib", type=int, default=1024, help="image size (default 1024 MiB)")
    p.add_argument("--memory", type=int, default=512, help="test guest RAM in MiB (default 512)")
    p.add_argument("--linux-memory", type=int, default=512, help="Linux guest RAM in MiB (default 512)")
    p.add_argument("--kvmkit", default=os.path.join(REPO, "build/bin/kvmkit"))
    p.add_argument("--qemu", default="qemu-system-x86_64")
    p.add_argument("--qemu-cpu", default="host,-arch-capabilities",
                   help="QEMU -cpu (default host,-arch-capabilities: plain `host` aborts on PVM)")
    p.add_argument("--guest-dir", default=os.path.join(REPO, "build/tests/guests"))
    p.add_argument("--cache", default=os.environ.get("KVMKIT_CACHE", "/var/cache/kvmkit"))
    p.add_argument("--timeout", type=float, default=300, help="per test-guest or host run, seconds")
    p.add_argument("--linux-timeout", type=float, default=1800, help="per Linux boot, seconds")
    p.add_argument("--done-grace", type=float, default=10)
    p.add_argument("--no-copy", action="store_true", help="run build/bin/kvmkit and the test guest in place")
    p.add_argument("--markdown", action="store_true", help="print the table as Markdown, with the context")
    p.add_argument("--spread", action="store_true", help="show [min–max] next to each median")
    p.add_argument("--json", metavar="FILE", help="also write every sample to FILE")
    p.add_argument("-q", "--quiet", action="store_true", help="no per-run lines on stderr")
    a = p.parse_args()

    sides = [v.strip() for v in a.vmms.split(",") if v.strip()]
    for v in sides:
        if v not in SIDES:
            p.error(f"unknown side {v!r} (choose from {', '.join(SIDES)})")
    a.test_kernel = os.path.join(a.guest_dir, "testguest.elf")
    if not os.path.isfile(a.test_kernel):
        sys.exit(f"blk_bench: {a.test_kernel} missing; build kvmkit first (ninja -C build)")
    if "kvmkit" in sides and not os.access(a.kvmkit, os.X_OK):
        sys.exit(f"blk_bench: {a.kvmkit} missing; build kvmkit first (ninja -C build)")
    linux_guest = find_linux_guest(a.cache) if a.linux or a.no_test_guest else None

    def log(msg):
        if not a.quiet:
            print(msg, file=sys.stderr, flush=True)

    copies = PrivateCopies(enabled=not a.no_copy)
    work = tempfile.mkdtemp(prefix="kvmkit-blkbench-", dir="/var/tmp")
    own_image = a.image is None
    try:
        if "kvmkit" in sides:
            a.kvmkit = copies.copy(a.kvmkit, "kvmkit-vmm")
        a.test_kernel = copies.copy(a.test_kernel)
        a.host_tool = build_host_tool(os.path.join(work, "blkbench"))
        if own_image:
            a.image = os.path.join(work, "disk.img")
        prepare_image(a.image, a.size_mib, log)
        return measure(a, sides, linux_guest, log, copies.show)
    finally:
        copies.close()
        if own_image and a.image and os.path.exists(a.image):
            os.unlink(a.image)
        for f in ("blkbench",):
            if os.path.exists(os.path.join(work, f)):
                os.unlink(os.path.join(work, f))
        os.rmdir(work)


def measure(a, sides, linux_guest, log, show):
    cmds = Commands(a)
    wls = workloads(a)
    info = machine_info(a.kvmkit, a.qemu)
    log(f"blk_bench: {info['date']}, {info['nproc']} CPUs, {info['cpu']}, load {' '.join(info['loadavg'])}")
    if a.linux or a.no_test_guest:
        log(f"blk_bench: Linux guest: {'found in ' + a.cache + '/guest' if linux_guest else 'not built, skipped'}")
    t_begin = time.monotonic()
    S = run_suite(a, cmds, sides, wls, linux_guest, log)
    info["duration_s"] = round(time.monotonic() - t_begin, 1)
    info["loadavg_end"] = open("/proc/loadavg").read().split()[:3]
    sections = ([] if a.no_test_guest else ["test"]) + (["linux"] if linux_guest else [])
    rows = build_rows(a, S, sides, wls, sections)

    out = sys.stdout
    image = f"{a.image} ({a.size_mib} MiB raw, on {fs_of(a.image)})"
    if a.markdown:
        print(f"Measured {info['date']} in {info['duration_s']:.0f} s; load average before/after: "
              f"{' '.join(info['loadavg'])} / {' '.join(info['loadavg_end'])}.\n", file=out)
        print_markdown(HEAD, rows, out)
        print("", file=out)
        for k in ("nproc", "cpu", "kernel", "kvm", "kvmkit_commit", "kvmkit_version", "qemu_version"):
            print(f"- {k}: {info[k]}", file=out)
        print(f"- image: {image}", file=out)
        print("\nCommands (test guest, random reads at QD1; the other workloads differ in `bench=`):\n\n```",
              file=out)
        for side in sides:
            w = wls[2]
            argv = cmds.test_guest(side, w) if side != "host" else Commands.blkbench(
                "blkbench", a.image, w, w.count)
            print(shlex.join(show(argv)), file=out)
        print("```", file=out)
        if linux_guest:
            print("\nCommands (Linux guest; the shell line is typed after `KVMKIT-GUEST-READY`):\n\n```", file=out)
            for side in sides:
                if side != "host":
                    print(shlex.join(show(cmds.linux(side, linux_guest))), file=out)
            print(cmds.linux_script(wls).strip(), file=out)
            print("```", file=out)
    else:
        print(f"\nvirtio-blk: kvmkit vs QEMU vs host — {info['date']}, {info['nproc']} CPUs ({info['cpu']}), "
              f"{info['kvm']}", file=out)
        print(f"kvmkit {info['kvmkit_commit']}; {info['qemu_version']}; image {image}; took "
              f"{info['duration_s']:.0f} s; load before/after {' '.join(info['loadavg'])} / "
              f"{' '.join(info['loadavg_end'])}\n", file=out)
        print_text(HEAD, rows, out)
    for side in sides:
        if S[side].get("failures"):
            print(f"\nNote: {len(S[side]['failures'])} run(s) of {side} failed (see stderr); medians are over "
                  f"the rest.", file=out)
        if S[side].get("errors"):
            print(f"\nNote: {side} reported {sum(S[side]['errors'])} I/O errors.", file=out)
    if a.json:
        with open(a.json, "w") as f:
            json.dump({"info": info, "samples": S, "args": {k: v for k, v in vars(a).items()}}, f, indent=1)
    return 1 if any(S[s].get("failures") or S[s].get("errors") for s in sides) else 0


def fs_of(path):
    try:
        out = subprocess.run(["df", "--output=fstype,source", path], capture_output=True, text=True,
                             timeout=10).stdout.split("\n")[1].split()
        return f"{out[0]} on {out[1]}"
    except (OSError, subprocess.SubprocessError, IndexError):
        return "?"


if __name__ == "__main__":
    try:
        sys.exit(main())
    except KeyboardInterrupt:
        sys.exit(130)
