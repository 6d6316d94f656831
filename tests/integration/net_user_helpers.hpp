// Host-side peers for user-mode network tests: small servers and clients on
// 127.0.0.1 only (the guest sees the host's loopback as 10.0.2.2).
#pragma once

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "base/unique_fd.hpp"

namespace kvmkit::test {

// A port on 127.0.0.1 that was free a moment ago.
uint16_t free_loopback_port();

// Connects to 127.0.0.1:port (retrying until `timeout`), sends `line` and
// returns what comes back up to and including the first '\n' ("" on failure).
std::string loopback_exchange(uint16_t port, const std::string& line, std::chrono::milliseconds timeout);

// Accepts connections on 127.0.0.1 (a kernel-chosen port); for each one reads
// a line, records it, and answers `reply`.
class LoopbackLineServer {
public:
    explicit LoopbackLineServer(std::string reply);
    ~LoopbackLineServer();
    uint16_t port() const { return port_; }
    // The first line a client sent (without '\n'), waiting up to `timeout`.
    std::string received_line(std::chrono::milliseconds timeout);
    std::string peer_address();  // of the first client

private:
    void run();
    base::UniqueFd fd_;
    uint16_t port_ = 0;
    std::string reply_;
    std::thread thread_;
    std::atomic<bool> stop_{false};
    std::mutex mutex_;
    std::condition_variable cv_;
    std::string line_, peer_;
    bool got_ = false;
};

// A minimal HTTP/1.0 server on 127.0.0.1 serving `body` for any GET; counts requests.
class LoopbackHttpServer {
public:
    explicit LoopbackHttpServer(std::vector<uint8_t> body);
    ~LoopbackHttpServer();
    uint16_t port() const { return port_; }
    int requests() const { return requests_; }

private:
    void run();
    base::UniqueFd fd_;
    uint16_t port_ = 0;
    std::vector<uint8_t> body_;
    std::thread thread_;
    std::atomic<bool> stop_{false};
    std::atomic<int> requests_{0};
};

}  // namespace kvmkit::test
