// The VM's console on the process's stdin/stdout: guest output is written to
// stdout as is; stdin is fed to the attached serial port. On a terminal the
// console switches it to raw mode and reads an escape: Ctrl-A x quits,
// Ctrl-A Ctrl-A sends Ctrl-A (as in QEMU). Otherwise (pipes) bytes pass
// through untouched, so a script can drive the guest.
//
// With a socket (start_socket, --console-socket) the console lives on a UNIX
// socket instead, so it outlives whoever started the VM: one client at a
// time gets the output and its bytes go to the guest, untouched (no escape:
// detaching is the client's business); a second client is told the console
// is busy and closed. The last kConsoleHistory bytes of output are kept and
// replayed to each client that attaches. stdin/stdout are not used.
#pragma once

#include <termios.h>

#include <atomic>
#include <functional>
#include <mutex>
#include <optional>
#include <vector>
#include <span>
#include <string>
#include <thread>

#include "base/event_fd.hpp"
#include "base/input_port.hpp"
#include "base/unique_fd.hpp"
#include "vmm/byte_ring.hpp"

namespace kvmkit::vmm {

class Console {
public:
    explicit Console(std::function<void()> on_quit);
    ~Console();

    static constexpr size_t kConsoleHistory = 64 * 1024;
    static constexpr size_t kClientBacklog = 1024 * 1024;  // output queued for a slow client; older bytes drop

    // Starts reading stdin. Call once (this or start_socket).
    base::Result<void> start();
    // Listens on `path` (mode 0600; a stale socket is replaced) instead of stdin/stdout.
    base::Result<void> start_socket(const std::string& path);
    void attach(base::InputPort* port);  // where input goes; nullptr detaches
    void write_output(std::span<const uint8_t> bytes);
    bool is_tty() const { return tty_; }
    void restore_terminal();

private:
    void input_loop();
    void socket_loop();
    void accept_client();
    bool read_client();   // false: the client left
    bool flush_client();  // false: the client left
    void drop_client();
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

    // Socket mode.
    std::string socket_path_;
    base::UniqueFd listen_fd_;
    base::UniqueFd client_fd_;      // the console thread's; -1 when nobody is attached
    std::mutex out_mutex_;          // guards history_, client_out_, has_client_; a leaf
    ByteRing history_{kConsoleHistory};
    std::string client_out_;        // output not yet written to the client
    bool has_client_ = false;
    uint64_t dropped_ = 0;
};

}  // namespace kvmkit::vmm
