"""Shared parts of the benchmarks in bench/: running a VMM and following its
console, sampling the VMM process (CPU, memory), the QEMU command line, the
default Linux guest's files, the machine's description and the result tables.

Used by vmm_bench.py (start-up, exits, teardown, memory) and blk_bench.py
(virtio-blk I/O).  Only the Python 3 standard library.
"""

import datetime
import os
import platform
import select
import shutil
import signal
import statistics
import subprocess
import tempfile
import time

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

# The kernel parameters kvmkit appends to a Linux command line on PVM hosts
# (src/arch/x86_64/cpuid.cpp, linux_cmdline_for_profile): they keep a kernel
# that is not built for PVM away from instructions the emulator lacks.  QEMU
# gets the same parameters so that both run the same guest.
PVM_LINUX_EXTRA = "noxsave clearcpuid=popcnt,smap,rdtscp,erms,fsrm"

def is_pvm_host():
    return os.path.isdir("/sys/module/kvm_pvm")


def proc_cpu_ns(pid):
    """Run time (ns) of all live threads of pid, from schedstat."""
    total = 0
    try:
        for tid in os.listdir(f"/proc/{pid}/task"):
            try:
                with open(f"/proc/{pid}/task/{tid}/schedstat") as f:
                    total += int(f.read().split()[0])
            except (OSError, ValueError, IndexError):
                pass
    except OSError:
        return None
    return total


def proc_stat_cpu_s(pid):
    """utime+stime (s) of the whole process from /proc/<pid>/stat: all its
    threads, exited ones included (io_uring workers, say), unlike the sum of
    the live threads' schedstat.  Reported in clock ticks (1/100 s) but not
    sampled by them: the kernel scales them to the precise run time."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
        # fields[0] is field 3 (state); utime and stime are fields 14 and 15
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    except (OSError, ValueError, IndexError):
        return None


def thread_cpu_ns(pid):
    """{tid: run time in ns} of the live threads of pid, from schedstat."""
    out = {}
    try:
        tids = os.listdir(f"/proc/{pid}/task")
    except OSError:
        return out
    for tid in tids:
        try:
            with open(f"/proc/{pid}/task/{tid}/schedstat") as f:
                out[int(tid)] = int(f.read().split()[0])
        except (OSError, ValueError, IndexError):
            pass
    return out


KVM_RUN = 0xae80


def find_vcpu_tids(pid, rounds=20, pause=0.002):
    """The threads of pid seen inside the KVM_RUN ioctl (/proc/<tid>/syscall:
    "16 <fd> 0xae80 ...") in `rounds` looks: the vCPU threads, whatever the
    VMM names them.  A thread on a CPU at that moment shows "running", hence
    the repeated looks.  KVM's own worker task (kvm-nx-lpage-recovery) also
    shows KVM_RUN's ioctl and is left out."""
    found = set()
    for i in range(rounds):
        try:
            tids = os.listdir(f"/proc/{pid}/task")
        except OSError:
            break
        for tid in tids:
            try:
                with open(f"/proc/{pid}/task/{tid}/syscall") as f:
                    call = f.read().split()
                with open(f"/proc/{pid}/task/{tid}/comm") as f:
                    comm = f.read().strip()
            except OSError:
                continue
            if len(call) > 2 and call[0] == "16" and int(call[2], 16) == KVM_RUN and not comm.startswith("kvm-"):
                found.add(int(tid))
        if i + 1 < rounds:
            time.sleep(pause)
    return found


class CpuSample:
    """The CPU a VMM process has used up to now: in all (/proc/<pid>/stat) and
    per live thread (schedstat)."""

    def __init__(self, pid):
        self.total_s = proc_stat_cpu_s(pid)
        self.threads = thread_cpu_ns(pid)

    def until(self, later, vcpus):
        """(all threads, vCPU threads, the other threads) in seconds from this
        sample to a later one.  The split comes from schedstat of the threads
        alive at the later sample (a thread that exited in between is lost
        from "other").  vcpus: the vCPU threads' ids; when empty (none was
        caught in KVM_RUN: a busy vCPU shows "running"), the one thread that
        ran most is taken for the vCPU -- right for 1-vCPU guests under PVM's
        instruction emulator, where the vCPU thread does nearly all the work."""
        total = None if later.total_s is None or self.total_s is None else later.total_s - self.total_s
        if not later.threads:
            return total, None, None
        deltas = {tid: (ns - self.threads.get(tid, 0)) * 1e-9 for tid, ns in later.threads.items()}
        if not vcpus:
            vcpus = {max(deltas, key=deltas.get)}
        vcpu = sum(d for tid, d in deltas.items() if tid in vcpus)
        return total, vcpu, sum(deltas.values()) - vcpu


def rss_split_kib(pid, mem_mib):
    """(guest RAM resident, everything else resident) in KiB, at this moment.
    Guest RAM = the mappings at least as large as the guest RAM (the VMM's
    anonymous mapping of it)."""
    guest = other = 0
    size = None
    try:
        with open(f"/proc/{pid}/smaps") as f:
            for l in f:
                if l.startswith("Size:"):
                    size = int(l.split()[1])
                elif l.startswith("Rss:"):
                    if size is not None and size >= mem_mib * 1024:
                        guest += int(l.split()[1])
                    else:
                        other += int(l.split()[1])
    except (OSError, ValueError):
        return None, None
    return guest, other


def vm_hwm_kib(pid):
    """VmHWM (peak RSS of the process's own address space) in KiB, or None.
    Not ru_maxrss from wait4: that also takes the high-water mark of the
    address space the child had before exec(), which with vfork (Python's
    subprocess) is this Python process's."""
    try:
        with open(f"/proc/{pid}/status") as f:
            for l in f:
                if l.startswith("VmHWM:"):
                    return int(l.split()[1])
    except (OSError, ValueError):
        pass
    return None


def kill_group(proc, sig=signal.SIGKILL):
    try:
        os.killpg(proc.pid, sig)
    except (ProcessLookupError, PermissionError):
        pass


class Run:
    """Outcome of one VM run; times in seconds relative to spawn."""

    def __init__(self):
        self.first_byte = None
        self.ready = None
        self.bench_start = None
        self.bench_end = None
        self.bench_cpu_ns = None
        self.bench_cpu_s = None  # the same interval from /proc/<pid>/stat
        self.bench_cpu_vcpu_s = None  # ... of it in the vCPU threads
        self.bench_cpu_other_s = None  # ... in all the other threads (the VMM's device side)
        self.guest_rss_kib = None
        self.other_rss_kib = None
        self.last_line_t = None  # DONE / Power down / SIGTERM sent
        self.exit_t = None
        self.maxrss_kib = None
        self.cpu_s = None
        self.returncode = None
        self.error = None
        self.killed_after_done = False
        self.log = bytearray()

    def teardown(self):
        if self.last_line_t is None or self.exit_t is None or self.killed_after_done:
            return None
        return self.exit_t - self.last_line_t


def run_vm(argv, *, ready_re, timeout, on_ready=None, stop_mode="done",
           done_grace=10.0, bench=False, stdin_pipe=False, mem_mib=None, on_line=None, split_vcpu=False):
    """Spawns argv and follows its console (stdout) until it exits.

    stop_mode: "done"     the guest powers off by itself after "KT: DONE";
                          last line = DONE; killed if not gone done_grace s later
               "sigterm"  send SIGTERM when ready_re is seen (on_ready="sigterm")
                          or when on_line returns "stop"; last line = then
               "poweroff" write "poweroff\\n" when ready_re is seen; last line =
                          the kernel's "reboot: Power down"
    on_ready:  "sigterm", "poweroff", or bytes to write to the VMM's stdin
               (stdin_pipe=True) when ready_re is seen.
    on_line:   on_line(text, t, pid) for every console line (t: seconds since
               spawn, pid: the VMM's); returning "stop" sends SIGTERM.
    split_vcpu: with bench, also split the bench interval's CPU into vCPU
               threads and the rest (bench_cpu_vcpu_s / bench_cpu_other_s);
               looking for the vCPU threads takes some 50 ms of polling at the
               first line and at `KT: bench start`, so not for short loops.
    """
    r = Run()
    err = tempfile.TemporaryFile()
    t0 = time.monotonic()
    proc = subprocess.Popen(argv, stdin=subprocess.PIPE if stdin_pipe else subprocess.DEVNULL,
                            stdout=subprocess.PIPE, stderr=err, start_new_session=True)
    deadline = t0 + timeout
    out_fd = proc.stdout.fileno()
    os.set_blocking(out_fd, False)
    try:
        pidfd = os.pidfd_open(proc.pid)
    except (AttributeError, OSError):
        pidfd = None
    line = bytearray()
    line_start = None
    bench_sample, vcpus = None, set()
    exited = False
    eof = False
    kill_at = None
    hwm_t = -1.0
    try:
        while not exited:
            now = time.monotonic()
            if now > deadline:
                r.error = f"timeout after {timeout:.0f} s"
                kill_group(proc)
                break
            if kill_at is not None and now > kill_at:
                r.killed_after_done = True
                kill_group(proc)
                kill_at = None
            fds = [] if eof else [out_fd]
            if pidfd is not None:
                fds.append(pidfd)
            wait = min(deadline - now, 0.05 if pidfd is None else 0.2)
            if kill_at is not None:
                wait = min(wait, max(0.0, kill_at - now))
            rd, _, _ = select.select(fds, [], [], max(0.0, wait))
            t = time.monotonic() - t0
            if t - hwm_t >= 0.05 or (pidfd is not None and pidfd in rd):
                h = vm_hwm_kib(proc.pid)  # monotonic: the last value read is the peak
                if h is not None:
                    r.maxrss_kib = h
                hwm_t = t
            if out_fd in rd:
                try:
                    data = os.read(out_fd, 65536)
                    eof = data == b""
                except BlockingIOError:
                    data = b""
                r.log += data
                if data and r.first_byte is None:
                    r.first_byte = t
                for b in data:
                    if line_start is None:
                        line_start = t
                    if b != 0x0A:
                        line.append(b)
                        continue
                    text = line.decode("utf-8", "replace").rstrip("\r")
                    ls, line, line_start = line_start, bytearray(), None
                    if r.ready is None and ready_re.search(text):
                        r.ready = t
                        if bench and split_vcpu:  # the vCPU often sits in KVM_RUN here (console output)
                            vcpus |= find_vcpu_tids(proc.pid, rounds=10)
                        if mem_mib and not bench:
                            r.guest_rss_kib, r.other_rss_kib = rss_split_kib(proc.pid, mem_mib)
                        if on_ready == "sigterm":
                            r.maxrss_kib = vm_hwm_kib(proc.pid) or r.maxrss_kib
                            r.last_line_t = time.monotonic() - t0
                            kill_group(proc, signal.SIGTERM)
                        elif on_ready == "poweroff" or isinstance(on_ready, bytes):
                            try:
                                proc.stdin.write(b"poweroff\n" if on_ready == "poweroff" else on_ready)
                                proc.stdin.flush()
                            except OSError:
                                pass
                    if on_line is not None and on_line(text, t, proc.pid) == "stop" \
                            and r.last_line_t is None:
                        r.maxrss_kib = vm_hwm_kib(proc.pid) or r.maxrss_kib
                        r.last_line_t = time.monotonic() - t0
                        kill_group(proc, signal.SIGTERM)
                    if bench and text.startswith("KT: bench start"):
                        r.bench_start = t
                        r.bench_cpu_ns = proc_cpu_ns(proc.pid)
                        bench_sample = CpuSample(proc.pid)
                        if split_vcpu:
                            vcpus |= find_vcpu_tids(proc.pid)
                        if mem_mib:
                            r.guest_rss_kib, r.other_rss_kib = rss_split_kib(proc.pid, mem_mib)
                    elif bench and text.startswith("KT: bench end") and r.bench_start is not None:
                        r.bench_end = ls
                        c = proc_cpu_ns(proc.pid)
                        if c is not None and r.bench_cpu_ns is not None:
                            r.bench_cpu_ns = c - r.bench_cpu_ns
                        else:
                            r.bench_cpu_ns = None
                        later = CpuSample(proc.pid)
                        if split_vcpu:
                            vcpus |= find_vcpu_tids(proc.pid, rounds=5)
                        r.bench_cpu_s, vcpu_s, other_s = bench_sample.until(later, vcpus)
                        if split_vcpu:
                            r.bench_cpu_vcpu_s, r.bench_cpu_other_s = vcpu_s, other_s
                    elif text.startswith("KT: DONE") and stop_mode == "done":
                        r.last_line_t = t
                        r.maxrss_kib = vm_hwm_kib(proc.pid) or r.maxrss_kib
                        kill_at = time.monotonic() + done_grace
                    elif "reboot: Power down" in text and stop_mode == "poweroff":
                        r.last_line_t = t
            if pidfd is not None and pidfd in rd:
                exited = True
            elif pidfd is None and proc.poll() is not None:
                exited = True
            if eof and pidfd is None:
                exited = proc.poll() is not None
        r.exit_t = time.monotonic() - t0
    finally:
        if not exited:
            kill_group(proc)  # timeout, error or Ctrl-C: leave nothing behind
        if pidfd is not None:
            os.close(pidfd)
        if proc.returncode is None:
            try:
                _, status, ru = os.wait4(proc.pid, 0)
                proc.returncode = os.waitstatus_to_exitcode(status)
                r.cpu_s = ru.ru_utime + ru.ru_stime
            except ChildProcessError:
                pass
        r.returncode = proc.returncode
        # leftover console bytes (after exit)
        try:
            while True:
                d = os.read(out_fd, 65536)
                if not d:
                    break
                r.log += d
        except (BlockingIOError, OSError):
            pass
        proc.stdout.close()
        if proc.stdin:
            try:
                proc.stdin.close()
            except OSError:
                pass
        err.seek(0)
        stderr = err.read().decode("utf-8", "replace")
        err.close()
    if r.error is None and r.ready is None:
        r.error = "no ready line"
    if r.error:
        r.error += f" (rc={r.returncode}); stderr: {stderr.strip()[-300:]!r}; console tail: " \
                   f"{bytes(r.log[-300:]).decode('utf-8', 'replace')!r}"
    return r


def qemu_argv(qemu, cpu, machine, mem_mib, cpus):
    """The common head of every QEMU command line here: KVM, no default
    devices, COM1 on stdio, exit instead of reboot."""
    return [qemu, "-enable-kvm", "-M", machine, "-cpu", cpu, "-m", str(mem_mib), "-smp", str(cpus),
            "-nographic", "-nodefaults", "-serial", "stdio", "-no-reboot"]


def linux_cmdline_for_qemu(cmdline):
    """kvmkit appends PVM_LINUX_EXTRA to a Linux command line on PVM hosts by
    itself; QEMU gets it here so that both run the same guest."""
    if is_pvm_host() and PVM_LINUX_EXTRA.split()[0] not in cmdline.split():
        cmdline = (cmdline + " " + PVM_LINUX_EXTRA).strip()
    return cmdline


def find_linux_guest(cache):
    d = os.path.join(cache, "guest")
    vmlinux = os.path.join(d, "vmlinux")
    initrd = os.path.join(d, "initramfs.cpio")
    cmdfile = os.path.join(d, "cmdline")
    if not (os.path.isfile(vmlinux) and os.path.isfile(initrd)):
        return None
    cmdline = ""
    if os.path.isfile(cmdfile):
        with open(cmdfile) as f:
            cmdline = " ".join(f.read().split())
    return {"vmlinux": vmlinux, "initrd": initrd, "cmdline": cmdline}


class Metric:
    def __init__(self, key, label, unit, scale=1.0, fmt="{:.1f}"):
        self.key, self.label, self.unit, self.scale, self.fmt = key, label, unit, scale, fmt


def collect(samples, key, fn):
    samples.setdefault(key, []).append(fn)


def median_spread(xs):
    """(median, (min, max)) of the values that are not None, or (None, None)."""
    xs = [x for x in xs if x is not None]
    if not xs:
        return None, None
    return statistics.median(xs), (min(xs), max(xs))


def cell(fmt, value, spread=None, show_spread=False):
    """A table cell: the median, with [min–max] when asked and they differ."""
    if value is None:
        return "n/a"
    if show_spread and spread and spread[0] != spread[1]:
        return fmt.format(value) + " [" + fmt.format(spread[0]) + "–" + fmt.format(spread[1]) + "]"
    return fmt.format(value)


def print_text(head, rows, out):
    width = [max(len(head[0]), *(len(r[1]) for r in rows if r[0] == "row"))]
    for i in range(1, len(head)):
        width.append(max(len(head[i]), *(len(r[2][i - 1]) for r in rows if r[0] == "row")))
    sep = "-+-".join("-" * w for w in width)

    def fmt(cols):
        return " | ".join([cols[0].ljust(width[0])] + [c.rjust(w) for c, w in zip(cols[1:], width[1:])])

    print(fmt(head), file=out)
    print(sep, file=out)
    for r in rows:
        if r[0] == "section":
            print(r[1], file=out)
        else:
            print(fmt([r[1]] + r[2]), file=out)


def print_markdown(head, rows, out):
    print("| " + " | ".join(head) + " |", file=out)
    print("|" + "|".join(["---"] + ["---:"] * (len(head) - 1)) + "|", file=out)
    for r in rows:
        if r[0] == "section":
            print(f"| **{r[1]}** |" + " |" * (len(head) - 1), file=out)
        else:
            print("| " + " | ".join([r[1]] + r[2]) + " |", file=out)


def machine_info(kvmkit, qemu):
    """Date, CPU, host kernel, KVM backend, kvmkit commit and versions, load."""
    info = {}
    info["date"] = datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    info["nproc"] = os.cpu_count()
    model = "?"
    try:
        with open("/proc/cpuinfo") as f:
            for l in f:
                if l.startswith("model name"):
                    model = l.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    info["cpu"] = model
    info["kernel"] = platform.release()
    info["kvm"] = "PVM (kvm_pvm): guests not built for PVM run under KVM's instruction emulator" \
        if is_pvm_host() else ("kvm_intel" if os.path.isdir("/sys/module/kvm_intel") else
                               "kvm_amd" if os.path.isdir("/sys/module/kvm_amd") else "?")
    try:
        info["kvmkit_commit"] = subprocess.run(["git", "-C", REPO, "rev-parse", "--short", "HEAD"],
                                               capture_output=True, text=True, timeout=10).stdout.strip()
        dirty = subprocess.run(["git", "-C", REPO, "status", "--porcelain", "--", "src", "apps"],
                               capture_output=True, text=True, timeout=10).stdout.strip()
        if dirty:
            info["kvmkit_commit"] += " (+ uncommitted changes in src/ or apps/)"
    except (OSError, subprocess.SubprocessError):
        info["kvmkit_commit"] = "?"
    try:
        info["kvmkit_version"] = subprocess.run([kvmkit, "version"], capture_output=True, text=True,
                                                timeout=10).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        info["kvmkit_version"] = "?"
    try:
        info["qemu_version"] = subprocess.run([qemu, "--version"], capture_output=True, text=True,
                                              timeout=10).stdout.splitlines()[0].strip()
    except (OSError, subprocess.SubprocessError, IndexError):
        info["qemu_version"] = "?"
    info["loadavg"] = open("/proc/loadavg").read().split()[:3]
    return info


class PrivateCopies:
    """Runs private copies of the binaries a benchmark uses: `ninja -C build`
    during a long run must not change what is measured half-way.  copy(path)
    returns the copy's path; show(argv) maps the copies back to the original
    paths (relative to the repository when inside it) for printing."""

    def __init__(self, enabled=True):
        self.dir = tempfile.mkdtemp(prefix="kvmkit-bench-") if enabled else None
        self.shown = {}

    def copy(self, path, *siblings):
        """Copies path (and the named files next to it) unless disabled."""
        if self.dir is None:
            return path
        src = os.path.dirname(os.path.abspath(path))
        for n in (os.path.basename(path),) + siblings:
            shutil.copy2(os.path.join(src, n), self.dir)
        dst = os.path.join(self.dir, os.path.basename(path))
        self.shown[dst] = path
        return dst

    def show(self, argv):
        argv = [self.shown.get(x, x) for x in argv]
        return [os.path.relpath(x, REPO) if x.startswith(REPO + "/") else x for x in argv]

    def close(self):
        if self.dir:
            shutil.rmtree(self.dir, ignore_errors=True)
            self.dir = None
