// VmProcess: runs `kvmkit run ...` as a child with its console on pipes, so a
// test can read what the guest prints, type into it, and see how it exits.
#pragma once

#include <sys/types.h>

#include <chrono>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <vector>

namespace kvmkit::test {

using namespace std::chrono_literals;

class VmProcess {
public:
    // Starts kvmkit with `args` after "run". The child gets its own process group.
    // With `wrapper` (e.g. {"ip", "netns", "exec", NS}), runs `wrapper... kvmkit run args...`;
    // the wrapper must exec the command in its own process (ip netns exec does).
    explicit VmProcess(std::vector<std::string> args, std::vector<std::string> extra_env = {},
                       std::vector<std::string> wrapper = {});
    ~VmProcess();

    // Waits until the console output contains `needle`; returns false on
    // timeout or when the process exited first.
    bool wait_for(const std::string& needle, std::chrono::milliseconds timeout);
    // As wait_for, searching only output after position `from`; returns the match position.
    std::optional<size_t> wait_for_from(const std::string& needle, size_t from, std::chrono::milliseconds timeout);
    void send(const std::string& text);
    void close_stdin();
    void signal(int sig);
    // Waits for exit; returns the exit code (128+signal when killed), nullopt on timeout.
    std::optional<int> wait_exit(std::chrono::milliseconds timeout);

    std::string output() const;   // guest console (stdout)
    std::string errors() const;   // VMM log (stderr)
    pid_t pid() const { return pid_; }

private:
    void pump();  // reader thread: drains stdout/stderr into the buffers

    pid_t pid_ = -1;
    int in_fd_ = -1, out_fd_ = -1, err_fd_ = -1;
    std::thread reader_;
    mutable std::mutex mutex_;
    std::string out_, err_;
    bool eof_ = false;
    std::optional<int> exit_code_;
};

// The value of "KT: <key> ..." style fields: finds `prefix` in `text` and returns the rest of that line.
std::optional<std::string> line_after(const std::string& text, const std::string& prefix);
// Number of occurrences of `needle`.
size_t count_of(const std::string& text, const std::string& needle);

// True when /dev/kvm can be opened; otherwise sets `why`.
bool kvm_available(std::string& why);

#define REQUIRE_KVM()                                                      \
    do {                                                                   \
        std::string why_;                                                  \
        if (!::kvmkit::test::kvm_available(why_)) GTEST_SKIP() << why_;    \
    } while (0)

}  // namespace kvmkit::test
