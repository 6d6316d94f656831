#include "vmm/vmm_main.hpp"

#include <signal.h>
#include <unistd.h>

#include <cstdio>
#include <memory>
#include <thread>

#include "base/log.hpp"
#include "http/server.hpp"
#include "http/unix_socket.hpp"
#include "vmm/command_line.hpp"
#include "vmm/control_api.hpp"
#include "vmm/machine.hpp"
#include "vmm/vmm_control.hpp"

namespace kvmkit::vmm {

namespace {
// The process's control state: the running machine, for the signal thread,
// the console escape and the control API. Lives until the process exits.
VmmControl* g_control = nullptr;

void stop_current(StopReason reason, const char* why) {
    if (g_control) g_control->stop(reason, why);
}

// Termination signals are blocked in every thread and taken here, so that a
// signal never lands in the middle of a vCPU's work.
void start_signal_thread() {
    sigset_t set;
    sigemptyset(&set);
    for (int s : {SIGTERM, SIGINT, SIGHUP, SIGQUIT}) sigaddset(&set, s);
    pthread_sigmask(SIG_BLOCK, &set, nullptr);
    std::thread([set] {
        for (;;) {
            int sig = 0;
            if (sigwait(&set, &sig) != 0) continue;
            LOG_INFO("terminating on signal %d", sig);
            stop_current(StopReason::Signal, "signal");
        }
    }).detach();
}

int error_exit(const std::string& message) {
    fprintf(stderr, "kvmkit: error: %s\n", message.c_str());
    return 1;
}

// Builds and runs Machines until one stops for good (a reset builds a fresh
// one); returns the process's exit code.
int run_machines(const VmConfig& cfg, const HostInfo& host, Console& console, VmmControl& control,
                 bool console_started) {
    for (;;) {
        auto machine = Machine::create(cfg, host, console);
        if (!machine) {
            console.restore_terminal();
            return error_exit(machine.error().message());
        }
        if (!console_started) {
            if (auto r = console.start(); !r) return error_exit(r.error().message());
            console_started = true;
        }
        if (!control.attach(machine->get())) return 0;  // terminating already
        StopReason reason = (*machine)->run();
        std::string message = (*machine)->stop_message();
        control.detach();
        machine->reset();  // tear the VM down before deciding what comes next
        switch (reason) {
            case StopReason::Reset:
                if (cfg.no_reboot) {
                    LOG_INFO("guest reset (%s); exiting (--no-reboot)", message.c_str());
                    return 0;
                }
                LOG_INFO("guest reset (%s); rebooting", message.c_str());
                continue;
            case StopReason::Poweroff: LOG_INFO("guest powered off"); return 0;
            case StopReason::Signal:
            case StopReason::UserQuit: LOG_INFO("stopped (%s)", message.c_str()); return 0;
            case StopReason::Error:
            case StopReason::None:
                console.restore_terminal();
                return error_exit(message);
        }
    }
}

}  // namespace

int vmm_main(int argc, char** argv) {
    std::vector<std::string> args(argv + 1, argv + argc);
    auto parsed = parse_command_line(args);
    if (!parsed) {
        fprintf(stderr, "kvmkit: error: %s (see --help)\n", parsed.error().message().c_str());
        return 2;
    }
    if (parsed->help) {
        fputs(parsed->text.c_str(), stdout);
        return 0;
    }
    VmConfig& cfg = parsed->config;
    if (cfg.kernel.empty()) {
        if (auto r = apply_default_guest(cfg, parsed->cmdline_given); !r) return error_exit(r.error().message());
    }
    base::set_log_name(cfg.name);
    base::set_log_level(base::parse_log_level(parsed->log_level, base::LogLevel::Warn));
    signal(SIGPIPE, SIG_IGN);
    // Never destroyed: the detached signal thread may use it until the process is gone.
    VmmControl& control = *new VmmControl(cfg);
    g_control = &control;
    start_signal_thread();

    HostInfo host = probe_host();
    Console console([] { stop_current(StopReason::UserQuit, "console escape"); });
    if (!parsed->console_socket.empty()) {
        if (auto r = console.start_socket(parsed->console_socket); !r) return error_exit(r.error().message());
    }
    // The API server lives outside every Machine: it keeps serving across resets.
    std::unique_ptr<http::ServerThread> api;
    if (!parsed->api_socket.empty()) {
        auto fd = http::listen_unix(parsed->api_socket);
        if (!fd) return error_exit("--api-socket: " + fd.error().message());
        auto server = http::ServerThread::start(std::move(*fd), make_control_router(control));
        if (!server) return error_exit("--api-socket: " + server.error().message());
        api = std::move(*server);
    }
    int code = run_machines(cfg, host, console, control, !parsed->console_socket.empty());
    control.finish();  // answer vm.shutdown/vmm.shutdown before the process goes
    api.reset();
    if (!parsed->api_socket.empty()) ::unlink(parsed->api_socket.c_str());
    // The last line of every VMM that ran a VM: kvmkitd reads it to tell a clean
    // exit from a kill when it re-adopted this process and cannot wait() for it.
    LOG_INFO("exit status %d", code);
    return code;
}

}  // namespace kvmkit::vmm
