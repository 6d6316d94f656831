#include "vmm/vmm_control.hpp"

#include <unistd.h>

#include "vmm/config_json.hpp"

#ifndef KVMKIT_VERSION
#define KVMKIT_VERSION "0.0.0"
#endif

namespace kvmkit::vmm {

bool VmmControl::attach(Machine* machine) {
    std::lock_guard lock(mutex_);
    if (terminating_) return false;
    machine_ = machine;
    ++boots_;
    return true;
}

void VmmControl::detach() {
    std::lock_guard lock(mutex_);
    machine_ = nullptr;
}

void VmmControl::stop(StopReason reason, const std::string& why) {
    std::lock_guard lock(mutex_);
    terminating_ = true;
    if (machine_) machine_->request_stop(reason, why);
}

void VmmControl::finish() {
    std::vector<std::function<void(ControlResult)>> pending;
    {
        std::lock_guard lock(mutex_);
        terminating_ = true;
        finished_ = true;
        pending.swap(pending_shutdowns_);
    }
    if (pending.empty()) return;
    for (auto& done : pending) done(ControlResult::ok());
    std::unique_lock lock(answered_mutex_);
    answered_cv_.wait_for(lock, std::chrono::seconds(2), [&] { return answered_ >= pending.size(); });
}

ControlResult VmmControl::no_vm() const {
    return ControlResult::fail(409, "the VM is not running (shutting down or rebooting)");
}

http::Json VmmControl::ping() {
    return {{"version", KVMKIT_VERSION},
            {"build_version", KVMKIT_VERSION},
            {"pid", ::getpid()},
            {"features", http::Json::array()}};
}

http::Json VmmControl::info() {
    std::lock_guard lock(mutex_);
    std::string state = !machine_ ? "shutdown" : machine_->paused() ? "paused" : "running";
    return {{"state", state},           {"config", http::Json::parse(vm_config_to_json(config_))},
            {"memory", config_.memory}, {"cpus", config_.cpus},
            {"boots", boots_},          {"pid", ::getpid()}};
}

http::Json VmmControl::counters() {
    std::lock_guard lock(mutex_);
    http::Json out = {{"boot", boots_},
                      {"exits", http::Json::object()},
                      {"vcpus", http::Json::array()},
                      {"devices", http::Json::array()}};
    if (!machine_) return out;
    const ExitCounters& exits = machine_->exit_counters();
    out["exits"] = exits.totals();
    for (size_t v = 0; v < exits.vcpus(); ++v) out["vcpus"].push_back({{"id", v}, {"exits", exits.for_vcpu(v)}});
    for (const auto& dev : machine_->device_io()) {
        http::Json counters = http::Json::object();
        for (const auto& [name, value] : dev.counters) counters[name] = value;
        char pci[16];
        snprintf(pci, sizeof pci, "00:%02x.0", dev.pci_slot);
        out["devices"].push_back({{"name", dev.name}, {"pci", pci}, {"counters", counters}});
    }
    return out;
}

ControlResult VmmControl::pause() {
    std::lock_guard lock(mutex_);
    if (!machine_) return no_vm();
    if (auto r = machine_->pause(); !r) return ControlResult::fail(409, r.error().message());
    return ControlResult::ok();
}

ControlResult VmmControl::resume() {
    std::lock_guard lock(mutex_);
    if (!machine_) return no_vm();
    if (auto r = machine_->resume(); !r) return ControlResult::fail(409, r.error().message());
    return ControlResult::ok();
}

ControlResult VmmControl::power_button() {
    std::lock_guard lock(mutex_);
    if (!machine_) return no_vm();
    machine_->press_power_button();
    return ControlResult::ok();
}

ControlResult VmmControl::reboot() {
    std::lock_guard lock(mutex_);
    if (!machine_) return no_vm();
    machine_->request_stop(StopReason::Reset, "vm.reboot");
    return ControlResult::ok();
}

void VmmControl::shutdown(bool vmm, std::function<void(ControlResult)> stopped) {
    {
        std::lock_guard lock(mutex_);
        terminating_ = true;
        if (!finished_) {
            pending_shutdowns_.push_back(std::move(stopped));
            if (machine_) machine_->request_stop(StopReason::UserQuit, vmm ? "vmm.shutdown" : "vm.shutdown");
            return;
        }
    }
    stopped(ControlResult::ok());  // the VM is already down; the process is exiting
}

void VmmControl::shutdown_answered() {
    {
        std::lock_guard lock(answered_mutex_);
        ++answered_;
    }
    answered_cv_.notify_all();
}

}  // namespace kvmkit::vmm
