#include "vmm/vmm_main.hpp"

#include <signal.h>

#include <cstdio>
#include <mutex>
#include <thread>

#include "base/log.hpp"
#include "vmm/command_line.hpp"
#include "vmm/machine.hpp"

namespace kvmkit::vmm {

namespace {
std::mutex g_current_mutex;
Machine* g_current = nullptr;  // the running machine, for the signal thread and the console escape
bool g_terminating = false;

void stop_current(StopReason reason, const char* why) {
    std::lock_guard lock(g_current_mutex);
    g_terminating = true;
    if (g_current) g_current->request_stop(reason, why);
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
    start_signal_thread();

    HostInfo host = probe_host();
    Console console([] { stop_current(StopReason::UserQuit, "console escape"); });
    bool console_started = false;

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
        {
            std::lock_guard lock(g_current_mutex);
            if (g_terminating) return 0;
            g_current = machine->get();
        }
        StopReason reason = (*machine)->run();
        std::string message = (*machine)->stop_message();
        {
            std::lock_guard lock(g_current_mutex);
            g_current = nullptr;
        }
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
            case StopReason::UserQuit: return 0;
            case StopReason::Error:
            case StopReason::None:
                console.restore_terminal();
                return error_exit(message);
        }
    }
}

}  // namespace kvmkit::vmm
