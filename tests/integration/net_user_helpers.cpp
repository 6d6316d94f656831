#include "net_user_helpers.hpp"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cstring>

namespace kvmkit::test {

namespace {

sockaddr_in loopback(uint16_t port) {
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    a.sin_port = htons(port);
    return a;
}

// A listening socket on 127.0.0.1 at a kernel-chosen port.
base::UniqueFd listen_loopback(uint16_t& port) {
    base::UniqueFd fd(socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0));
    auto a = loopback(0);
    if (bind(fd.get(), reinterpret_cast<sockaddr*>(&a), sizeof a) < 0 || listen(fd.get(), 8) < 0) return {};
    socklen_t len = sizeof a;
    getsockname(fd.get(), reinterpret_cast<sockaddr*>(&a), &len);
    port = ntohs(a.sin_port);
    return fd;
}

bool readable(int fd, int ms) {
    pollfd p{fd, POLLIN, 0};
    return ::poll(&p, 1, ms) == 1;
}

}  // namespace

uint16_t free_loopback_port() {
    uint16_t port = 0;
    listen_loopback(port);  // closed again at once
    return port;
}

std::string loopback_exchange(uint16_t port, const std::string& line, std::chrono::milliseconds timeout) {
    auto deadline = std::chrono::steady_clock::now() + timeout;
    while (std::chrono::steady_clock::now() < deadline) {
        base::UniqueFd c(socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0));
        auto a = loopback(port);
        if (connect(c.get(), reinterpret_cast<sockaddr*>(&a), sizeof a) == 0 &&
            write(c.get(), line.data(), line.size()) == static_cast<ssize_t>(line.size())) {
            std::string got;
            char ch;
            while (readable(c.get(), 10000) && read(c.get(), &ch, 1) == 1) {
                got += ch;
                if (ch == '\n') return got;
            }
            if (!got.empty()) return got;
        }
        std::this_thread::sleep_for(std::chrono::milliseconds(200));
    }
    return {};
}

LoopbackLineServer::LoopbackLineServer(std::string reply) : reply_(std::move(reply)) {
    fd_ = listen_loopback(port_);
    thread_ = std::thread([this] { run(); });
}

LoopbackLineServer::~LoopbackLineServer() {
    stop_ = true;
    thread_.join();
}

void LoopbackLineServer::run() {
    while (!stop_) {
        if (!readable(fd_.get(), 100)) continue;
        sockaddr_in peer{};
        socklen_t len = sizeof peer;
        base::UniqueFd c(accept4(fd_.get(), reinterpret_cast<sockaddr*>(&peer), &len, SOCK_CLOEXEC));
        if (!c.valid()) continue;
        std::string line;
        char ch;
        while (readable(c.get(), 10000) && read(c.get(), &ch, 1) == 1 && ch != '\n') line += ch;
        (void)!write(c.get(), reply_.data(), reply_.size());
        char buf[16];
        inet_ntop(AF_INET, &peer.sin_addr, buf, sizeof buf);
        std::lock_guard lock(mutex_);
        if (!got_) {
            line_ = line;
            peer_ = buf;
            got_ = true;
            cv_.notify_all();
        }
        // Let the guest read the reply before the close.
        readable(c.get(), 2000);
    }
}

std::string LoopbackLineServer::received_line(std::chrono::milliseconds timeout) {
    std::unique_lock lock(mutex_);
    cv_.wait_for(lock, timeout, [&] { return got_; });
    return line_;
}

std::string LoopbackLineServer::peer_address() {
    std::lock_guard lock(mutex_);
    return peer_;
}

LoopbackHttpServer::LoopbackHttpServer(std::vector<uint8_t> body) : body_(std::move(body)) {
    fd_ = listen_loopback(port_);
    thread_ = std::thread([this] { run(); });
}

LoopbackHttpServer::~LoopbackHttpServer() {
    stop_ = true;
    thread_.join();
}

void LoopbackHttpServer::run() {
    while (!stop_) {
        if (!readable(fd_.get(), 100)) continue;
        base::UniqueFd c(accept4(fd_.get(), nullptr, nullptr, SOCK_CLOEXEC));
        if (!c.valid()) continue;
        std::string req;
        char buf[1024];
        while (req.find("\r\n\r\n") == std::string::npos && readable(c.get(), 30000)) {
            ssize_t n = read(c.get(), buf, sizeof buf);
            if (n <= 0) break;
            req.append(buf, static_cast<size_t>(n));
        }
        if (req.rfind("GET ", 0) != 0) continue;
        ++requests_;
        std::string head = "HTTP/1.0 200 OK\r\nContent-Type: application/octet-stream\r\nContent-Length: " +
                           std::to_string(body_.size()) + "\r\nConnection: close\r\n\r\n";
        std::vector<uint8_t> out(head.begin(), head.end());
        out.insert(out.end(), body_.begin(), body_.end());
        size_t done = 0;
        while (done < out.size() && !stop_) {
            pollfd p{c.get(), POLLOUT, 0};
            if (::poll(&p, 1, 100) != 1) continue;
            ssize_t n = write(c.get(), out.data() + done, out.size() - done);
            if (n <= 0) break;
            done += static_cast<size_t>(n);
        }
        shutdown(c.get(), SHUT_WR);
        readable(c.get(), 5000);  // until the client closes
    }
}

}  // namespace kvmkit::test
