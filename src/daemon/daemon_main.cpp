#include "daemon/daemon_main.hpp"

#include <fcntl.h>
#include <signal.h>
#include <sys/file.h>
#include <unistd.h>

#include <CLI/CLI.hpp>
#include <cstdio>
#include <thread>

#include "base/log.hpp"
#include "daemon/api_routes.hpp"
#include "daemon/daemon.hpp"
#include "http/unix_socket.hpp"

namespace kvmkit::daemon {

namespace {
int fatal(const std::string& message) {
    fprintf(stderr, "kvmkitd: error: %s\n", message.c_str());
    return 1;
}
}  // namespace

int daemon_main(int argc, char** argv) {
    DaemonOptions opts;
    std::string socket, ro_socket, ro_group = "kvmkit", log_level = "info";
    bool no_autostart = false;
    CLI::App app{
        "kvmkitd: the kvmkit management daemon. Stores VM definitions, starts each VM as its own\n"
        "kvmkit-vmm process and supervises it; serves the kvmkit CLI on two UNIX sockets.\n"
        "VMs keep running when kvmkitd stops; a restarted kvmkitd re-adopts them.",
        "kvmkitd"};
    app.add_option("--state-dir", opts.state_dir, "VM definitions (vms/NAME.json, autostart/NAME)")
        ->capture_default_str();
    app.add_option("--run-dir", opts.run_dir, "sockets, pid files, per-VM runtime directories")->capture_default_str();
    app.add_option("--log-dir", opts.log_dir, "one log file per VM (NAME.log)")->capture_default_str();
    app.add_option("--socket", socket, "read-write socket, mode 0600 (default: RUN_DIR/kvmkitd.sock)");
    app.add_option("--ro-socket", ro_socket, "read-only socket, mode 0660 (default: RUN_DIR/kvmkitd-ro.sock)");
    app.add_option("--ro-group", ro_group,
                   "group that may use the read-only socket (root's group if it does not exist)")
        ->capture_default_str();
    app.add_option("--vmm", opts.vmm_path, "the kvmkit-vmm executable (default: next to kvmkitd)");
    app.add_flag("--no-autostart", no_autostart, "do not start the VMs marked autostart");
    app.add_option("--log-level", log_level, "error, warn, info or debug")->capture_default_str();
    try {
        app.parse(argc, argv);
    } catch (const CLI::ParseError& e) {
        return app.exit(e);
    }
    if (socket.empty()) socket = opts.run_dir + "/kvmkitd.sock";
    if (ro_socket.empty()) ro_socket = opts.run_dir + "/kvmkitd-ro.sock";
    base::set_log_name("kvmkitd");
    base::set_log_level(base::parse_log_level(log_level, base::LogLevel::Info));
    ::signal(SIGPIPE, SIG_IGN);
    // Termination signals are taken by sigwait below, in no other thread.
    sigset_t term;
    sigemptyset(&term);
    for (int s : {SIGTERM, SIGINT, SIGHUP, SIGQUIT}) sigaddset(&term, s);
    pthread_sigmask(SIG_BLOCK, &term, nullptr);

    auto daemon = Daemon::create(opts);
    if (!daemon) return fatal(daemon.error().message());

    // One kvmkitd per run directory: two would both believe they own the VMs.
    std::string lock_path = opts.run_dir + "/kvmkitd.pid";
    base::UniqueFd lock(::open(lock_path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0644));
    if (!lock) return fatal("open '" + lock_path + "': " + strerror(errno));
    if (::flock(lock.get(), LOCK_EX | LOCK_NB) < 0)
        return fatal("another kvmkitd is running on " + opts.run_dir + " (" + lock_path + " is locked)");
    std::string pid = std::to_string(::getpid()) + "\n";
    if (::ftruncate(lock.get(), 0) < 0 || ::pwrite(lock.get(), pid.data(), pid.size(), 0) < 0)
        return fatal("write '" + lock_path + "': " + strerror(errno));

    for (const auto& p : (*daemon)->adopt_running()) LOG_WARN("%s", p.c_str());

    http::ListenOptions rw_opts;
    rw_opts.mode = 0600;
    auto rw_fd = http::listen_unix(socket, rw_opts);
    if (!rw_fd) return fatal(rw_fd.error().message());
    http::ListenOptions ro_opts;
    ro_opts.mode = 0660;
    if (auto gid = http::group_id(ro_group)) {
        ro_opts.group = *gid;
    } else {
        LOG_WARN("read-only socket: group '%s' not found; only root can use %s", ro_group.c_str(), ro_socket.c_str());
    }
    auto ro_fd = http::listen_unix(ro_socket, ro_opts);
    if (!ro_fd) return fatal(ro_fd.error().message());

    auto rw = http::ServerThread::start(std::move(*rw_fd), make_router(**daemon, false));
    if (!rw) return fatal(rw.error().message());
    auto ro = http::ServerThread::start(std::move(*ro_fd), make_router(**daemon, true));
    if (!ro) return fatal(ro.error().message());
    LOG_INFO("serving %s (read-write) and %s (read-only)", socket.c_str(), ro_socket.c_str());

    if (!no_autostart) {
        std::thread([d = daemon->get()] {
            for (const auto& p : d->autostart_all()) LOG_WARN("%s", p.c_str());
        }).detach();
    }

    int sig = 0;
    while (sigwait(&term, &sig) != 0) {
    }
    LOG_INFO("exiting on signal %d; VMs keep running", sig);
    ::unlink(socket.c_str());
    ::unlink(ro_socket.c_str());
    // Skip destructors: worker threads may still hold the daemon, and the VMs
    // must not be touched.
    std::fflush(nullptr);
    ::_exit(0);
}

}  // namespace kvmkit::daemon
