// NetNs: a network namespace a test creates (`ip netns add kvmkit-test-<pid>-<n>`)
// and deletes at the end, so that TAP devices and all guest traffic stay
// inside it (the project's network rule). Needs root and iproute2; tests
// skip without them, except in CI (CI set), where that is a failure.
#pragma once

#include <string>
#include <vector>

namespace kvmkit::test {

class NetNs {
public:
    // Creates the namespace; ok() false (with why()) when that is not possible.
    NetNs();
    ~NetNs();
    NetNs(const NetNs&) = delete;
    NetNs& operator=(const NetNs&) = delete;

    bool ok() const { return ok_; }
    const std::string& why() const { return why_; }
    const std::string& name() const { return name_; }

    // Runs a shell command inside the namespace; returns its exit status.
    int run(const std::string& command, std::string* output = nullptr) const;
    // Creates a persistent tap `ifname` with `cidr` (e.g. 10.77.1.1/24), up.
    bool add_tap(const std::string& ifname, const std::string& cidr) const;
    // Gives an existing interface an address and brings it up.
    bool configure(const std::string& ifname, const std::string& cidr) const;
    // Waits (up to `seconds`) for an interface to exist.
    bool wait_for_link(const std::string& ifname, int seconds) const;
    // The prefix that runs a program inside the namespace ("ip netns exec NAME").
    std::vector<std::string> exec_prefix() const { return {"ip", "netns", "exec", name_}; }
    // Enters the namespace on the calling thread (for sockets a test opens itself).
    bool enter_on_this_thread() const;

private:
    std::string name_;
    bool ok_ = false;
    std::string why_;
};

// Skips the test when no namespace can be made (not root, no iproute2); in CI a failure.
#define REQUIRE_NETNS(ns)                       \
    if (!(ns).ok()) {                           \
        if (getenv("CI")) FAIL() << (ns).why(); \
        GTEST_SKIP() << (ns).why();             \
    }

}  // namespace kvmkit::test
