// The VM's console on the process's stdin/stdout: guest output is written to
// stdout as is; stdin is fed to the attached serial port. On a terminal the
// console switches it to raw mode and reads an escape: Ctrl-A x quits,
// Ctrl-A Ctrl-A sends Ctrl-A (as in QEMU). Otherwise (pipes) bytes pass
// through untouched, so a script can drive the guest.
#pragma once

#include <termios.h>

#include <atomic>
#include <functional>
#include <mutex>
#include <optional>
#include <vector>
#include <span>
#include <thread>

#include "base/event_fd.hpp"
#include "base/input_port.hpp"

namespace kvmkit::vmm {

class Console {
public:
    explicit Console(std::function<void()> on_quit);
    ~Console();

    // Starts reading stdin. Call once.
    base::Result<void> start();
    void attach(base::InputPort* port);  // where input goes; nullptr detaches
    void write_output(std::span<const uint8_t> bytes);
    bool is_tty() const { return tty_; }
    void restore_terminal();

private:
    void input_loop();
    void notify_space();
    size_t push_pending();  // locked

    std::function<void()> on_quit_;
    bool tty_ = false;
    bool raw_ = false;
    termios saved_{};
    std::optional<base::EventFd> wake_;
    std::thread thread_;
    std::atomic<bool> stop_{false};

    std::mutex mutex_;  // guards port_ and pending_; taken before the port's own lock
    base::InputPort* port_ = nullptr;
    std::vector<uint8_t> pending_;
};

}  // namespace kvmkit::vmm
