// Console in socket mode (--console-socket), without a VM: output written as
// the devices write it, a real client on the UNIX socket.
#include <gtest/gtest.h>
#include <poll.h>
#include <stdlib.h>
#include <sys/socket.h>

#include <filesystem>
#include <mutex>
#include <thread>

#include "http/unix_socket.hpp"
#include "vmm/console.hpp"

namespace kvmkit::vmm {
namespace {

using namespace std::chrono_literals;

class RecordingPort : public base::InputPort {
public:
    size_t accept_input(std::span<const uint8_t> bytes) override {
        std::lock_guard lock(mutex);
        size_t n = std::min<size_t>(bytes.size(), 4);  // a small FIFO: the console must retry
        got.append(reinterpret_cast<const char*>(bytes.data()), n);
        if (n < bytes.size()) cb_later = true;
        return n;
    }
    void set_space_callback(std::function<void()> cb) override {
        std::lock_guard lock(mutex);
        space = std::move(cb);
    }
    std::string received() {
        std::lock_guard lock(mutex);
        return got;
    }
    void drained() {  // the guest read the FIFO
        std::function<void()> cb;
        {
            std::lock_guard lock(mutex);
            cb = space;
        }
        if (cb) cb();
    }
    std::mutex mutex;
    std::string got;
    bool cb_later = false;
    std::function<void()> space;
};

class ConsoleSocketTest : public ::testing::Test {
protected:
    void SetUp() override {
        char tmpl[] = "/tmp/kvmkit-con-XXXXXX";
        dir_ = mkdtemp(tmpl);
        path_ = dir_ + "/console.sock";
        ASSERT_TRUE(console_.start_socket(path_));
    }
    void TearDown() override { std::filesystem::remove_all(dir_); }

    void write(const std::string& s) { console_.write_output({reinterpret_cast<const uint8_t*>(s.data()), s.size()}); }
    // Reads until `n` bytes arrived or nothing came for `idle`.
    static std::string read_some(int fd, size_t n, std::chrono::milliseconds idle = 1000ms) {
        std::string out;
        while (out.size() < n) {
            pollfd p{fd, POLLIN, 0};
            if (poll(&p, 1, int(idle.count())) <= 0) break;
            char buf[8192];
            ssize_t r = recv(fd, buf, sizeof buf, 0);
            if (r <= 0) break;
            out.append(buf, size_t(r));
        }
        return out;
    }

    std::string dir_, path_;
    RecordingPort port_;  // outlives console_ (members die in reverse order)
    Console console_{nullptr};
};

TEST_F(ConsoleSocketTest, ReplaysTheLast64KiBOnAttach) {
    std::string all;
    for (int i = 0; all.size() < 100 * 1024; ++i) all += "line " + std::to_string(i) + "\r\n";
    for (size_t off = 0; off < all.size(); off += 100) write(all.substr(off, 100));
    auto fd = http::connect_unix(path_);
    ASSERT_TRUE(fd);
    std::string got = read_some(fd->get(), all.size());
    EXPECT_EQ(got.size(), Console::kConsoleHistory);
    EXPECT_EQ(got, all.substr(all.size() - Console::kConsoleHistory));
}

TEST_F(ConsoleSocketTest, LiveOutputAndInputAndOneClientAtATime) {
    RecordingPort& port = port_;
    console_.attach(&port);
    write("before\n");
    auto a = http::connect_unix(path_);
    ASSERT_TRUE(a);
    EXPECT_EQ(read_some(a->get(), 7), "before\n");
    write("after\n");
    EXPECT_EQ(read_some(a->get(), 6), "after\n");

    auto b = http::connect_unix(path_);
    ASSERT_TRUE(b);
    EXPECT_EQ(read_some(b->get(), 100), "kvmkit: console busy: another client is attached\r\n");

    // Input reaches the port even when it takes it a few bytes at a time.
    const std::string typed = "echo hello\n";
    ASSERT_EQ(send(a->get(), typed.data(), typed.size(), MSG_NOSIGNAL), ssize_t(typed.size()));
    for (int i = 0; i < 500 && port.received().size() < typed.size(); ++i) {
        std::this_thread::sleep_for(2ms);
        port.drained();
    }
    EXPECT_EQ(port.received(), typed);

    // After the first client leaves, the next one is accepted and gets the history.
    a->reset();
    std::this_thread::sleep_for(100ms);
    auto c = http::connect_unix(path_);
    ASSERT_TRUE(c);
    EXPECT_EQ(read_some(c->get(), 13), "before\nafter\n");
    console_.attach(nullptr);
}

TEST_F(ConsoleSocketTest, OutputWithoutAClientNeverBlocks) {
    std::string chunk(4096, 'x');
    for (int i = 0; i < 1000; ++i) write(chunk);  // 4 MiB with nobody reading
    auto fd = http::connect_unix(path_);
    ASSERT_TRUE(fd);
    EXPECT_EQ(read_some(fd->get(), 1 << 20).size(), Console::kConsoleHistory);
}

}  // namespace
}  // namespace kvmkit::vmm
