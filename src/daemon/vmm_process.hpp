// VmmProcess: one kvmkit-vmm process, either started by this kvmkitd (a child)
// or adopted from a previous kvmkitd (found through its pid file). Either way
// it is watched through a pidfd, which becomes readable when the process
// exits; only for children can the exit status be read (waitid on the pidfd).
#pragma once

#include <sys/types.h>

#include <optional>
#include <string>
#include <vector>

#include "base/result.hpp"
#include "base/unique_fd.hpp"
#include "daemon/run_paths.hpp"

namespace kvmkit::daemon {

struct ExitInfo {
    bool known = false;  // false for adopted processes: the status went to their new parent
    bool signaled = false;
    int code = 0;  // exit code, or the signal number when signaled
};

class VmmProcess {
public:
    // fork + exec `vmm_path` in its own session, stdout/stderr appended to the
    // log, stdin /dev/null; the child writes the pid file before it execs.
    // `args` follow argv[0].
    static base::Result<VmmProcess> spawn(const std::string& vmm_path, const std::vector<std::string>& args,
                                          const RunPaths& paths);
    // Reads the pid file and checks that the pid is a live kvmkit-vmm serving
    // this VM's api socket (a recycled pid is not adopted).
    static base::Result<VmmProcess> adopt(const RunPaths& paths);

    pid_t pid() const { return pid_; }
    int pidfd() const { return pidfd_.get(); }
    bool is_child() const { return child_; }
    bool exited() const;  // the pidfd is readable
    ExitInfo reap();      // after exit: collects the status of a child
    base::Result<void> signal(int sig) const;

private:
    pid_t pid_ = -1;
    base::UniqueFd pidfd_;
    bool child_ = false;
};

// The VMM's own reason for failing: the last "error:" line of the log, written
// after byte offset `from` (the log is appended to across runs).
std::string last_error_in_log(const std::string& log_file, long from = 0);
// The status of the VMM's closing "exit status N" line after `from`, if it wrote
// one (a killed VMM writes none).
std::optional<int> exit_status_in_log(const std::string& log_file, long from = 0);
long file_size(const std::string& path);

}  // namespace kvmkit::daemon
