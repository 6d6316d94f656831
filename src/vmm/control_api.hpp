// The control API of kvmkit-vmm (docs/control-api.md, docs/api/kvmkit-vmm.yaml):
// Cloud Hypervisor's endpoint names over HTTP/1.1 + JSON on a UNIX socket.
// This file only maps HTTP to a ControlTarget; VmmControl (vmm_control.hpp)
// is the real target, unit tests use a fake one.
#pragma once

#include <functional>
#include <string>

#include "http/server.hpp"

namespace kvmkit::vmm {

// The outcome of a state change: 204 on success, else a status and a message.
struct ControlResult {
    int status = 204;
    std::string error;

    static ControlResult ok() { return {}; }
    static ControlResult fail(int status, std::string message) { return {status, std::move(message)}; }
};

class ControlTarget {
public:
    virtual ~ControlTarget() = default;

    virtual http::Json ping() = 0;      // {"version", "build_version", "pid"}
    virtual http::Json info() = 0;      // {"state", "config", "memory", "cpus", ...}
    virtual http::Json counters() = 0;  // {"exits": {...}, "vcpus": [...], "devices": [...]}
    virtual ControlResult pause() = 0;
    virtual ControlResult resume() = 0;
    virtual ControlResult power_button() = 0;
    virtual ControlResult reboot() = 0;
    // Stops the VM (forcibly, no guest shutdown) and makes the process exit.
    // `stopped` runs (on any thread) once the VM is down; the process exits
    // after the answer has been written. `vmm` tells vmm.shutdown from vm.shutdown.
    virtual void shutdown(bool vmm, std::function<void(ControlResult)> stopped) = 0;
    // Called once the answer to a shutdown has been written to the client.
    virtual void shutdown_answered() = 0;
};

// The routes under /api/v1/. Handlers run on the server's thread; pause and
// friends may block it briefly (up to the vCPU park time-out).
http::Router make_control_router(ControlTarget& target);

}  // namespace kvmkit::vmm
