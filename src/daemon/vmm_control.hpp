// VmmControl: kvmkitd's side of one VMM's control socket (HTTP/1.1 + JSON,
// Cloud Hypervisor's endpoint names under /api/v1/). Blocking, with a
// time-out on every call so a wedged VMM cannot wedge the daemon.
#pragma once

#include <chrono>
#include <nlohmann/json.hpp>
#include <string>

#include "base/result.hpp"

namespace kvmkit::daemon {

class VmmControl {
public:
    explicit VmmControl(std::string socket_path, std::chrono::milliseconds timeout = std::chrono::milliseconds(10000))
        : socket_(std::move(socket_path)), timeout_(timeout) {}

    base::Result<void> ping();                            // GET vmm.ping
    base::Result<nlohmann::json> info();                  // GET vm.info
    base::Result<void> put(const std::string& endpoint);  // PUT vm.pause, vm.resume, vm.power-button, vm.reboot, ...

private:
    std::string socket_;
    std::chrono::milliseconds timeout_;
};

}  // namespace kvmkit::daemon
