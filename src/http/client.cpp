#include "http/client.hpp"

#include <poll.h>
#include <sys/socket.h>

#include <cerrno>
#include <charconv>

#include "base/unique_fd.hpp"
#include "http/parser.hpp"
#include "http/unix_socket.hpp"

namespace kvmkit::http {

namespace {

using Clock = std::chrono::steady_clock;

constexpr size_t kMaxResponseBytes = 64 * 1024 * 1024;

// Waits for `events` on fd until `deadline` (time_point::max(): forever).
base::Result<void> wait_for(int fd, short events, Clock::time_point deadline, const std::string& what) {
    for (;;) {
        int ms = -1;
        if (deadline != Clock::time_point::max()) {
            auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now()).count();
            if (left <= 0) return base::fail(what + ": timed out");
            ms = int(std::min<long long>(left, 60'000));
        }
        pollfd p{fd, events, 0};
        int n = poll(&p, 1, ms);
        if (n < 0 && errno == EINTR) continue;
        if (n < 0) return base::fail_errno(what + ": poll");
        if (n > 0) return base::ok();
    }
}

base::Result<void> send_all(int fd, std::string_view data, Clock::time_point deadline, const std::string& what) {
    while (!data.empty()) {
        ssize_t n = send(fd, data.data(), data.size(), MSG_NOSIGNAL | MSG_DONTWAIT);
        if (n > 0) {
            data.remove_prefix(size_t(n));
            continue;
        }
        if (n < 0 && errno == EINTR) continue;
        if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
            TRY(wait_for(fd, POLLOUT, deadline, what));
            continue;
        }
        return base::fail_errno(what + ": send");
    }
    return base::ok();
}

// Reads some bytes; returns 0 at end of stream. ECONNRESET counts as end of
// stream: a server that closes with our unread input pending resets us, but
// its response was queued before.
base::Result<size_t> recv_some(int fd, std::string& into, Clock::time_point deadline, const std::string& what) {
    for (;;) {
        char buf[8192];
        ssize_t n = recv(fd, buf, sizeof(buf), MSG_DONTWAIT);
        if (n >= 0) {
            into.append(buf, size_t(n));
            return size_t(n);
        }
        if (errno == EINTR) continue;
        if (errno == ECONNRESET) return size_t(0);
        if (errno != EAGAIN && errno != EWOULDBLOCK) return base::fail_errno(what + ": recv");
        TRY(wait_for(fd, POLLIN, deadline, what));
    }
}

std::string build_request(const std::string& method, const std::string& path, const std::optional<Json>& body) {
    std::string text = body ? body->dump() : std::string();
    std::string out = method + " " + path + " HTTP/1.1\r\nHost: localhost\r\nAccept: application/json\r\n";
    if (body) out += "Content-Type: application/json\r\n";
    if (body || method == "PUT" || method == "POST") out += "Content-Length: " + std::to_string(text.size()) + "\r\n";
    out += "Connection: close\r\n\r\n" + text;
    return out;
}

// Reads until a complete head (skipping 1xx interim responses) is buffered.
base::Result<ResponseHead> read_head(int fd, std::string& buffer, Clock::time_point deadline, const std::string& what) {
    for (;;) {
        size_t end = find_head_end(buffer);
        if (end != std::string::npos) {
            ResponseHead head = TRY_CTX(parse_response_head(std::string_view(buffer).substr(0, end)), what);
            buffer.erase(0, end);
            if (head.status >= 200) return head;
            continue;  // 100 Continue and friends
        }
        if (buffer.size() > 1024 * 1024) return base::fail(what + ": response head too large");
        size_t n = TRY(recv_some(fd, buffer, deadline, what));
        if (n == 0) {
            if (buffer.empty()) return base::fail(what + ": the server closed the connection without a response");
            return base::fail(what + ": truncated response head");
        }
    }
}

}  // namespace

std::string ClientResponse::error_message() const {
    if (json.is_object() && json.contains("error") && json["error"].is_string())
        return json["error"].get<std::string>();
    return "HTTP " + std::to_string(status);
}

base::Result<ClientResponse> request(const std::string& socket_path, const std::string& method, const std::string& path,
                                     const std::optional<Json>& body, std::chrono::milliseconds timeout) {
    auto deadline = Clock::now() + timeout;
    std::string what = method + " " + path;
    base::UniqueFd fd = TRY(connect_unix(socket_path, timeout, /*nonblocking=*/true));
    TRY(send_all(fd.get(), build_request(method, path, body), deadline, what));

    std::string buffer;
    ResponseHead head = TRY(read_head(fd.get(), buffer, deadline, what));
    ClientResponse r;
    r.status = head.status;
    r.headers = std::move(head.headers);
    std::optional<size_t> length;
    if (auto it = r.headers.find("content-length"); it != r.headers.end()) {
        size_t n = 0;
        auto [end, ec] = std::from_chars(it->second.data(), it->second.data() + it->second.size(), n);
        if (ec != std::errc() || end != it->second.data() + it->second.size())
            return base::fail(what + ": malformed Content-Length in response");
        length = n;
    } else if (r.status == 204 || r.status == 304) {
        length = 0;
    }
    for (;;) {
        if (length && buffer.size() >= *length) break;
        if (buffer.size() > kMaxResponseBytes) return base::fail(what + ": response too large");
        size_t n = TRY(recv_some(fd.get(), buffer, deadline, what));
        if (n == 0) {
            if (length) return base::fail(what + ": truncated response body");
            break;  // body delimited by close
        }
    }
    r.body = length ? buffer.substr(0, *length) : buffer;
    if (!r.body.empty()) {
        r.json = Json::parse(r.body, nullptr, /*allow_exceptions=*/false);
        if (r.json.is_discarded()) r.json = nullptr;
    }
    return r;
}

base::Result<ClientResponse> stream(const std::string& socket_path, const std::string& method, const std::string& path,
                                    const std::optional<Json>& body,
                                    const std::function<bool(const std::string& line)>& on_line,
                                    std::chrono::milliseconds idle_timeout) {
    std::string what = method + " " + path;
    auto next_deadline = [&] {
        return idle_timeout.count() > 0 ? Clock::now() + idle_timeout : Clock::time_point::max();
    };
    base::UniqueFd fd = TRY(connect_unix(socket_path, std::chrono::seconds(5), /*nonblocking=*/true));
    TRY(send_all(fd.get(), build_request(method, path, body), Clock::now() + std::chrono::seconds(5), what));
    std::string buffer;
    ResponseHead head = TRY(read_head(fd.get(), buffer, next_deadline(), what));
    ClientResponse r;
    r.status = head.status;
    r.headers = std::move(head.headers);
    if (!r.ok()) {
        // Error responses carry a normal Content-Length body.
        while (TRY(recv_some(fd.get(), buffer, Clock::now() + std::chrono::seconds(5), what)) > 0) {
            if (buffer.size() > kMaxResponseBytes) break;
        }
        r.body = buffer;
        r.json = Json::parse(r.body, nullptr, false);
        if (r.json.is_discarded()) r.json = nullptr;
        return r;
    }
    for (;;) {
        size_t nl;
        while ((nl = buffer.find('\n')) != std::string::npos) {
            std::string line = buffer.substr(0, nl);
            buffer.erase(0, nl + 1);
            if (!line.empty() && line.back() == '\r') line.pop_back();
            if (!on_line(line)) return r;
        }
        if (buffer.size() > kMaxResponseBytes) return base::fail(what + ": stream line too long");
        if (TRY(recv_some(fd.get(), buffer, next_deadline(), what)) == 0) {
            if (!buffer.empty()) on_line(buffer);
            return r;
        }
    }
}

base::Result<std::string> exchange_raw(const std::string& socket_path, const std::string& bytes,
                                       std::chrono::milliseconds timeout) {
    auto deadline = Clock::now() + timeout;
    base::UniqueFd fd = TRY(connect_unix(socket_path, timeout, /*nonblocking=*/true));
    std::string out;
    // The server may answer (and close) before taking all of a huge request.
    auto sent = send_all(fd.get(), bytes, deadline, "raw exchange");
    if (!sent && sent.error().errnum() != EPIPE && sent.error().errnum() != ECONNRESET) return sent.error();
    for (;;) {
        auto n = recv_some(fd.get(), out, deadline, "raw exchange");
        if (!n) {
            if (!out.empty()) return out;  // timed out after a keep-alive answer
            return n.error();
        }
        if (*n == 0) return out;
    }
}

}  // namespace kvmkit::http
