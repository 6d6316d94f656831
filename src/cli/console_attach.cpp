// `kvmkit console`: the terminal <-> the VM's console socket (kvmkit-vmm
// --console-socket; recent output is replayed on attach). On a terminal,
// raw mode so that every key reaches the guest; Ctrl-] (0x1d) detaches, as
// in virsh. Without a terminal (scripts, tests) stdin is relayed as is and
// the end of stdin stops only the input direction.
#include <poll.h>
#include <termios.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>

#include "cli/verb_table.hpp"
#include "http/unix_socket.hpp"

namespace kvmkit::cli {

namespace {
constexpr char kDetach = 0x1d;  // Ctrl-]

bool write_all(int fd, const char* p, size_t n) {
    while (n > 0) {
        ssize_t w = ::write(fd, p, n);
        if (w < 0 && errno == EINTR) continue;
        if (w <= 0) return false;
        p += w;
        n -= static_cast<size_t>(w);
    }
    return true;
}

class RawTerminal {
public:
    RawTerminal() {
        if (!::isatty(0) || ::tcgetattr(0, &saved_) < 0) return;
        termios raw = saved_;
        ::cfmakeraw(&raw);
        active_ = ::tcsetattr(0, TCSANOW, &raw) == 0;
    }
    ~RawTerminal() {
        if (active_) ::tcsetattr(0, TCSANOW, &saved_);
    }

private:
    termios saved_{};
    bool active_ = false;
};
}  // namespace

int attach_console(const std::string& name, const std::string& socket_path) {
    if (socket_path.empty()) {
        fprintf(stderr, "kvmkit: error: domain '%s' is not running\n", name.c_str());
        return 1;
    }
    auto sock = http::connect_unix(socket_path, std::chrono::seconds(5));
    if (!sock) {
        fprintf(stderr, "kvmkit: error: console of '%s': %s\n", name.c_str(), sock.error().message().c_str());
        return 1;
    }
    printf("Connected to domain '%s'\nEscape character is ^] (Ctrl + ])\n", name.c_str());
    fflush(stdout);
    int result = 0;
    {
        RawTerminal raw;
        bool stdin_open = true;
        char buf[4096];
        for (;;) {
            pollfd fds[2] = {{sock->get(), POLLIN, 0}, {stdin_open ? 0 : -1, POLLIN, 0}};
            if (::poll(fds, 2, -1) < 0) {
                if (errno == EINTR) continue;
                result = 1;
                break;
            }
            if (fds[0].revents & (POLLIN | POLLHUP | POLLERR)) {
                ssize_t n = ::read(sock->get(), buf, sizeof buf);
                if (n < 0 && errno == EINTR) continue;
                if (n <= 0) break;  // the VM stopped (or another client took over)
                if (!write_all(1, buf, static_cast<size_t>(n))) break;
            }
            if (stdin_open && (fds[1].revents & (POLLIN | POLLHUP | POLLERR))) {
                ssize_t n = ::read(0, buf, sizeof buf);
                if (n < 0 && errno == EINTR) continue;
                if (n <= 0) {
                    stdin_open = false;  // keep relaying output until the VM stops or Ctrl-]
                    continue;
                }
                char* esc = static_cast<char*>(std::memchr(buf, kDetach, static_cast<size_t>(n)));
                size_t len = esc ? static_cast<size_t>(esc - buf) : static_cast<size_t>(n);
                if (len > 0 && !write_all(sock->get(), buf, len)) break;
                if (esc) break;
            }
        }
    }
    printf("\n");
    return result;
}

}  // namespace kvmkit::cli
