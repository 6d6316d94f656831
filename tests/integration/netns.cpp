#include "netns.hpp"

#include <fcntl.h>
#include <sched.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cstdio>
#include <thread>

namespace kvmkit::test {

namespace {
std::atomic<int> g_counter{0};

int shell(const std::string& cmd, std::string* output) {
    FILE* p = popen((cmd + " 2>&1").c_str(), "r");
    if (!p) return -1;
    char buf[512];
    std::string out;
    while (fgets(buf, sizeof buf, p)) out += buf;
    int st = pclose(p);
    if (output) *output = out;
    return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}
}  // namespace

NetNs::NetNs() : name_("kvmkit-test-" + std::to_string(getpid()) + "-" + std::to_string(g_counter++)) {
    if (geteuid() != 0) {
        why_ = "network namespace tests need root (ip netns add)";
        return;
    }
    std::string out;
    if (shell("ip netns add " + name_, &out) != 0) {
        why_ = "cannot create a network namespace: ip netns add " + name_ + ": " + out;
        return;
    }
    ok_ = true;
    run("ip link set lo up");
}

NetNs::~NetNs() {
    if (ok_) shell("ip netns del " + name_, nullptr);
}

int NetNs::run(const std::string& command, std::string* output) const {
    return shell("ip netns exec " + name_ + " sh -c '" + command + "'", output);
}

bool NetNs::add_tap(const std::string& ifname, const std::string& cidr) const {
    return run("ip tuntap add " + ifname + " mode tap") == 0 && configure(ifname, cidr);
}

bool NetNs::configure(const std::string& ifname, const std::string& cidr) const {
    return run("ip addr add " + cidr + " dev " + ifname + " && ip link set " + ifname + " up") == 0;
}

bool NetNs::wait_for_link(const std::string& ifname, int seconds) const {
    for (int i = 0; i < seconds * 10; ++i) {
        if (run("ip link show " + ifname + " >/dev/null") == 0) return true;
        std::this_thread::sleep_for(std::chrono::milliseconds(100));
    }
    return false;
}

bool NetNs::enter_on_this_thread() const {
    int fd = open(("/run/netns/" + name_).c_str(), O_RDONLY | O_CLOEXEC);
    if (fd < 0) return false;
    bool ok = setns(fd, CLONE_NEWNET) == 0;
    close(fd);
    return ok;
}

}  // namespace kvmkit::test
