// A kvmkitd of the test's own: temporary state, run and log directories,
// its sockets inside them, never the system's /var/lib/kvmkit or
// /run/kvmkit. `kvmkit` commands are run against it as child processes.
#pragma once

#include <sys/types.h>

#include <chrono>
#include <optional>
#include <string>
#include <vector>

#include "guest_assets.hpp"

namespace kvmkit::test {

struct CliResult {
    int code = -1;  // exit code; 128+signal; -1 on time-out
    std::string out, err;
};

// Runs `kvmkit ARGS` (or, with `as_nobody`, through setpriv as the user
// nobody, group nogroup) with `input` on stdin; kills it after `timeout`.
CliResult run_kvmkit(const std::vector<std::string>& args, std::chrono::seconds timeout = std::chrono::seconds(180),
                     const std::string& input = "", const std::vector<std::string>& env = {}, bool as_nobody = false);

class KvmkitdFixture {
public:
    KvmkitdFixture();   // makes the directories; does not start the daemon
    ~KvmkitdFixture();  // kills the daemon and every VMM it left behind

    // Starts kvmkitd and waits until its socket answers; false with the log in `why`.
    bool start(std::string& why, const std::vector<std::string>& extra_args = {});
    void kill_daemon(int sig);  // and reaps it
    pid_t daemon_pid() const { return pid_; }

    // kvmkit --connect <rw socket> ARGS
    CliResult cli(std::vector<std::string> args, std::chrono::seconds timeout = std::chrono::seconds(180),
                  const std::string& input = "");
    // Writes a definition file (a test guest VM by default) and returns its path.
    std::string write_definition(const std::string& name, const std::string& json_text);
    std::string testguest_definition(const std::string& name, const std::string& cmdline) const;

    std::string state_dir() const { return dir_.path() + "/state"; }
    std::string run_dir() const { return dir_.path() + "/run"; }
    std::string log_dir() const { return dir_.path() + "/log"; }
    std::string socket() const { return run_dir() + "/kvmkitd.sock"; }
    std::string ro_socket() const { return run_dir() + "/kvmkitd-ro.sock"; }
    std::string daemon_log() const;
    std::optional<pid_t> vm_pid(const std::string& name) const;  // from the pid file

private:
    TempDir dir_;
    pid_t pid_ = -1;
};

bool process_alive(pid_t pid);
// Polls `kvmkit domstate NAME` until it prints `state`; false on time-out.
bool wait_state(KvmkitdFixture& d, const std::string& name, const std::string& state, std::chrono::seconds timeout);

}  // namespace kvmkit::test
