// DaemonClient: the CLI's connection to kvmkitd. Picks the socket (--connect,
// else the read-write socket, else — for queries by a user who may not use
// the read-write socket — the read-only one) and turns transport and HTTP
// errors into one-line messages.
#pragma once

#include <chrono>
#include <optional>
#include <string>

#include "base/result.hpp"
#include "http/message.hpp"

namespace kvmkit::cli {

constexpr const char* kDefaultSocket = "/run/kvmkit/kvmkitd.sock";
constexpr const char* kDefaultReadOnlySocket = "/run/kvmkit/kvmkitd-ro.sock";

class DaemonClient {
public:
    // `connect`: an explicit socket (--connect), or "" for the defaults.
    // `read_only`: --readonly, use the read-only socket.
    DaemonClient(std::string connect, bool read_only) : connect_(std::move(connect)), read_only_(read_only) {}

    // GET /api/v1/<path> (a query: may fall back to the read-only socket).
    base::Result<http::Json> get(const std::string& path, std::chrono::milliseconds timeout = std::chrono::seconds(10));
    // PUT /api/v1/<path> with a JSON body (a change: read-write socket).
    base::Result<http::Json> put(const std::string& path, const http::Json& body,
                                 std::chrono::milliseconds timeout = std::chrono::seconds(120));

    const std::string& socket_used() const { return used_; }

private:
    base::Result<http::Json> call(const std::string& method, const std::string& path,
                                  const std::optional<http::Json>& body, bool query, std::chrono::milliseconds timeout);
    std::string connect_;
    bool read_only_;
    std::string used_;
};

}  // namespace kvmkit::cli
