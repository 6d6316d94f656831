#include "vmm/console.hpp"

#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cstring>

#include "base/log.hpp"
#include "http/unix_socket.hpp"

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
    if (listen_fd_) ::unlink(socket_path_.c_str());
}

base::Result<void> Console::start_socket(const std::string& path) {
    listen_fd_ = TRY_CTX(http::listen_unix(path), "--console-socket");
    socket_path_ = path;
    tty_ = false;
    wake_ = TRY(base::EventFd::create());
    thread_ = std::thread([this] { socket_loop(); });
    return base::ok();
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
    if (listen_fd_) {
        // Never blocks the vCPU: bytes are queued and the console thread writes them.
        bool wake = false;
        {
            std::lock_guard lock(out_mutex_);
            history_.append(bytes);
            if (has_client_) {
                wake = client_out_.empty();
                client_out_.append(reinterpret_cast<const char*>(bytes.data()), bytes.size());
                if (client_out_.size() > kClientBacklog) {
                    size_t drop = client_out_.size() - kClientBacklog;
                    client_out_.erase(0, drop);
                    dropped_ += drop;
                }
            }
        }
        if (wake) (void)wake_->write(1);
        return;
    }
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

void Console::socket_loop() {
    while (!stop_) {
        bool want_input, want_output;
        {
            std::lock_guard lock(mutex_);
            push_pending();
            want_input = client_fd_ && pending_.empty();  // back-pressure as on stdin
        }
        {
            std::lock_guard lock(out_mutex_);
            want_output = client_fd_ && !client_out_.empty();
        }
        pollfd fds[3] = {{wake_->fd(), POLLIN, 0},
                         {listen_fd_.get(), POLLIN, 0},
                         {client_fd_.get(), static_cast<short>((want_input ? POLLIN : 0) | (want_output ? POLLOUT : 0)), 0}};
        int r = ::poll(fds, client_fd_ ? 3 : 2, -1);
        if (r < 0) {
            if (errno == EINTR) continue;
            LOG_WARN("console: poll: %s", strerror(errno));
            return;
        }
        if (fds[0].revents & POLLIN) (void)wake_->read();
        if (fds[1].revents & POLLIN) accept_client();
        if (!client_fd_ || fds[2].fd != client_fd_.get()) continue;
        short rev = fds[2].revents;
        if ((rev & POLLOUT) && !flush_client()) continue;
        if ((rev & POLLIN) && !read_client()) continue;
        if ((rev & (POLLHUP | POLLERR)) && !(rev & POLLIN)) drop_client();
    }
}

void Console::accept_client() {
    int fd = ::accept4(listen_fd_.get(), nullptr, nullptr, SOCK_NONBLOCK | SOCK_CLOEXEC);
    if (fd < 0) return;
    base::UniqueFd conn(fd);
    if (client_fd_) {
        static const char kBusy[] = "kvmkit: console busy: another client is attached\r\n";
        (void)::send(fd, kBusy, sizeof(kBusy) - 1, MSG_NOSIGNAL | MSG_DONTWAIT);
        LOG_INFO("console: refused a second client");
        return;
    }
    client_fd_ = std::move(conn);
    std::lock_guard lock(out_mutex_);
    client_out_ = history_.contents();  // replay the recent output
    has_client_ = true;
    LOG_INFO("console: client attached (%zu bytes of history)", client_out_.size());
}

bool Console::read_client() {
    uint8_t buf[256];
    ssize_t n = ::recv(client_fd_.get(), buf, sizeof buf, MSG_DONTWAIT);
    if (n < 0 && (errno == EINTR || errno == EAGAIN)) return true;
    if (n <= 0) {
        drop_client();
        return false;
    }
    std::lock_guard lock(mutex_);
    pending_.insert(pending_.end(), buf, buf + n);
    return true;
}

bool Console::flush_client() {
    std::lock_guard lock(out_mutex_);
    while (!client_out_.empty()) {
        ssize_t n = ::send(client_fd_.get(), client_out_.data(), client_out_.size(), MSG_NOSIGNAL | MSG_DONTWAIT);
        if (n > 0) {
            client_out_.erase(0, size_t(n));
            continue;
        }
        if (n < 0 && errno == EINTR) continue;
        if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) return true;
        has_client_ = false;  // EPIPE/ECONNRESET: gone
        client_out_.clear();
        client_fd_.reset();
        LOG_INFO("console: client detached");
        return false;
    }
    return true;
}

void Console::drop_client() {
    std::lock_guard lock(out_mutex_);
    has_client_ = false;
    client_out_.clear();
    client_fd_.reset();
    if (dropped_) LOG_WARN("console: the client was too slow; %llu bytes of output were dropped", (unsigned long long)dropped_);
    dropped_ = 0;
    LOG_INFO("console: client detached");
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
