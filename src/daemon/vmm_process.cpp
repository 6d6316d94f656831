#include "daemon/vmm_process.hpp"

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdlib>
#include <cstring>

#include "base/file.hpp"

namespace kvmkit::daemon {

using base::fail;
using base::Result;

namespace {
int pidfd_open(pid_t pid) {
    return static_cast<int>(::syscall(SYS_pidfd_open, pid, 0));
}

// /proc/PID/stat field 3: 'Z' (zombie) or 'X' means the process is gone.
bool is_alive(pid_t pid) {
    auto stat = base::read_text_file("/proc/" + std::to_string(pid) + "/stat", 4096);
    if (!stat) return false;
    auto close = stat->rfind(')');
    if (close == std::string::npos || close + 2 >= stat->size()) return false;
    char state = (*stat)[close + 2];
    return state != 'Z' && state != 'X';
}
}  // namespace

Result<VmmProcess> VmmProcess::spawn(const std::string& vmm_path, const std::vector<std::string>& args,
                                     const RunPaths& paths) {
    // Everything the child needs is prepared before fork: after fork in a
    // threaded process only async-signal-safe calls are allowed.
    std::vector<std::string> argv_s;
    argv_s.push_back("kvmkit-vmm");
    argv_s.insert(argv_s.end(), args.begin(), args.end());
    std::vector<char*> argv;
    for (auto& a : argv_s) argv.push_back(a.data());
    argv.push_back(nullptr);

    base::UniqueFd log(::open(paths.log_file.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0640));
    if (!log) return base::fail_errno("open log '" + paths.log_file + "'");
    base::UniqueFd null(::open("/dev/null", O_RDONLY | O_CLOEXEC));
    if (!null) return base::fail_errno("open /dev/null");
    // The child writes its own pid file before exec: were kvmkitd killed
    // right after fork, the VM would still be found and re-adopted.
    const std::string pid_tmp = paths.pid_file + ".tmp";
    int report[2];  // pid-file or exec failure -> errno through a CLOEXEC pipe
    if (::pipe2(report, O_CLOEXEC) < 0) return base::fail_errno("pipe");
    base::UniqueFd report_r(report[0]), report_w(report[1]);

    pid_t pid = ::fork();
    if (pid < 0) return base::fail_errno("fork");
    if (pid == 0) {
        ::setsid();  // its own session: a kvmkitd restart or a terminal hang-up does not reach it
        sigset_t none;
        sigemptyset(&none);
        ::sigprocmask(SIG_SETMASK, &none, nullptr);
        for (int s = 1; s < NSIG; ++s) ::signal(s, SIG_DFL);
        ::dup2(null.get(), 0);
        ::dup2(log.get(), 1);
        ::dup2(log.get(), 2);
        int rfd = report_w.get();
        if (rfd != 3) {
            ::dup2(rfd, 3);
            ::fcntl(3, F_SETFD, FD_CLOEXEC);
        }
        ::close_range(4, ~0u, 0);
        // Only async-signal-safe calls here: format the pid by hand.
        char digits[16];
        int len = 0;
        for (pid_t v = ::getpid(); v > 0 || len == 0; v /= 10) digits[len++] = static_cast<char>('0' + v % 10);
        char text[18];
        for (int i = 0; i < len; ++i) text[i] = digits[len - 1 - i];
        text[len] = '\n';
        int e = 0;
        int pf = ::open(pid_tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
        if (pf < 0 || ::write(pf, text, len + 1) != len + 1 || ::fsync(pf) < 0 ||
            ::rename(pid_tmp.c_str(), paths.pid_file.c_str()) < 0) {
            e = errno;
            (void)!::write(3, &e, sizeof e);
            ::_exit(127);
        }
        ::close(pf);
        ::execv(vmm_path.c_str(), argv.data());
        e = errno;
        (void)!::write(3, &e, sizeof e);
        ::_exit(127);
    }
    report_w.reset();
    int child_errno = 0;
    ssize_t n;
    do n = ::read(report_r.get(), &child_errno, sizeof child_errno);
    while (n < 0 && errno == EINTR);
    if (n == sizeof child_errno) {
        ::waitpid(pid, nullptr, 0);
        ::unlink(paths.pid_file.c_str());
        ::unlink(pid_tmp.c_str());
        return base::fail_errno("start '" + vmm_path + "' (pid file " + paths.pid_file + ")", child_errno);
    }
    VmmProcess p;
    p.pid_ = pid;
    p.child_ = true;
    p.pidfd_.reset(pidfd_open(pid));
    if (!p.pidfd_) {
        int e = errno;
        ::kill(pid, SIGKILL);
        ::waitpid(pid, nullptr, 0);
        return base::fail_errno("pidfd_open", e);
    }
    return p;
}

Result<VmmProcess> VmmProcess::adopt(const RunPaths& paths) {
    std::string text = TRY(base::read_text_file(paths.pid_file, 64));
    char* end = nullptr;
    long pid = std::strtol(text.c_str(), &end, 10);
    if (pid <= 1 || end == text.c_str()) return fail("pid file '" + paths.pid_file + "' holds no pid");
    VmmProcess p;
    p.pid_ = static_cast<pid_t>(pid);
    // Open the pidfd first, then check the process: a pid recycled after the
    // check cannot slip in, because the pidfd pins the process we checked.
    p.pidfd_.reset(pidfd_open(p.pid_));
    if (!p.pidfd_) return base::fail_errno("process " + std::to_string(pid));
    if (!is_alive(p.pid_)) return fail("process " + std::to_string(pid) + " has exited");
    auto cmdline = base::read_text_file("/proc/" + std::to_string(pid) + "/cmdline", 1 << 16);
    if (!cmdline) return fail("process " + std::to_string(pid) + ": " + cmdline.error().message());
    // argv is NUL-separated: the api socket must be one whole argument.
    std::string needle = std::string("\0", 1) + paths.api_socket + std::string("\0", 1);
    if (cmdline->find(needle) == std::string::npos)
        return fail("process " + std::to_string(pid) + " is not the kvmkit-vmm of this VM (recycled pid)");
    return p;
}

bool VmmProcess::exited() const {
    pollfd p{pidfd_.get(), POLLIN, 0};
    return ::poll(&p, 1, 0) > 0 && (p.revents & POLLIN);
}

ExitInfo VmmProcess::reap() {
    ExitInfo info;
    if (!child_) return info;
    siginfo_t si{};
    if (::waitid(P_PIDFD, pidfd_.get(), &si, WEXITED) < 0) return info;
    info.known = true;
    info.signaled = si.si_code == CLD_KILLED || si.si_code == CLD_DUMPED;
    info.code = si.si_status;
    child_ = false;  // reaped
    return info;
}

Result<void> VmmProcess::signal(int sig) const {
    if (::syscall(SYS_pidfd_send_signal, pidfd_.get(), sig, nullptr, 0) < 0 && errno != ESRCH)
        return base::fail_errno("kill " + std::to_string(pid_));
    return base::ok();
}

long file_size(const std::string& path) {
    struct stat st {};
    return ::stat(path.c_str(), &st) == 0 ? static_cast<long>(st.st_size) : 0;
}

namespace {
// Calls `on_line` for each line of the log's tail after `from`.
template <typename F>
void for_each_tail_line(const std::string& log_file, long from, F on_line) {
    base::UniqueFd fd(::open(log_file.c_str(), O_RDONLY | O_CLOEXEC));
    if (!fd) return;
    long size = file_size(log_file);
    long start = std::max(from, size - 16384L);  // the tail is enough
    if (start < 0) start = 0;
    if (size <= start) return;
    std::string tail(static_cast<size_t>(size - start), '\0');
    ssize_t n = ::pread(fd.get(), tail.data(), tail.size(), start);
    if (n <= 0) return;
    tail.resize(n);
    size_t pos = 0;
    while (pos < tail.size()) {
        size_t eol = tail.find('\n', pos);
        on_line(tail.substr(pos, eol == std::string::npos ? std::string::npos : eol - pos));
        if (eol == std::string::npos) break;
        pos = eol + 1;
    }
}
}  // namespace

std::string last_error_in_log(const std::string& log_file, long from) {
    std::string found;
    for_each_tail_line(log_file, from, [&](const std::string& line) {
        auto e = line.find("error: ");
        if (e != std::string::npos) found = line.substr(e + 7);
    });
    return found;
}

std::optional<int> exit_status_in_log(const std::string& log_file, long from) {
    std::optional<int> status;
    constexpr const char* kTag = "] exit status ";
    for_each_tail_line(log_file, from, [&](const std::string& line) {
        auto e = line.find(kTag);
        if (e == std::string::npos || line.compare(0, 5, "info:") != 0) return;
        const char* digits = line.c_str() + e + std::strlen(kTag);
        char* end = nullptr;
        long v = std::strtol(digits, &end, 10);
        if (end != digits && *end == '\0') status = static_cast<int>(v);
    });
    return status;
}

}  // namespace kvmkit::daemon
