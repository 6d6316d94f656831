#include "daemon/vmm_control.hpp"

#include "http/client.hpp"

namespace kvmkit::daemon {

namespace {
base::Result<http::ClientResponse> call(const std::string& socket, const std::string& method,
                                        const std::string& endpoint, std::chrono::milliseconds timeout) {
    auto r = TRY(http::request(socket, method, "/api/v1/" + endpoint, std::nullopt, timeout));
    if (!r.ok()) return base::fail(endpoint + ": " + r.error_message());
    return r;
}
}  // namespace

base::Result<void> VmmControl::ping() {
    TRY(call(socket_, "GET", "vmm.ping", timeout_));
    return base::ok();
}

base::Result<nlohmann::json> VmmControl::info() {
    return TRY(call(socket_, "GET", "vm.info", timeout_)).json;
}

base::Result<void> VmmControl::put(const std::string& endpoint) {
    TRY(call(socket_, "PUT", endpoint, timeout_));
    return base::ok();
}

}  // namespace kvmkit::daemon
