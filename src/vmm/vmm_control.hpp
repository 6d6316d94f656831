// The process-wide control state of kvmkit-vmm: which Machine runs now (a
// reset replaces it), and the control API's view of it. It outlives every
// Machine, so the API server keeps serving across guest resets.
//
// Lock order: VmmControl::mutex_ before Machine's locks. The mutex is held
// across calls into the Machine: vmm_main detaches a Machine (under the
// mutex) before destroying it, so a call never sees a dead one.
#pragma once

#include <condition_variable>
#include <functional>
#include <mutex>
#include <string>
#include <vector>

#include "vmm/config.hpp"
#include "vmm/control_api.hpp"
#include "vmm/machine.hpp"

namespace kvmkit::vmm {

class VmmControl : public ControlTarget {
public:
    explicit VmmControl(VmConfig config) : config_(std::move(config)) {}

    // The main loop's side. attach() returns false when the process is
    // terminating (a signal or an API shutdown came while no Machine ran).
    bool attach(Machine* machine);
    void detach();
    // Signal thread, console escape: stop the current Machine and terminate.
    void stop(StopReason reason, const std::string& why);
    // At process exit: answers pending shutdown requests and waits (at most
    // 2 s) until the answers are written.
    void finish();

    // ControlTarget
    http::Json ping() override;
    http::Json info() override;
    http::Json counters() override;
    ControlResult pause() override;
    ControlResult resume() override;
    ControlResult power_button() override;
    ControlResult reboot() override;
    void shutdown(bool vmm, std::function<void(ControlResult)> stopped) override;
    void shutdown_answered() override;

private:
    ControlResult no_vm() const;

    const VmConfig config_;
    std::mutex mutex_;
    Machine* machine_ = nullptr;                                         // guarded by mutex_
    bool terminating_ = false;                                           // guarded by mutex_
    bool finished_ = false;  // finish() ran: the VM is down for good; guarded by mutex_
    uint64_t boots_ = 0;                                                 // guarded by mutex_
    std::vector<std::function<void(ControlResult)>> pending_shutdowns_;  // guarded by mutex_

    std::mutex answered_mutex_;  // a leaf
    std::condition_variable answered_cv_;
    size_t answered_ = 0;
};

}  // namespace kvmkit::vmm
