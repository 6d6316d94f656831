#include "vmm/console.hpp"

#include <poll.h>
#include <unistd.h>

#include <cstring>

#include "base/log.hpp"

namespace kvmkit::vmm {

namespace {
constexpr uint8_t kEscape = 0x01;  // Ctrl-A
}

Console::Console(std::function<void()> on_quit) : on_quit_(std::move(on_quit)) { tty_ = ::isatty(STDIN_FILENO); }

Console::~Console() {
    stop_ = true;
    if (wake_) (void)wake_->write(1);
    if (thread_.joinable()) thread_.join();
    restore_terminal();
}

base::Result<void> Console::start() {
    wake_ = TRY(base::EventFd::create());
    if (tty_ && ::tcgetattr(STDIN_FILENO, &saved_) == 0) {
        termios raw = saved_;
        cfmakeraw(&raw);
        raw.c_oflag |= OPOST | ONLCR;  // keep output processing: the guest's "\n" still returns the carriage
        if (::tcsetattr(STDIN_FILENO, TCSANOW, &raw) == 0) raw_ = true;
    }
    thread_ = std::thread([this] { input_loop(); });
    return base::ok();
}

void Console::restore_terminal() {
    if (raw_) {
        ::tcsetattr(STDIN_FILENO, TCSANOW, &saved_);
        raw_ = false;
    }
}

void Console::attach(base::InputPort* port) {
    std::lock_guard lock(mutex_);
    if (port_) port_->set_space_callback(nullptr);
    port_ = port;
    if (port_) {
        port_->set_space_callback([this] { notify_space(); });
        push_pending();
    }
}

void Console::notify_space() {
    if (wake_) (void)wake_->write(1);
}

size_t Console::push_pending() {
    if (!port_ || pending_.empty()) return 0;
    size_t n = port_->accept_input(pending_);
    pending_.erase(pending_.begin(), pending_.begin() + n);
    return n;
}

void Console::write_output(std::span<const uint8_t> bytes) {
    size_t off = 0;
    while (off < bytes.size()) {
        ssize_t n = ::write(STDOUT_FILENO, bytes.data() + off, bytes.size() - off);
        if (n < 0) {
            if (errno == EINTR) continue;
            return;  // stdout gone (EPIPE): the guest keeps running, output is dropped
        }
        off += n;
    }
}

void Console::input_loop() {
    bool escape = false;
    bool eof = false;
    while (!stop_) {
        bool want_input;
        {
            std::lock_guard lock(mutex_);
            push_pending();
            // Read more only when what we have has been taken: the FIFO is the back-pressure.
            want_input = pending_.empty() && !eof;
        }
        pollfd fds[2] = {{wake_->fd(), POLLIN, 0}, {STDIN_FILENO, static_cast<short>(want_input ? POLLIN : 0), 0}};
        int r = ::poll(fds, want_input ? 2 : 1, -1);
        if (r < 0) {
            if (errno == EINTR) continue;
            LOG_WARN("console: poll: %s", strerror(errno));
            return;
        }
        if (fds[0].revents & POLLIN) (void)wake_->read();
        if (!want_input || !(fds[1].revents & (POLLIN | POLLHUP | POLLERR))) continue;
        uint8_t buf[256];
        ssize_t n = ::read(STDIN_FILENO, buf, sizeof buf);
        if (n <= 0) {
            if (n < 0 && errno == EINTR) continue;
            eof = true;  // stdin closed: the guest keeps running without input
            continue;
        }
        std::vector<uint8_t> in;
        for (ssize_t i = 0; i < n; ++i) {
            uint8_t c = buf[i];
            if (!raw_) {
                in.push_back(c);
                continue;
            }
            if (escape) {
                escape = false;
                if (c == 'x' || c == 'X') {
                    if (on_quit_) on_quit_();
                    return;
                }
                if (c == kEscape) in.push_back(c);
                continue;
            }
            if (c == kEscape) {
                escape = true;
                continue;
            }
            in.push_back(c);
        }
        std::lock_guard lock(mutex_);
        pending_.insert(pending_.end(), in.begin(), in.end());
    }
}

}  // namespace kvmkit::vmm
