#include "cli/daemon_client.hpp"

#include <cerrno>

#include "http/client.hpp"

namespace kvmkit::cli {

namespace {
bool permission_denied(const base::Error& e) {
    return e.errnum() == EACCES || e.errnum() == EPERM || e.message().find("Permission denied") != std::string::npos;
}
}  // namespace

base::Result<http::Json> DaemonClient::get(const std::string& path, std::chrono::milliseconds timeout) {
    return call("GET", path, std::nullopt, true, timeout);
}

base::Result<http::Json> DaemonClient::put(const std::string& path, const http::Json& body,
                                           std::chrono::milliseconds timeout) {
    return call("PUT", path, body, false, timeout);
}

base::Result<http::Json> DaemonClient::call(const std::string& method, const std::string& path,
                                            const std::optional<http::Json>& body, bool query,
                                            std::chrono::milliseconds timeout) {
    std::string socket = !connect_.empty() ? connect_ : read_only_ ? kDefaultReadOnlySocket : kDefaultSocket;
    auto r = http::request(socket, method, "/api/v1/" + path, body, timeout);
    if (!r && permission_denied(r.error()) && connect_.empty() && !read_only_ && query) {
        // virsh's habit: a user who may not change VMs can still look at them.
        socket = kDefaultReadOnlySocket;
        r = http::request(socket, method, "/api/v1/" + path, body, timeout);
    }
    used_ = socket;
    if (!r) {
        if (permission_denied(r.error()))
            return base::fail("permission denied: cannot connect to kvmkitd at " + socket +
                              (query ? "" : " (changes need root)"));
        if (r.error().errnum() == ENOENT || r.error().errnum() == ECONNREFUSED)
            return base::fail("cannot connect to kvmkitd at " + socket + ": is kvmkitd running? (" +
                              r.error().message() + ")");
        return base::fail("kvmkitd at " + socket + ": " + r.error().message());
    }
    if (!r->ok()) return base::fail(r->error_message());
    return r->json.is_null() ? http::Json::object() : r->json;
}

}  // namespace kvmkit::cli
