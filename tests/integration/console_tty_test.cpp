// On a terminal the console is raw and Ctrl-A x quits, as in QEMU.
#include <gtest/gtest.h>
#include <poll.h>
#include <pty.h>
#include <signal.h>
#include <sys/wait.h>
#include <termios.h>
#include <unistd.h>

#include <chrono>
#include <string>

#include "guest_assets.hpp"
#include "vm_process.hpp"

namespace kvmkit::test {
namespace {

TEST(ConsoleTty, CtrlAXQuitsAndRestoresTheTerminal) {
    REQUIRE_KVM();
    int master = -1;
    pid_t pid = forkpty(&master, nullptr, nullptr, nullptr);
    ASSERT_GE(pid, 0);
    if (pid == 0) {
        std::string k = testguest_bzimage();
        execl(KVMKIT_BIN, KVMKIT_BIN, "run", "--kernel", k.c_str(), "--cmdline", "tests=none end=halt",
              static_cast<char*>(nullptr));
        _exit(127);
    }
    std::string out;
    ASSERT_TRUE(read_fd_until(master, out, "KT: DONE", std::chrono::seconds(120))) << out;
    // The child switched the terminal to raw mode: no echo, no canonical input.
    termios t{};
    ASSERT_EQ(tcgetattr(master, &t), 0);
    EXPECT_FALSE(t.c_lflag & ECHO);
    EXPECT_FALSE(t.c_lflag & ICANON);

    ASSERT_EQ(write(master, "\x01x", 2), 2);
    auto status = wait_pty_child(pid, master, std::chrono::seconds(30));
    ASSERT_TRUE(status) << "Ctrl-A x did not end the VMM";
    EXPECT_TRUE(WIFEXITED(*status));
    EXPECT_EQ(WEXITSTATUS(*status), 0);
    // ... and put the terminal back as it found it.
    termios after{};
    ASSERT_EQ(tcgetattr(master, &after), 0);
    EXPECT_TRUE(after.c_lflag & ECHO);
    EXPECT_TRUE(after.c_lflag & ICANON);
    close(master);
}

}  // namespace
}  // namespace kvmkit::test
