// Blocking HTTP/1.1 client for UNIX sockets: one request per connection
// ("Connection: close"), the whole exchange bounded by a timeout.
#pragma once

#include <chrono>
#include <functional>
#include <optional>
#include <string>

#include "base/result.hpp"
#include "http/message.hpp"

namespace kvmkit::http {

struct ClientResponse {
    int status = 0;
    Headers headers;  // lower-case names
    std::string body;
    Json json;  // parsed body (null if empty or not JSON)

    bool ok() const { return status >= 200 && status < 300; }
    // The server's {"error": "..."} message, or "HTTP <status>" if it sent none.
    std::string error_message() const;
};

// Sends `method path` with `body` (serialized as JSON when given) and waits
// for the whole response. Fails on connect errors ("connect '/x.sock':
// Permission denied"), a timeout, or a malformed response; an HTTP error
// status is not a failure (check ClientResponse::ok()).
base::Result<ClientResponse> request(const std::string& socket_path, const std::string& method, const std::string& path,
                                     const std::optional<Json>& body = std::nullopt,
                                     std::chrono::milliseconds timeout = std::chrono::seconds(5));

// Streams a response body (e.g. newline-delimited JSON events): calls
// `on_line` for each line until the server closes, `on_line` returns false,
// or `idle_timeout` passes without data (zero: wait forever). A non-2xx
// status returns the response (with its body) without calling `on_line`.
base::Result<ClientResponse> stream(const std::string& socket_path, const std::string& method, const std::string& path,
                                    const std::optional<Json>& body,
                                    const std::function<bool(const std::string& line)>& on_line,
                                    std::chrono::milliseconds idle_timeout = std::chrono::milliseconds(0));

// Sends raw bytes and returns everything the server sends back until it
// closes the connection or `timeout` passes (for tests of malformed input).
base::Result<std::string> exchange_raw(const std::string& socket_path, const std::string& bytes,
                                       std::chrono::milliseconds timeout = std::chrono::seconds(5));

}  // namespace kvmkit::http
