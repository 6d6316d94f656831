#include "vm_process.hpp"

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstring>

namespace kvmkit::test {

VmProcess::VmProcess(std::vector<std::string> args, std::vector<std::string> extra_env,
                     std::vector<std::string> wrapper) {
    int in[2], out[2], err[2];
    if (pipe2(in, O_CLOEXEC) || pipe2(out, O_CLOEXEC) || pipe2(err, O_CLOEXEC)) abort();
    pid_ = fork();
    if (pid_ == 0) {
        setpgid(0, 0);
        dup2(in[0], 0);
        dup2(out[1], 1);
        dup2(err[1], 2);
        for (auto& e : extra_env) putenv(const_cast<char*>(e.c_str()));
        std::vector<char*> argv;
        for (auto& w : wrapper) argv.push_back(const_cast<char*>(w.c_str()));
        argv.push_back(const_cast<char*>(KVMKIT_BIN));
        argv.push_back(const_cast<char*>("run"));
        for (auto& a : args) argv.push_back(const_cast<char*>(a.c_str()));
        argv.push_back(nullptr);
        if (wrapper.empty())
            execv(KVMKIT_BIN, argv.data());
        else
            execvp(argv[0], argv.data());
        _exit(127);
    }
    close(in[0]);
    close(out[1]);
    close(err[1]);
    in_fd_ = in[1];
    out_fd_ = out[0];
    err_fd_ = err[0];
    ::signal(SIGPIPE, SIG_IGN);
    reader_ = std::thread([this] { pump(); });
}

VmProcess::~VmProcess() {
    if (!wait_exit(0ms)) {
        kill(-pid_, SIGKILL);
        wait_exit(10s);
    }
    if (reader_.joinable()) reader_.join();
    close_stdin();
    close(out_fd_);
    close(err_fd_);
}

void VmProcess::pump() {
    char buf[4096];
    bool out_open = true, err_open = true;
    while (out_open || err_open) {
        pollfd fds[2] = {{out_open ? out_fd_ : -1, POLLIN, 0}, {err_open ? err_fd_ : -1, POLLIN, 0}};
        if (poll(fds, 2, 1000) < 0 && errno != EINTR) break;
        for (int i = 0; i < 2; ++i) {
            if (!(fds[i].revents & (POLLIN | POLLHUP | POLLERR))) continue;
            ssize_t n = read(fds[i].fd, buf, sizeof buf);
            std::lock_guard lock(mutex_);
            if (n <= 0) {
                (i == 0 ? out_open : err_open) = false;
            } else {
                (i == 0 ? out_ : err_).append(buf, n);
            }
        }
    }
    std::lock_guard lock(mutex_);
    eof_ = true;
}

std::optional<size_t> VmProcess::wait_for_from(const std::string& needle, size_t from,
                                               std::chrono::milliseconds timeout) {
    auto deadline = std::chrono::steady_clock::now() + timeout;
    for (;;) {
        {
            std::lock_guard lock(mutex_);
            if (from <= out_.size()) {
                auto pos = out_.find(needle, from);
                if (pos != std::string::npos) return pos;
            }
            if (eof_) return std::nullopt;
        }
        if (std::chrono::steady_clock::now() > deadline) return std::nullopt;
        std::this_thread::sleep_for(20ms);
    }
}

bool VmProcess::wait_for(const std::string& needle, std::chrono::milliseconds timeout) {
    return wait_for_from(needle, 0, timeout).has_value();
}

void VmProcess::send(const std::string& text) {
    if (in_fd_ >= 0) (void)!write(in_fd_, text.data(), text.size());
}

void VmProcess::close_stdin() {
    if (in_fd_ >= 0) close(in_fd_);
    in_fd_ = -1;
}

void VmProcess::signal(int sig) { kill(pid_, sig); }

std::optional<int> VmProcess::wait_exit(std::chrono::milliseconds timeout) {
    if (exit_code_) return exit_code_;
    auto deadline = std::chrono::steady_clock::now() + timeout;
    for (;;) {
        int status = 0;
        pid_t r = waitpid(pid_, &status, WNOHANG);
        if (r == pid_) {
            exit_code_ = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
            if (reader_.joinable()) reader_.join();
            return exit_code_;
        }
        if (std::chrono::steady_clock::now() >= deadline) return std::nullopt;
        std::this_thread::sleep_for(20ms);
    }
}

std::string VmProcess::output() const {
    std::lock_guard lock(mutex_);
    return out_;
}

std::string VmProcess::errors() const {
    std::lock_guard lock(mutex_);
    return err_;
}

std::optional<std::string> line_after(const std::string& text, const std::string& prefix) {
    auto pos = text.find(prefix);
    if (pos == std::string::npos) return std::nullopt;
    pos += prefix.size();
    auto end = text.find_first_of("\r\n", pos);
    return text.substr(pos, end == std::string::npos ? std::string::npos : end - pos);
}

size_t count_of(const std::string& text, const std::string& needle) {
    size_t n = 0;
    for (size_t pos = text.find(needle); pos != std::string::npos; pos = text.find(needle, pos + 1)) ++n;
    return n;
}

bool kvm_available(std::string& why) {
    int fd = open("/dev/kvm", O_RDWR | O_CLOEXEC);
    if (fd < 0) {
        why = std::string("/dev/kvm is not usable here (") + strerror(errno) +
              "): integration tests need KVM; run 'kvmkit check'";
        return false;
    }
    close(fd);
    return true;
}

}  // namespace kvmkit::test
