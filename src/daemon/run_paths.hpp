// Where one VM's runtime files live. The run directory is per VM and 0700:
//
//   <run-dir>/<name>/pid            the kvmkit-vmm pid (written by kvmkitd after fork)
//   <run-dir>/<name>/api.sock       the VMM's control socket (--api-socket)
//   <run-dir>/<name>/console.sock   the guest console (--console-socket)
//   <run-dir>/<name>/config.json    the definition the VM was started from
//   <run-dir>/<name>/state.json     {state, reason}: what a restarted kvmkitd reports
//   <log-dir>/<name>.log            the VMM's stdout/stderr (appended across runs)
#pragma once

#include <string>

namespace kvmkit::daemon {

struct RunPaths {
    std::string dir, pid_file, api_socket, console_socket, config_file, state_file, log_file;
};

inline RunPaths run_paths(const std::string& run_dir, const std::string& log_dir, const std::string& name) {
    RunPaths p;
    p.dir = run_dir + "/" + name;
    p.pid_file = p.dir + "/pid";
    p.api_socket = p.dir + "/api.sock";
    p.console_socket = p.dir + "/console.sock";
    p.config_file = p.dir + "/config.json";
    p.state_file = p.dir + "/state.json";
    p.log_file = log_dir + "/" + name + ".log";
    return p;
}

}  // namespace kvmkit::daemon
