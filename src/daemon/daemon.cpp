#include "daemon/daemon.hpp"

#include <signal.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstring>
#include <thread>

#include "base/file.hpp"
#include "base/log.hpp"
#include "daemon/vm_name.hpp"
#include "daemon/vmm_control.hpp"
#include "vmm/config_json.hpp"

namespace kvmkit::daemon {

using json = nlohmann::json;
using namespace std::chrono_literals;

const char* state_name(VmState s) {
    switch (s) {
        case VmState::ShutOff:
            return "shut off";
        case VmState::Running:
            return "running";
        case VmState::Paused:
            return "paused";
        case VmState::Crashed:
            return "crashed";
    }
    return "unknown";
}

namespace {
std::optional<VmState> parse_state(const std::string& s) {
    for (VmState v : {VmState::ShutOff, VmState::Running, VmState::Paused, VmState::Crashed})
        if (s == state_name(v)) return v;
    return std::nullopt;
}

bool is_active(VmState s) {
    return s == VmState::Running || s == VmState::Paused;
}

Reply not_found(const std::string& name) {
    return Reply::error(404, "domain '" + name + "' is not defined");
}
Reply not_running(const std::string& name) {
    return Reply::error(409, "domain '" + name + "' is not running");
}

base::Result<void> make_dir(const std::string& path, mode_t mode) {
    if (::mkdir(path.c_str(), mode) == 0 || errno == EEXIST) return base::ok();
    return base::fail_errno("create directory '" + path + "'");
}

std::string signal_text(int sig) {
    const char* abbrev = sigabbrev_np(sig);
    return "killed by signal " + std::to_string(sig) + (abbrev ? std::string(" (SIG") + abbrev + ")" : "");
}
}  // namespace

base::Result<std::unique_ptr<Daemon>> Daemon::create(DaemonOptions options) {
    if (options.vmm_path.empty()) options.vmm_path = base::sibling_executable("kvmkit-vmm");
    auto store = TRY_CTX(DefinitionStore::open(options.state_dir), "state directory");
    TRY(make_dir(options.run_dir, 0755));
    TRY(make_dir(options.log_dir, 0750));
    auto loop = TRY(event::EventLoop::create());
    std::unique_ptr<Daemon> d(new Daemon(std::move(options), std::move(store), std::move(loop)));
    d->loop_->start();
    return d;
}

Daemon::~Daemon() {
    events_.close();
    loop_->stop();  // VMMs keep running: a restarted kvmkitd re-adopts them
}

Daemon::Vm* Daemon::find(const std::string& name) {
    auto it = vms_.find(name);
    if (it != vms_.end()) return &it->second;
    if (!store_.exists(name)) return nullptr;
    return &vms_[name];
}

void Daemon::set_state(const std::string& name, Vm& vm, VmState s, const std::string& reason) {
    vm.state = s;
    vm.reason = reason;
    // Recorded in the run directory so that a restarted kvmkitd reports the
    // same state and reason (paused stays paused, a crash keeps its reason).
    json st{{"state", state_name(s)}, {"reason", reason}};
    std::string dir = paths(name).dir;
    if (s == VmState::ShutOff) {
        ::unlink(paths(name).config_file.c_str());
        ::unlink(paths(name).state_file.c_str());
        ::rmdir(dir.c_str());
        return;
    }
    (void)make_dir(dir, 0700);
    if (auto r = base::write_file_atomic(paths(name).state_file, st.dump() + "\n", 0600); !r)
        LOG_WARN("%s: %s", name.c_str(), r.error().message().c_str());
}

void Daemon::watch(const std::string& name, Vm& vm) {
    pid_t pid = vm.proc->pid();
    auto r = loop_->add(vm.proc->pidfd(), [this, name, pid](uint32_t) { on_exit(name, pid); });
    if (!r) LOG_ERROR("%s: cannot watch pid %d: %s", name.c_str(), pid, r.error().message().c_str());
}

void Daemon::on_exit(const std::string& name, pid_t pid) {
    std::unique_lock lock(mutex_);
    auto it = vms_.find(name);
    if (it == vms_.end() || !it->second.proc || it->second.proc->pid() != pid) return;
    Vm& vm = it->second;
    (void)loop_->remove(vm.proc->pidfd());
    ExitInfo ex = vm.proc->reap();
    vm.proc.reset();
    RunPaths p = paths(name);
    for (const auto& f : {p.pid_file, p.api_socket, p.console_socket, p.config_file}) ::unlink(f.c_str());

    Pending pending = std::exchange(vm.pending, Pending::None);
    std::string log_error = last_error_in_log(p.log_file, vm.log_offset);
    // A re-adopted VMM is not our child: its exit status is lost to us, so
    // its closing "exit status N" log line tells a clean exit from a kill.
    std::optional<int> logged_status;
    if (!ex.known) logged_status = exit_status_in_log(p.log_file, vm.log_offset);
    bool clean = ex.known ? (!ex.signaled && ex.code == 0) : (logged_status == 0 && log_error.empty());
    if (pending == Pending::Destroy) {
        set_state(name, vm, VmState::ShutOff, "destroyed");
        events_.publish(name, "stopped", "destroyed");
    } else if (clean) {
        set_state(name, vm, VmState::ShutOff, "shutdown");
        events_.publish(name, "shutdown", "finished");
        events_.publish(name, "stopped", "shutdown");
    } else {
        std::string reason = ex.known && ex.signaled ? signal_text(ex.code)
                             : !log_error.empty()    ? log_error
                             : ex.known              ? "exit code " + std::to_string(ex.code)
                             : logged_status         ? "exit code " + std::to_string(*logged_status)
                                                     : "ended without a clean exit (killed while re-adopted)";
        set_state(name, vm, VmState::Crashed, reason);
        events_.publish(name, "crashed", reason);
        LOG_WARN("%s: crashed: %s", name.c_str(), reason.c_str());
    }
    stopped_.notify_all();
    if (pending == Pending::Reboot && clean) {
        // libvirt's "fake reboot": the guest shut down on the power button,
        // start it again. Not on the loop thread: a start waits for the VMM.
        vm.busy = true;
        lock.unlock();
        std::thread([this, name] {
            {
                std::lock_guard l(mutex_);
                if (Vm* v = find(name)) v->busy = false;
            }
            Reply r = start_impl(name, "rebooted");
            if (r.status >= 400) LOG_ERROR("%s: reboot: %s", name.c_str(), r.body["error"].dump().c_str());
        }).detach();
    }
}

base::Result<std::unique_ptr<VmmProcess>> Daemon::launch(const std::string& name, long& log_offset) {
    vmm::VmConfig config = TRY(store_.load(name));
    RunPaths p = paths(name);
    TRY(make_dir(p.dir, 0700));
    for (const auto& f : {p.pid_file, p.api_socket, p.console_socket}) ::unlink(f.c_str());
    // The VM runs from a snapshot of its definition: `define` or `edit` while
    // it runs take effect at the next start, as in libvirt.
    TRY(base::write_file_atomic(p.config_file, vmm::vm_config_to_json(config) + "\n", 0600));
    log_offset = file_size(p.log_file);
    std::vector<std::string> args{"--config",         p.config_file,    "--api-socket", p.api_socket,
                                  "--console-socket", p.console_socket, "--log-level",  "info"};
    auto proc = TRY(VmmProcess::spawn(opts_.vmm_path, args, p));
    auto proc_ptr = std::make_unique<VmmProcess>(std::move(proc));

    VmmControl control(p.api_socket, 2s);
    auto deadline = std::chrono::steady_clock::now() + opts_.start_timeout;
    for (;;) {
        if (proc_ptr->exited()) {
            ExitInfo ex = proc_ptr->reap();
            ::unlink(p.pid_file.c_str());
            std::string why = last_error_in_log(p.log_file, log_offset);
            if (why.empty()) why = ex.signaled ? signal_text(ex.code) : "exit code " + std::to_string(ex.code);
            return base::fail("kvmkit-vmm exited at once: " + why + " (log: " + p.log_file + ")");
        }
        // The control socket answers before the machine is built (kernel
        // loaded, devices up); the VM runs once vm.info says so.
        if (auto info = control.info(); info && info->is_object() && (*info)["state"] == "running") break;
        if (std::chrono::steady_clock::now() > deadline) {
            (void)proc_ptr->signal(SIGKILL);
            while (!proc_ptr->exited()) std::this_thread::sleep_for(10ms);
            proc_ptr->reap();
            ::unlink(p.pid_file.c_str());
            return base::fail("kvmkit-vmm did not answer on " + p.api_socket + " within " +
                              std::to_string(opts_.start_timeout.count()) + " s (log: " + p.log_file + ")");
        }
        std::this_thread::sleep_for(20ms);
    }
    return proc_ptr;
}

Reply Daemon::start_impl(const std::string& name, const char* reason) {
    {
        std::lock_guard lock(mutex_);
        Vm* vm = find(name);
        if (!vm) return not_found(name);
        if (is_active(vm->state)) return Reply::error(409, "domain '" + name + "' is already running");
        if (vm->busy) return Reply::error(409, "domain '" + name + "' is already being started or stopped");
        vm->busy = true;  // from here on, a second start is refused: exactly one wins
    }
    long log_offset = 0;
    auto proc = launch(name, log_offset);
    std::lock_guard lock(mutex_);
    Vm* vm = find(name);
    if (!vm) {  // cannot happen: undefine refuses a busy VM
        if (proc) (void)(*proc)->signal(SIGKILL);
        return not_found(name);
    }
    vm->busy = false;
    if (!proc) {
        set_state(name, *vm, VmState::ShutOff, "failed");
        events_.publish(name, "stopped", "failed");
        return Reply::error(500, "start " + name + ": " + proc.error().message());
    }
    vm->proc = std::move(*proc);
    vm->log_offset = log_offset;
    vm->pending = Pending::None;
    set_state(name, *vm, VmState::Running, reason);
    watch(name, *vm);
    events_.publish(name, "started", reason);
    return Reply{200, summary(name, *vm)};
}

Reply Daemon::start(const std::string& name) {
    return start_impl(name, "booted");
}

Reply Daemon::control(const std::string& name, const char* endpoint) {
    std::string socket;
    {
        std::lock_guard lock(mutex_);
        Vm* vm = find(name);
        if (!vm) return not_found(name);
        if (!is_active(vm->state) || !vm->proc) return not_running(name);
        socket = paths(name).api_socket;
    }
    auto r = VmmControl(socket).put(endpoint);
    if (!r) return Reply::error(500, name + ": " + endpoint + ": " + r.error().message());
    return Reply{};
}

Reply Daemon::shutdown(const std::string& name) {
    Reply r = control(name, "vm.power-button");
    if (r.status != 200) return r;
    std::lock_guard lock(mutex_);
    if (Vm* vm = find(name); vm && vm->proc && vm->pending == Pending::None) vm->pending = Pending::Shutdown;
    return r;
}

Reply Daemon::reboot(const std::string& name) {
    {
        std::lock_guard lock(mutex_);
        Vm* vm = find(name);
        if (!vm) return not_found(name);
        if (vm->state != VmState::Running || !vm->proc)
            return Reply::error(409, "domain '" + name + "' is not running");
        vm->pending = Pending::Reboot;  // set first: the guest may power off before the reply comes
    }
    Reply r = control(name, "vm.power-button");
    if (r.status != 200) {
        std::lock_guard lock(mutex_);
        if (Vm* vm = find(name); vm && vm->pending == Pending::Reboot) vm->pending = Pending::None;
    }
    return r;
}

Reply Daemon::reset(const std::string& name) {
    return control(name, "vm.reboot");
}

Reply Daemon::suspend(const std::string& name) {
    {
        std::lock_guard lock(mutex_);
        Vm* vm = find(name);
        if (!vm) return not_found(name);
        if (vm->state == VmState::Paused) return Reply::error(409, "domain '" + name + "' is already paused");
    }
    Reply r = control(name, "vm.pause");
    if (r.status != 200) return r;
    std::lock_guard lock(mutex_);
    if (Vm* vm = find(name); vm && vm->proc) {
        set_state(name, *vm, VmState::Paused, "user");
        events_.publish(name, "suspended", "paused");
    }
    return r;
}

Reply Daemon::resume(const std::string& name) {
    {
        std::lock_guard lock(mutex_);
        Vm* vm = find(name);
        if (!vm) return not_found(name);
        if (vm->state != VmState::Paused) return Reply::error(409, "domain '" + name + "' is not paused");
    }
    Reply r = control(name, "vm.resume");
    if (r.status != 200) return r;
    std::lock_guard lock(mutex_);
    if (Vm* vm = find(name); vm && vm->proc) {
        set_state(name, *vm, VmState::Running, "unpaused");
        events_.publish(name, "resumed", "unpaused");
    }
    return r;
}

Reply Daemon::destroy(const std::string& name) {
    std::unique_lock lock(mutex_);
    Vm* vm = find(name);
    if (!vm) return not_found(name);
    if (!vm->proc) return not_running(name);
    vm->pending = Pending::Destroy;
    pid_t pid = vm->proc->pid();
    // SIGTERM stops kvmkit-vmm at once (its vCPUs are kicked out); SIGKILL
    // follows if it does not exit within the grace period.
    (void)vm->proc->signal(SIGTERM);
    auto gone = [&] {
        Vm* v = find(name);
        return !v || !v->proc || v->proc->pid() != pid;
    };
    if (!stopped_.wait_for(lock, opts_.destroy_grace, gone)) {
        if (Vm* v = find(name); v && v->proc) (void)v->proc->signal(SIGKILL);
        stopped_.wait_for(lock, 30s, gone);
    }
    if (!gone()) return Reply::error(500, "domain '" + name + "': process " + std::to_string(pid) + " did not exit");
    return Reply{};
}

Reply Daemon::define(const std::string& json_text) {
    auto config = DefinitionStore::parse(json_text);
    if (!config) return Reply::error(400, "invalid definition: " + config.error().message());
    std::lock_guard lock(mutex_);
    bool existed = store_.exists(config->name);
    auto stored = store_.define(json_text);
    if (!stored) return Reply::error(500, "define " + config->name + ": " + stored.error().message());
    find(config->name);
    events_.publish(config->name, "defined", existed ? "updated" : "added");
    return Reply{200, json{{"name", config->name}, {"created", !existed}}};
}

Reply Daemon::undefine(const std::string& name, bool force) {
    {
        std::lock_guard lock(mutex_);
        Vm* vm = find(name);
        if (!vm) return not_found(name);
        if (vm->busy) return Reply::error(409, "domain '" + name + "' is being started or stopped");
        if (vm->proc && !force)
            return Reply::error(409, "domain '" + name + "' is running; destroy it first or use --force");
    }
    if (force) {
        Reply r = destroy(name);
        if (r.status != 200 && r.status != 409) return r;  // 409: it stopped meanwhile
    }
    std::lock_guard lock(mutex_);
    Vm* vm = find(name);
    if (!vm) return not_found(name);
    if (vm->proc) return Reply::error(409, "domain '" + name + "' was started again meanwhile");
    if (auto r = store_.undefine(name); !r) return Reply::error(500, "undefine " + name + ": " + r.error().message());
    ::unlink(paths(name).state_file.c_str());
    ::rmdir(paths(name).dir.c_str());
    vms_.erase(name);
    events_.publish(name, "undefined", "removed");
    return Reply{};
}

Reply Daemon::set_autostart(const std::string& name, bool on) {
    std::lock_guard lock(mutex_);
    if (!find(name)) return not_found(name);
    if (auto r = store_.set_autostart(name, on); !r) return Reply::error(500, r.error().message());
    return Reply{200, json{{"name", name}, {"autostart", on}}};
}

json Daemon::summary(const std::string& name, const Vm& vm) const {
    json j{
        {"name", name}, {"state", state_name(vm.state)}, {"reason", vm.reason}, {"autostart", store_.autostart(name)}};
    j["pid"] = vm.proc ? json(vm.proc->pid()) : json(nullptr);
    return j;
}

Reply Daemon::version() const {
    return Reply{200, json{{"daemon", "kvmkitd"}, {"version", kVersion}}};
}

Reply Daemon::list() {
    std::lock_guard lock(mutex_);
    json vms = json::array();
    for (const auto& name : store_.names())
        if (Vm* vm = find(name)) vms.push_back(summary(name, *vm));
    return Reply{200, json{{"vms", vms}}};
}

Reply Daemon::info(const std::string& name) {
    std::lock_guard lock(mutex_);
    Vm* vm = find(name);
    if (!vm) return not_found(name);
    json j = summary(name, *vm);
    auto config = store_.load(name);
    if (config) {
        j["cpus"] = config->cpus;
        j["memory"] = config->memory;
    } else {
        j["config_error"] = config.error().message();
    }
    RunPaths p = paths(name);
    j["persistent"] = true;
    j["definition"] = store_.definition_path(name);
    j["log"] = p.log_file;
    if (vm->proc) {
        j["api_socket"] = p.api_socket;
        j["console_socket"] = p.console_socket;
    }
    return Reply{200, j};
}

Reply Daemon::config(const std::string& name) {
    std::lock_guard lock(mutex_);
    if (!find(name)) return not_found(name);
    auto config = store_.load(name);
    if (!config) return Reply::error(500, config.error().message());
    return Reply{200, json::parse(vmm::vm_config_to_json(*config))};
}

Reply Daemon::events(std::optional<uint64_t> after, std::chrono::milliseconds timeout) {
    uint64_t from = after ? *after : events_.last_seq();
    auto list = events_.wait_after(from, timeout);
    json arr = json::array();
    uint64_t next = from;
    for (const auto& e : list) {
        arr.push_back({{"seq", e.seq}, {"time_ms", e.time_ms}, {"vm", e.vm}, {"type", e.type}, {"detail", e.detail}});
        next = e.seq;
    }
    return Reply{200, json{{"events", arr}, {"next", next}}};
}

std::vector<std::string> Daemon::adopt_running() {
    std::vector<std::string> problems;
    std::lock_guard lock(mutex_);
    for (const auto& name : store_.names()) {
        Vm* vm = find(name);
        RunPaths p = paths(name);
        auto saved_text = base::read_text_file(p.state_file, 4096);
        json saved = saved_text ? json::parse(*saved_text, nullptr, false) : json();
        std::optional<VmState> saved_state;
        std::string saved_reason;
        if (saved.is_object() && saved["state"].is_string() && saved["reason"].is_string()) {
            saved_state = parse_state(saved["state"].get<std::string>());
            saved_reason = saved["reason"].get<std::string>();
        }
        if (::access(p.pid_file.c_str(), F_OK) != 0) {
            // Not running. A crash recorded by the previous kvmkitd stays reported.
            if (saved_state == VmState::Crashed) {
                vm->state = VmState::Crashed;
                vm->reason = saved_reason;
            }
            continue;
        }
        auto proc = VmmProcess::adopt(p);
        bool answers = proc && VmmControl(p.api_socket, 2s).ping().has_value();
        if (!proc || !answers) {
            // The VMM died while no kvmkitd watched it: its log tells whether it failed.
            std::string why = last_error_in_log(p.log_file);
            if (proc) (void)proc->signal(SIGKILL);  // alive but deaf: not trustworthy
            for (const auto& f : {p.pid_file, p.api_socket, p.console_socket, p.config_file}) ::unlink(f.c_str());
            if (saved_state && is_active(*saved_state) && !why.empty() && !proc) {
                set_state(name, *vm, VmState::Crashed, why);
            } else {
                set_state(name, *vm, VmState::ShutOff, "unknown");
            }
            problems.push_back(name + ": not re-adopted: " +
                               (proc ? std::string("control socket does not answer") : proc.error().message()));
            continue;
        }
        vm->proc = std::make_unique<VmmProcess>(std::move(*proc));
        vm->log_offset = file_size(p.log_file);
        VmState state = saved_state && is_active(*saved_state) ? *saved_state : VmState::Running;
        std::string reason = saved_state && is_active(*saved_state) ? saved_reason : "booted";
        // The VMM itself knows best whether its vCPUs are paused.
        if (auto info = VmmControl(p.api_socket, 2s).info();
            info && info->is_object() && (*info)["state"].is_string()) {
            std::string s = (*info)["state"].get<std::string>();  // "running"/"paused" (Cloud Hypervisor: "Running")
            for (char& ch : s) ch = static_cast<char>(std::tolower(static_cast<unsigned char>(ch)));
            if (s == "paused" && state != VmState::Paused) state = VmState::Paused, reason = "user";
            if (s == "running" && state != VmState::Running) state = VmState::Running, reason = "unpaused";
        }
        set_state(name, *vm, state, reason);
        watch(name, *vm);
        LOG_INFO("%s: re-adopted pid %d (%s)", name.c_str(), vm->proc->pid(), state_name(state));
    }
    return problems;
}

std::vector<std::string> Daemon::autostart_all() {
    std::vector<std::string> problems;
    for (const auto& name : store_.names()) {
        if (!store_.autostart(name)) continue;
        {
            std::lock_guard lock(mutex_);
            Vm* vm = find(name);
            if (!vm || is_active(vm->state)) continue;
        }
        Reply r = start_impl(name, "booted");
        if (r.status >= 400) problems.push_back(name + ": autostart: " + r.body["error"].get<std::string>());
    }
    return problems;
}

}  // namespace kvmkit::daemon
