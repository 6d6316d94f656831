// Daemon: kvmkitd's model of its VMs. It owns the definitions, starts one
// kvmkit-vmm per running VM, watches each through a pidfd, and turns requests
// (from any number of client threads) into replies. Thread-safe: one mutex
// guards the VM table; nothing slow (process start, waiting for a VMM) runs
// while it is held.
//
// States and reasons follow virsh: running (booted, unpaused, rebooted),
// paused (user), shut off (shutdown, destroyed, failed, unknown),
// crashed (the VMM's own error line, or "killed by signal N").
#pragma once

#include <chrono>
#include <condition_variable>
#include <map>
#include <memory>
#include <mutex>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>

#include "base/unique_fd.hpp"
#include "daemon/definition_store.hpp"
#include "daemon/event_log.hpp"
#include "daemon/vmm_process.hpp"
#include "event/event_loop.hpp"

namespace kvmkit::daemon {

constexpr const char* kVersion = "0.1.0";

struct DaemonOptions {
    std::string state_dir = "/var/lib/kvmkit";
    std::string run_dir = "/run/kvmkit";
    std::string log_dir = "/var/log/kvmkit";
    std::string vmm_path;                    // empty: kvmkit-vmm next to kvmkitd
    std::chrono::seconds start_timeout{60};  // until vm.info says "running"
    std::chrono::seconds destroy_grace{5};   // SIGTERM, then SIGKILL
};

enum class VmState { ShutOff, Running, Paused, Crashed };
const char* state_name(VmState s);  // "shut off", "running", "paused", "crashed"

// A reply: an HTTP status and a JSON body ({"error": "..."} when status >= 400).
struct Reply {
    int status = 200;
    nlohmann::json body = nlohmann::json::object();
    static Reply error(int status, const std::string& message) {
        return Reply{status, nlohmann::json{{"error", message}}};
    }
};

class Daemon {
public:
    static base::Result<std::unique_ptr<Daemon>> create(DaemonOptions options);
    ~Daemon();

    // Start-up: re-adopt VMMs left by a previous kvmkitd, then start the
    // autostart VMs that are not running. Returns one line per problem.
    std::vector<std::string> adopt_running();
    std::vector<std::string> autostart_all();

    Reply version() const;
    Reply list();
    Reply info(const std::string& name);
    Reply config(const std::string& name);
    Reply define(const std::string& json_text);
    Reply undefine(const std::string& name, bool force);
    Reply start(const std::string& name);
    Reply shutdown(const std::string& name);  // ACPI power button; the guest powers off later
    Reply destroy(const std::string& name);   // SIGTERM, SIGKILL after destroy_grace; waits
    Reply reboot(const std::string& name);    // power button, start again once it is off
    Reply reset(const std::string& name);     // vm.reboot: a hard reset
    Reply suspend(const std::string& name);
    Reply resume(const std::string& name);
    Reply set_autostart(const std::string& name, bool on);
    Reply events(std::optional<uint64_t> after, std::chrono::milliseconds timeout);

    EventLog& event_log() { return events_; }
    const DaemonOptions& options() const { return opts_; }

private:
    enum class Pending { None, Shutdown, Destroy, Reboot };
    struct Vm {
        VmState state = VmState::ShutOff;
        std::string reason = "unknown";
        std::unique_ptr<VmmProcess> proc;
        bool busy = false;  // a start or destroy is in progress
        Pending pending = Pending::None;
        long log_offset = 0;  // log size when this run began: crash reasons come after it
    };

    Daemon(DaemonOptions o, DefinitionStore store, std::unique_ptr<event::EventLoop> loop)
        : opts_(std::move(o)), store_(std::move(store)), loop_(std::move(loop)) {}

    RunPaths paths(const std::string& name) const { return run_paths(opts_.run_dir, opts_.log_dir, name); }
    Vm* find(const std::string& name);  // mutex_ held; creates the entry for a defined VM
    void set_state(const std::string& name, Vm& vm, VmState s, const std::string& reason);  // mutex_ held
    void watch(const std::string& name, Vm& vm);                                            // mutex_ held
    void on_exit(const std::string& name, pid_t pid);
    base::Result<std::unique_ptr<VmmProcess>> launch(const std::string& name, long& log_offset);
    Reply start_impl(const std::string& name, const char* reason);
    Reply control(const std::string& name, const char* endpoint);
    nlohmann::json summary(const std::string& name, const Vm& vm) const;

    DaemonOptions opts_;
    DefinitionStore store_;
    std::unique_ptr<event::EventLoop> loop_;
    EventLog events_;
    std::mutex mutex_;                 // guards vms_ (leaf: never held across a VMM call or a process start)
    std::condition_variable stopped_;  // a VM's process went away
    std::map<std::string, Vm> vms_;
};

}  // namespace kvmkit::daemon
