// virtio-net with the default Linux guest's real driver (virtio_net, with the
// checksum and TSO offloads the TAP offers) in a test-made network namespace:
// the guest gets its address from busybox udhcpd serving the tap, pings the
// namespace side, and moves data both ways over TCP to a server this test
// runs inside the namespace. The guest runs emulated: generous time-outs.
#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <mutex>
#include <thread>

#include "guest_assets.hpp"
#include "netns.hpp"
#include "vm_process.hpp"

namespace kvmkit::test {
namespace {

constexpr auto kLinuxBootTimeout = 600s;
constexpr auto kCommandTimeout = 600s;
constexpr const char* kMarker = "KVMKIT-GUEST-READY";
constexpr size_t kBlob = 256 * 1024;

bool run(VmProcess& vm, const std::string& cmd, const std::string& marker) {
    size_t from = vm.output().size();
    vm.send(cmd + "; echo " + marker + "-$((40+2))\n");
    return vm.wait_for_from(marker + "-42", from, kCommandTimeout).has_value();
}

std::string sha256_of(const std::string& path) {
    FILE* p = popen(("sha256sum " + path).c_str(), "r");
    if (!p) return "";
    char buf[128] = {};
    if (!fgets(buf, sizeof buf, p)) buf[0] = 0;
    pclose(p);
    return std::string(buf).substr(0, 64);
}

bool read_exact(int fd, void* p, size_t n) {
    auto* b = static_cast<uint8_t*>(p);
    size_t got = 0;
    while (got < n) {
        pollfd pfd{fd, POLLIN, 0};
        if (poll(&pfd, 1, 600000) <= 0) return false;
        ssize_t r = read(fd, b + got, n - got);
        if (r <= 0) return false;
        got += size_t(r);
    }
    return true;
}

// A TCP server on 10.77.1.1:5555 inside the namespace, for three connections
// in turn: (1) reads a line, answers "KVMKIT-TCP-REPLY <line>"; (2) reads
// kBlob bytes into `upload`, answers "GOT <n>"; (3) sends `download` and closes.
class TcpServer {
public:
    TcpServer(const NetNs& ns, std::string upload, std::string download)
        : upload_(std::move(upload)), download_(std::move(download)) {
        thread_ = std::thread([this, &ns] { serve(ns); });
    }
    ~TcpServer() {
        stop_ = true;
        if (thread_.joinable()) thread_.join();
    }
    std::string first_line() {
        std::lock_guard l(m_);
        return line_;
    }
    bool ready_wait() {
        for (int i = 0; i < 100 && !ready_; ++i) std::this_thread::sleep_for(50ms);
        return ready_;
    }

private:
    int accept_one(int ls) {
        while (!stop_) {
            pollfd pfd{ls, POLLIN, 0};
            if (poll(&pfd, 1, 200) > 0) return accept(ls, nullptr, nullptr);
        }
        return -1;
    }
    void serve(const NetNs& ns) {
        if (!ns.enter_on_this_thread()) return;  // this thread's sockets live in the namespace
        int ls = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
        int one = 1;
        setsockopt(ls, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
        sockaddr_in a{};
        a.sin_family = AF_INET;
        a.sin_port = htons(5555);
        inet_pton(AF_INET, "10.77.1.1", &a.sin_addr);
        if (bind(ls, reinterpret_cast<sockaddr*>(&a), sizeof a) || listen(ls, 4)) {
            close(ls);
            return;
        }
        ready_ = true;
        if (int c = accept_one(ls); c >= 0) {
            std::string line;
            char ch;
            while (line.size() < 200 && read_exact(c, &ch, 1) && ch != '\n') line += ch;
            {
                std::lock_guard l(m_);
                line_ = line;
            }
            std::string reply = "KVMKIT-TCP-REPLY " + line + "\n";
            (void)!write(c, reply.data(), reply.size());
            close(c);
        }
        if (int c = accept_one(ls); c >= 0) {
            std::vector<char> buf(kBlob);
            bool ok = read_exact(c, buf.data(), buf.size());
            std::ofstream(upload_, std::ios::binary).write(buf.data(), ok ? buf.size() : 0);
            std::string reply = "GOT " + std::to_string(ok ? buf.size() : 0) + "\n";
            (void)!write(c, reply.data(), reply.size());
            close(c);
        }
        if (int c = accept_one(ls); c >= 0) {
            std::ifstream in(download_, std::ios::binary);
            std::string data((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
            size_t off = 0;
            while (off < data.size()) {
                ssize_t w = write(c, data.data() + off, data.size() - off);
                if (w <= 0) break;
                off += size_t(w);
            }
            close(c);
        }
        close(ls);
    }

    std::string upload_, download_;
    std::thread thread_;
    std::atomic<bool> stop_{false}, ready_{false};
    std::mutex m_;
    std::string line_;
};

TEST(NetLinux, DhcpPingAndTcpBothWaysOverTap) {
    REQUIRE_LINUX_GUEST();
    NetNs ns;
    REQUIRE_NETNS(ns);
    ASSERT_TRUE(ns.add_tap("kt0", "10.77.1.1/24"));
    TempDir tmp;
    std::ofstream(tmp.path() + "/udhcpd.conf") << "start 10.77.1.50\nend 10.77.1.60\ninterface kt0\n"
                                               << "lease_file " << tmp.path() << "/leases\n"
                                               << "pidfile " << tmp.path() << "/udhcpd.pid\n"
                                               << "option subnet 255.255.255.0\noption router 10.77.1.1\n";
    std::ofstream(tmp.path() + "/leases").flush();
    ASSERT_EQ(ns.run("busybox udhcpd -S " + tmp.path() + "/udhcpd.conf"), 0) << "busybox udhcpd";
    struct KillDhcpd {
        std::string pidfile;
        ~KillDhcpd() {
            std::ifstream in(pidfile);
            long pid = 0;
            if (in >> pid && pid > 1) kill(static_cast<pid_t>(pid), SIGTERM);
        }
    } kill_dhcpd{tmp.path() + "/udhcpd.pid"};

    auto blob = pseudo_random_bytes(kBlob, 7);
    std::string download = tmp.write("download.bin", blob);
    std::string upload = tmp.path() + "/upload.bin";
    TcpServer server(ns, upload, download);
    ASSERT_TRUE(server.ready_wait()) << "the test's TCP server could not listen in the namespace";

    VmProcess vm({"--memory", "256M", "--net", "tap,ifname=kt0"}, {}, ns.exec_prefix());
    ASSERT_TRUE(vm.wait_for(kMarker, kLinuxBootTimeout)) << vm.output() << vm.errors();
    // DHCP from the namespace's udhcpd.
    ASSERT_TRUE(run(vm,
                    "udhcpc -i eth0 -n -q -t 20 -T 3 >/dev/null 2>&1; echo A''DDR=$(ip -4 addr show eth0 | "
                    "grep -o 'inet [0-9.]*')=",
                    "n1"))
        << vm.output();
    auto addr = line_after(vm.output(), "ADDR=inet ");
    ASSERT_TRUE(addr.has_value()) << vm.output();
    EXPECT_EQ(addr->rfind("10.77.1.5", 0), 0u) << *addr;
    // ICMP both ways through the namespace's kernel.
    ASSERT_TRUE(run(vm, "echo P''ING=$(ping -c 3 -W 10 10.77.1.1 | grep -o '[0-9]* packets received')=", "n2"))
        << vm.output();
    EXPECT_NE(vm.output().find("PING=3 packets received="), std::string::npos) << vm.output();
    // TCP: a line and its answer.
    ASSERT_TRUE(run(vm, "echo T''CP=$(echo hello-from-guest | nc 10.77.1.1 5555)=", "n3")) << vm.output();
    EXPECT_NE(vm.output().find("TCP=KVMKIT-TCP-REPLY hello-from-guest="), std::string::npos) << vm.output();
    EXPECT_EQ(server.first_line(), "hello-from-guest");
    // 256 KiB up (TSO-sized segments when the guest uses the offload) and down, checked end to end.
    ASSERT_TRUE(run(vm,
                    "dd if=/dev/urandom of=/tmp/up bs=1024 count=256 2>/dev/null; echo U''P=$(nc 10.77.1.1 5555 "
                    "</tmp/up)=; echo U''SUM=$(sha256sum /tmp/up | cut -c1-64)=",
                    "n4"))
        << vm.output();
    EXPECT_NE(vm.output().find("UP=GOT 262144="), std::string::npos) << vm.output();
    auto usum = line_after(vm.output(), "USUM=");
    ASSERT_TRUE(usum.has_value());
    EXPECT_EQ(usum->substr(0, 64), sha256_of(upload));
    ASSERT_TRUE(run(vm, "nc 10.77.1.1 5555 >/tmp/down; echo D''SUM=$(sha256sum /tmp/down | cut -c1-64)=", "n5"))
        << vm.output();
    auto dsum = line_after(vm.output(), "DSUM=");
    ASSERT_TRUE(dsum.has_value());
    EXPECT_EQ(dsum->substr(0, 64), sha256_of(download));
    // What the guest's driver negotiated (offloads on, mergeable buffers).
    ASSERT_TRUE(run(vm, "echo F''EAT=$(cat /sys/class/net/eth0/device/features)=", "n6")) << vm.output();
    auto feat = line_after(vm.output(), "FEAT=");
    ASSERT_TRUE(feat.has_value() && feat->size() >= 33) << vm.output();
    // One character per feature bit: CSUM 0, GUEST_CSUM 1, MAC 5, GUEST_TSO4 7, HOST_TSO4 11,
    // MRG_RXBUF 15, STATUS 16, CTRL_VQ 17, VERSION_1 32.
    for (int bit : {0, 1, 5, 7, 11, 15, 16, 17, 32}) EXPECT_EQ((*feat)[bit], '1') << "feature bit " << bit << ": " << *feat;
    vm.send("poweroff\n");
    auto code = vm.wait_exit(kCommandTimeout);
    ASSERT_TRUE(code.has_value()) << vm.output();
    EXPECT_EQ(*code, 0) << vm.errors();
}

}  // namespace
}  // namespace kvmkit::test
