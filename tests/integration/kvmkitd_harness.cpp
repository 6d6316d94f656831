#include "kvmkitd_harness.hpp"

#include <dirent.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstring>
#include <fstream>
#include <sstream>
#include <thread>

#include "vm_process.hpp"

namespace kvmkit::test {

using namespace std::chrono_literals;

CliResult run_kvmkit(const std::vector<std::string>& args, std::chrono::seconds timeout, const std::string& input,
                     const std::vector<std::string>& env, bool as_nobody) {
    std::vector<std::string> argv;
    if (as_nobody) argv = {"/usr/bin/setpriv", "--reuid=nobody", "--regid=nogroup", "--clear-groups"};
    argv.push_back(KVMKIT_BIN);
    argv.insert(argv.end(), args.begin(), args.end());
    auto p = VmProcess::command(argv, env);
    p.send(input);
    p.close_stdin();
    CliResult res;
    auto code = p.wait_exit(timeout);  // on time-out the destructor kills it
    res.code = code ? *code : -1;
    res.out = p.output();
    res.err = p.errors();
    return res;
}

KvmkitdFixture::KvmkitdFixture() {
    // The user nobody must be able to reach the sockets (and be refused by
    // their modes, not by a directory on the way).
    chmod(dir_.path().c_str(), 0755);
    mkdir(state_dir().c_str(), 0755);
    mkdir(log_dir().c_str(), 0755);
}

KvmkitdFixture::~KvmkitdFixture() {
    kill_daemon(SIGKILL);
    // VMMs run in sessions of their own and outlive the daemon by design.
    if (DIR* d = opendir(run_dir().c_str())) {
        while (dirent* e = readdir(d)) {
            if (e->d_name[0] == '.') continue;
            if (auto pid = vm_pid(e->d_name)) {
                kill(*pid, SIGKILL);
                for (int i = 0; i < 200 && process_alive(*pid); ++i) std::this_thread::sleep_for(10ms);
                waitpid(*pid, nullptr, WNOHANG);  // reaped here when it was our child
            }
        }
        closedir(d);
    }
}

bool KvmkitdFixture::start(std::string& why, const std::vector<std::string>& extra_args) {
    std::string log = dir_.path() + "/kvmkitd.log";
    pid_ = fork();
    if (pid_ == 0) {
        setpgid(0, 0);
        int fd = open(log.c_str(), O_WRONLY | O_CREAT | O_APPEND, 0644);
        int null = open("/dev/null", O_RDONLY);
        dup2(null, 0);
        dup2(fd, 1);
        dup2(fd, 2);
        std::vector<std::string> args = {KVMKITD_BIN, "--state-dir", state_dir(), "--run-dir",   run_dir(), "--log-dir",
                                         log_dir(),   "--ro-group",  "nogroup",   "--log-level", "debug"};
        args.insert(args.end(), extra_args.begin(), extra_args.end());
        std::vector<char*> argv;
        for (auto& a : args) argv.push_back(const_cast<char*>(a.c_str()));
        argv.push_back(nullptr);
        execv(argv[0], argv.data());
        _exit(127);
    }
    for (int i = 0; i < 300; ++i) {
        auto r = cli({"version", "--json"}, 5s);
        if (r.code == 0 && r.out.find("\"kvmkitd\": \"") != std::string::npos) return true;
        int status;
        if (waitpid(pid_, &status, WNOHANG) == pid_) {
            pid_ = -1;
            why = "kvmkitd exited: " + daemon_log();
            return false;
        }
        std::this_thread::sleep_for(100ms);
    }
    why = "kvmkitd did not answer within 30 s: " + daemon_log();
    return false;
}

void KvmkitdFixture::kill_daemon(int sig) {
    if (pid_ <= 0) return;
    kill(pid_, sig);
    waitpid(pid_, nullptr, 0);
    pid_ = -1;
}

CliResult KvmkitdFixture::cli(std::vector<std::string> args, std::chrono::seconds timeout, const std::string& input) {
    args.insert(args.begin(), {"--connect", socket()});
    return run_kvmkit(args, timeout, input);
}

std::string KvmkitdFixture::write_definition(const std::string& name, const std::string& json_text) {
    std::string path = dir_.path() + "/" + name + ".json";
    std::ofstream(path) << json_text;
    return path;
}

std::string KvmkitdFixture::testguest_definition(const std::string& name, const std::string& cmdline) const {
    return "{\"name\": \"" + name + "\", \"kernel\": \"" + testguest_elf() + "\", \"cmdline\": \"" + cmdline +
           "\", \"memory\": \"64M\", \"cpus\": 1}";
}

std::string KvmkitdFixture::daemon_log() const {
    std::ifstream f(dir_.path() + "/kvmkitd.log");
    std::stringstream ss;
    ss << f.rdbuf();
    return ss.str();
}

std::optional<pid_t> KvmkitdFixture::vm_pid(const std::string& name) const {
    std::ifstream f(run_dir() + "/" + name + "/pid");
    long pid = 0;
    if (!(f >> pid) || pid <= 1) return std::nullopt;
    return static_cast<pid_t>(pid);
}

bool process_alive(pid_t pid) {
    std::ifstream f("/proc/" + std::to_string(pid) + "/stat");
    std::string stat((std::istreambuf_iterator<char>(f)), std::istreambuf_iterator<char>());
    auto close = stat.rfind(')');
    return close != std::string::npos && close + 2 < stat.size() && stat[close + 2] != 'Z' && stat[close + 2] != 'X';
}

bool wait_state(KvmkitdFixture& d, const std::string& name, const std::string& state, std::chrono::seconds timeout) {
    auto deadline = std::chrono::steady_clock::now() + timeout;
    while (std::chrono::steady_clock::now() < deadline) {
        auto r = d.cli({"domstate", name}, 10s);
        if (r.code == 0 && r.out == state + "\n") return true;
        std::this_thread::sleep_for(100ms);
    }
    return false;
}

}  // namespace kvmkit::test
