// The control API (--api-socket) and the console socket (--console-socket)
// on real VMs: the project's test guest in its idle mode (tests/guests:
// tick= prints "KT: tick N" periodically, pwrbtn=1 powers off on the ACPI
// power button), and once the default Linux guest for the power button.
#include <gtest/gtest.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstdlib>
#include <thread>

#include "guest_assets.hpp"
#include "http/client.hpp"
#include "http/unix_socket.hpp"
#include "vm_process.hpp"

namespace kvmkit::test {
namespace {

constexpr auto kBootTimeout = 120s;
constexpr auto kApiTimeout = 30s;

using http::Json;

// A test-guest VM with its control socket (and optionally a console socket).
class ApiVm {
public:
    ApiVm(const std::string& cmdline, std::vector<std::string> extra = {}, bool console_socket = false) {
        api_ = dir_.path() + "/api.sock";
        console_ = dir_.path() + "/console.sock";
        std::vector<std::string> args = {"--kernel",  testguest_elf(), "--memory",     "64M",
                                         "--cmdline", cmdline,         "--api-socket", api_};
        if (console_socket) args.insert(args.end(), {"--console-socket", console_});
        args.insert(args.end(), extra.begin(), extra.end());
        vm_ = std::make_unique<VmProcess>(args);
    }

    VmProcess& vm() { return *vm_; }
    const std::string& api_path() const { return api_; }
    const std::string& console_path() const { return console_; }
    const std::string& dir() const { return dir_.path(); }

    // Waits until the API answers a ping.
    bool wait_api() {
        auto deadline = std::chrono::steady_clock::now() + kApiTimeout;
        while (std::chrono::steady_clock::now() < deadline) {
            auto r = http::request(api_, "GET", "/api/v1/vmm.ping", std::nullopt, 2s);
            if (r && r->status == 200) return true;
            if (vm_->wait_exit(0ms)) return false;
            std::this_thread::sleep_for(20ms);
        }
        return false;
    }

    http::ClientResponse call(const std::string& method, const std::string& endpoint,
                              std::optional<Json> body = std::nullopt) {
        auto r = http::request(api_, method, "/api/v1/" + endpoint, body, kApiTimeout);
        EXPECT_TRUE(r) << method << " " << endpoint << ": " << r.error().message();
        return r ? *r : http::ClientResponse{};
    }

private:
    TempDir dir_;
    std::string api_, console_;
    std::unique_ptr<VmProcess> vm_;
};

uint64_t exit_total(const Json& counters) {
    uint64_t n = 0;
    for (const auto& [reason, count] : counters["exits"].items()) n += count.get<uint64_t>();
    return n;
}

TEST(ControlApi, PingAndInfoDescribeTheVm) {
    REQUIRE_KVM();
    ApiVm v("tests=none tick=200", {"--cpus", "2", "--name", "api-info"});
    ASSERT_TRUE(v.wait_api()) << v.vm().errors();
    ASSERT_TRUE(v.vm().wait_for("KT: idle", kBootTimeout)) << v.vm().output();

    auto ping = v.call("GET", "vmm.ping");
    EXPECT_EQ(ping.status, 200);
    EXPECT_EQ(ping.json["pid"], v.vm().pid());  // `kvmkit run` execs kvmkit-vmm
    EXPECT_TRUE(ping.json["version"].is_string());

    auto info = v.call("GET", "vm.info");
    ASSERT_EQ(info.status, 200) << info.body;
    EXPECT_EQ(info.json["state"], "running");
    EXPECT_EQ(info.json["memory"], 64u << 20);
    EXPECT_EQ(info.json["cpus"], 2);
    EXPECT_EQ(info.json["config"]["name"], "api-info");
    EXPECT_EQ(info.json["config"]["memory"], "64M");
    EXPECT_EQ(info.json["config"]["kernel"], testguest_elf());
    EXPECT_EQ(info.json["config"]["cmdline"], "tests=none tick=200");

    struct stat st {};
    ASSERT_EQ(stat(v.api_path().c_str(), &st), 0);
    EXPECT_EQ(st.st_mode & 0777, 0600u);  // root-only, as the daemon expects
}

TEST(ControlApi, PauseStopsTheGuestAndResumeRestartsIt) {
    REQUIRE_KVM();
    ApiVm v("tests=none tick=100");
    ASSERT_TRUE(v.wait_api()) << v.vm().errors();
    ASSERT_TRUE(v.vm().wait_for("KT: tick 3\r\n", kBootTimeout)) << v.vm().output();

    ASSERT_EQ(v.call("PUT", "vm.pause").status, 204);
    EXPECT_EQ(v.call("GET", "vm.info").json["state"], "paused");
    std::this_thread::sleep_for(300ms);  // let our reader drain what was printed before the pause
    const std::string at_pause = v.vm().output();
    const uint64_t exits_at_pause = exit_total(v.call("GET", "vm.counters").json);

    // Ten periods later: nothing printed, no VM exit taken (the vCPU is out of KVM_RUN).
    std::this_thread::sleep_for(1000ms);
    EXPECT_EQ(v.vm().output(), at_pause);
    EXPECT_EQ(exit_total(v.call("GET", "vm.counters").json), exits_at_pause);

    auto again = v.call("PUT", "vm.pause");
    EXPECT_EQ(again.status, 409);
    EXPECT_EQ(again.error_message(), "the VM is already paused");

    // The last tick before the pause, and the next one after the resume.
    size_t last = at_pause.rfind("KT: tick ");
    ASSERT_NE(last, std::string::npos);
    long n = std::strtol(at_pause.c_str() + last + 9, nullptr, 10);
    ASSERT_EQ(v.call("PUT", "vm.resume").status, 204);
    EXPECT_EQ(v.call("GET", "vm.info").json["state"], "running");
    std::string next = "KT: tick " + std::to_string(n + 1) + "\r\n";
    EXPECT_TRUE(v.vm().wait_for_from(next, at_pause.size(), 60s)) << v.vm().output().substr(at_pause.size());
    EXPECT_GT(exit_total(v.call("GET", "vm.counters").json), exits_at_pause);
    EXPECT_EQ(v.call("PUT", "vm.resume").status, 409);

    // Pause and resume again: the cycle repeats.
    ASSERT_EQ(v.call("PUT", "vm.pause").status, 204);
    ASSERT_EQ(v.call("PUT", "vm.resume").status, 204);
    size_t mark = v.vm().output().size();
    EXPECT_TRUE(v.vm().wait_for_from("KT: tick ", mark, 60s));
}

TEST(ControlApi, PauseStopsEveryVcpu) {
    REQUIRE_KVM();
    // The test guest parks its APs in hlt; they must park in kvmkit too.
    ApiVm v("tests=smp tick=100", {"--cpus", "3"});
    ASSERT_TRUE(v.wait_api());
    ASSERT_TRUE(v.vm().wait_for("KT: tick 2\r\n", kBootTimeout)) << v.vm().output();
    ASSERT_EQ(v.call("PUT", "vm.pause").status, 204);
    auto c = v.call("GET", "vm.counters").json;
    ASSERT_EQ(c["vcpus"].size(), 3u);
    std::this_thread::sleep_for(500ms);
    EXPECT_EQ(v.call("GET", "vm.counters").json["vcpus"], c["vcpus"]);  // no vCPU took an exit
    ASSERT_EQ(v.call("PUT", "vm.resume").status, 204);
    size_t mark = v.vm().output().size();
    EXPECT_TRUE(v.vm().wait_for_from("KT: tick ", mark, 60s));
    EXPECT_NE(v.vm().output().find("KT: PASS smp"), std::string::npos);
}

TEST(ControlApi, PowerButtonPowersOffTheTestGuest) {
    REQUIRE_KVM();
    ApiVm v("tests=none pwrbtn=1");
    ASSERT_TRUE(v.wait_api());
    ASSERT_TRUE(v.vm().wait_for("KT: idle", kBootTimeout)) << v.vm().output();
    EXPECT_TRUE(v.vm().output().find("KT: pwrbtn armed sci=9") != std::string::npos) << v.vm().output();
    ASSERT_EQ(v.call("PUT", "vm.power-button").status, 204);
    ASSERT_TRUE(v.vm().wait_for("KT: pwrbtn pressed sts=0x", 60s)) << v.vm().output();
    auto code = v.vm().wait_exit(60s);
    ASSERT_TRUE(code.has_value()) << v.vm().output();
    EXPECT_EQ(*code, 0) << v.vm().errors();
    EXPECT_NE(v.vm().output().find("KT: end action=poweroff method=pm1_cnt"), std::string::npos);
    EXPECT_NE(v.vm().errors().find(""), std::string::npos);
    EXPECT_NE(access(v.api_path().c_str(), F_OK), 0) << "the VMM removes its socket on exit";
}

TEST(ControlApi, PowerButtonWhilePausedActsOnResume) {
    REQUIRE_KVM();
    ApiVm v("tests=none pwrbtn=1");
    ASSERT_TRUE(v.wait_api());
    ASSERT_TRUE(v.vm().wait_for("KT: idle", kBootTimeout)) << v.vm().output();
    ASSERT_EQ(v.call("PUT", "vm.pause").status, 204);
    ASSERT_EQ(v.call("PUT", "vm.power-button").status, 204);
    std::this_thread::sleep_for(500ms);
    EXPECT_EQ(v.vm().output().find("KT: pwrbtn pressed"), std::string::npos);
    EXPECT_FALSE(v.vm().wait_exit(0ms).has_value());
    ASSERT_EQ(v.call("PUT", "vm.resume").status, 204);
    auto code = v.vm().wait_exit(60s);
    ASSERT_TRUE(code.has_value()) << v.vm().output();
    EXPECT_EQ(*code, 0);
    EXPECT_NE(v.vm().output().find("KT: pwrbtn pressed"), std::string::npos);
}

TEST(ControlApi, RebootRestartsTheGuestAndTheApiSurvives) {
    REQUIRE_KVM();
    ApiVm v("tests=none tick=200");
    ASSERT_TRUE(v.wait_api());
    ASSERT_TRUE(v.vm().wait_for("KT: tick 1\r\n", kBootTimeout)) << v.vm().output();
    EXPECT_EQ(v.call("GET", "vm.info").json["boots"], 1);
    size_t mark = v.vm().output().size();
    ASSERT_EQ(v.call("PUT", "vm.reboot").status, 204);
    auto start = v.vm().wait_for_from("KT: start kvmkit-testguest", mark, kBootTimeout);
    ASSERT_TRUE(start) << v.vm().output();
    ASSERT_TRUE(v.vm().wait_for_from("KT: tick 1\r\n", *start, kBootTimeout)) << v.vm().output();
    auto info = v.call("GET", "vm.info");
    EXPECT_EQ(info.json["boots"], 2);
    EXPECT_EQ(info.json["state"], "running");
    // The new machine is controllable too.
    EXPECT_EQ(v.call("PUT", "vm.pause").status, 204);
    EXPECT_EQ(v.call("PUT", "vm.resume").status, 204);
    EXPECT_EQ(v.call("GET", "vm.counters").json["boot"], 2);
    EXPECT_FALSE(v.vm().wait_exit(0ms).has_value());
}

TEST(ControlApi, RebootWithNoRebootExits) {
    REQUIRE_KVM();
    ApiVm v("tests=none tick=200", {"--no-reboot"});
    ASSERT_TRUE(v.wait_api());
    ASSERT_TRUE(v.vm().wait_for("KT: idle", kBootTimeout));
    ASSERT_EQ(v.call("PUT", "vm.reboot").status, 204);
    auto code = v.vm().wait_exit(60s);
    ASSERT_TRUE(code.has_value());
    EXPECT_EQ(*code, 0);
}

class Shutdown : public ::testing::TestWithParam<const char*> {};

TEST_P(Shutdown, AnswersThenTheVmmExitsZero) {
    REQUIRE_KVM();
    ApiVm v("tests=none tick=200");
    ASSERT_TRUE(v.wait_api());
    ASSERT_TRUE(v.vm().wait_for("KT: idle", kBootTimeout));
    auto r = v.call("PUT", GetParam());
    EXPECT_EQ(r.status, 204) << r.body;
    auto code = v.vm().wait_exit(30s);
    ASSERT_TRUE(code.has_value());
    EXPECT_EQ(*code, 0) << v.vm().errors();
    // A forced stop: the guest did not run its end action.
    EXPECT_EQ(v.vm().output().find("KT: end action"), std::string::npos);
    EXPECT_NE(access(v.api_path().c_str(), F_OK), 0);
}

INSTANTIATE_TEST_SUITE_P(Endpoints, Shutdown, ::testing::Values("vm.shutdown", "vmm.shutdown"),
                         [](const auto& info) { return std::string(info.param[2] == '.' ? "vm" : "vmm"); });

TEST(ControlApi, ShutdownWhilePausedExits) {
    REQUIRE_KVM();
    ApiVm v("tests=none tick=200");
    ASSERT_TRUE(v.wait_api());
    ASSERT_TRUE(v.vm().wait_for("KT: idle", kBootTimeout));
    ASSERT_EQ(v.call("PUT", "vm.pause").status, 204);
    EXPECT_EQ(v.call("PUT", "vm.shutdown").status, 204);
    auto code = v.vm().wait_exit(30s);
    ASSERT_TRUE(code.has_value());
    EXPECT_EQ(*code, 0);
}

TEST(ControlApi, CountersCountExitsAndDeviceIo) {
    REQUIRE_KVM();
    TempDir tmp;
    std::string disk = tmp.write("disk.img", pseudo_random_bytes(1 << 20, 7));
    // blk_read reads 64 sectors (32 KiB); rng reads 64 bytes; then idle with ticks.
    ApiVm v("tests=pci,blk,blk_read,rng blk_count=64 tick=100", {"--disk", disk + ",readonly=on", "--rng"});
    ASSERT_TRUE(v.wait_api());
    ASSERT_TRUE(v.vm().wait_for("KT: tick 2\r\n", kBootTimeout)) << v.vm().output();
    ASSERT_NE(v.vm().output().find("KT: PASS blk_read"), std::string::npos) << v.vm().output();
    ASSERT_NE(v.vm().output().find("KT: PASS rng"), std::string::npos) << v.vm().output();

    auto c1 = v.call("GET", "vm.counters").json;
    // The guest printed every byte through COM1 with outb, polled LSR with inb and probed PCI.
    EXPECT_GT(c1["exits"].value("IO", 0u), v.vm().output().size());
    EXPECT_GT(c1["exits"].value("MMIO", 0u), 0u);  // virtio BARs
    ASSERT_EQ(c1["devices"].size(), 2u) << c1.dump();
    const Json& blk = c1["devices"][0];
    EXPECT_EQ(blk["name"], "virtio-blk");
    EXPECT_GE(blk["counters"]["reads"].get<uint64_t>(), 1u);
    EXPECT_GE(blk["counters"]["bytes_read"].get<uint64_t>(), 64u * 512);
    EXPECT_EQ(blk["counters"]["writes"], 0u);
    EXPECT_EQ(blk["counters"]["errors"], 0u);
    const Json& rng = c1["devices"][1];
    EXPECT_EQ(rng["name"], "virtio-rng");
    EXPECT_GE(rng["counters"]["requests"].get<uint64_t>(), 1u);
    EXPECT_GE(rng["counters"]["bytes_to_guest"].get<uint64_t>(), 64u);

    // Exits keep growing while the guest prints its ticks.
    size_t mark = v.vm().output().size();
    ASSERT_TRUE(v.vm().wait_for_from("KT: tick ", mark, 60s));
    auto c2 = v.call("GET", "vm.counters").json;
    EXPECT_GT(c2["exits"]["IO"].get<uint64_t>(), c1["exits"]["IO"].get<uint64_t>());
    EXPECT_EQ(c2["devices"][0]["counters"]["bytes_read"], blk["counters"]["bytes_read"]);
}

TEST(ControlApi, MalformedRequestsGet4xxAndTheVmKeepsRunning) {
    REQUIRE_KVM();
    ApiVm v("tests=none tick=100");
    ASSERT_TRUE(v.wait_api());
    ASSERT_TRUE(v.vm().wait_for("KT: tick 1\r\n", kBootTimeout));
    auto raw = [&](const std::string& bytes) {
        auto r = http::exchange_raw(v.api_path(), bytes, kApiTimeout);
        EXPECT_TRUE(r) << r.error().message();
        return r ? *r : std::string();
    };
    auto status_of = [](const std::string& response) { return response.substr(0, 12); };

    EXPECT_EQ(status_of(raw(std::string("\x00\xff garbage\r\n\r\n", 14))), "HTTP/1.1 400");
    EXPECT_EQ(status_of(raw("GET /api/v1/vm.info HTTP/1.1\r\nX: " + std::string(64 * 1024, 'a') + "\r\n\r\n")),
              "HTTP/1.1 431");
    EXPECT_EQ(status_of(raw("PUT /api/v1/vm.pause HTTP/1.1\r\nContent-Length: 100000000\r\n\r\n")), "HTTP/1.1 413");
    std::string bad_json = raw("PUT /api/v1/vm.pause HTTP/1.1\r\nContent-Length: 7\r\n\r\n{pause:");
    EXPECT_EQ(status_of(bad_json), "HTTP/1.1 400");
    EXPECT_NE(bad_json.find("{\"error\":"), std::string::npos) << bad_json;
    EXPECT_EQ(status_of(raw("PUT /api/v1/vm.pause HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n")),
              "HTTP/1.1 501");
    EXPECT_EQ(status_of(raw("GET /api/v1/vm.info HTTP/2.0\r\n\r\n")), "HTTP/1.1 505");
    // A client that sends half a request and leaves.
    for (int i = 0; i < 10; ++i) {
        auto fd = http::connect_unix(v.api_path());
        ASSERT_TRUE(fd);
        (void)send(fd->get(), "PUT /api/v1/vm.pa", 17, MSG_NOSIGNAL);
    }

    auto notfound = v.call("GET", "vm.nonexistent");
    EXPECT_EQ(notfound.status, 404);
    EXPECT_TRUE(notfound.json["error"].is_string());
    EXPECT_EQ(v.call("GET", "vm.pause").status, 405);
    EXPECT_EQ(v.call("PUT", "vm.info").status, 405);
    EXPECT_EQ(v.call("DELETE", "vmm.shutdown").status, 405);
    EXPECT_EQ(v.call("PUT", "vm.shutdown", Json{{"now", true}}).status, 400);
    EXPECT_EQ(v.call("PUT", "vm.reboot", Json::array({1, 2})).status, 400);

    // None of it paused, rebooted or stopped the VM.
    auto info = v.call("GET", "vm.info");
    EXPECT_EQ(info.json["state"], "running");
    EXPECT_EQ(info.json["boots"], 1);
    size_t mark = v.vm().output().size();
    EXPECT_TRUE(v.vm().wait_for_from("KT: tick ", mark, 60s));
    EXPECT_FALSE(v.vm().wait_exit(0ms).has_value());
}

TEST(ControlApi, BadSocketPathIsAClearError) {
    REQUIRE_KVM();
    TempDir tmp;
    std::string file = tmp.write("not-a-socket", {1, 2, 3});
    VmProcess vm({"--kernel", testguest_elf(), "--api-socket", file});
    auto code = vm.wait_exit(30s);
    ASSERT_TRUE(code.has_value());
    EXPECT_EQ(*code, 1);
    EXPECT_NE(vm.errors().find("--api-socket: '" + file + "' exists and is not a socket"), std::string::npos)
        << vm.errors();
}

// ---- console socket ----

// A console client: reads what arrives into a buffer.
class ConsoleClient {
public:
    explicit ConsoleClient(const std::string& path) {
        auto fd = http::connect_unix(path);
        EXPECT_TRUE(fd) << fd.error().message();
        if (fd) fd_ = std::move(*fd);
    }
    bool wait_for(const std::string& needle, std::chrono::milliseconds timeout, size_t from = 0) {
        auto deadline = std::chrono::steady_clock::now() + timeout;
        for (;;) {
            if (got_.find(needle, from) != std::string::npos) return true;
            auto left =
                std::chrono::duration_cast<std::chrono::milliseconds>(deadline - std::chrono::steady_clock::now());
            if (left.count() <= 0) return false;
            pollfd p{fd_.get(), POLLIN, 0};
            if (poll(&p, 1, int(std::min<long>(left.count(), 1000))) <= 0) continue;
            char buf[4096];
            ssize_t n = recv(fd_.get(), buf, sizeof buf, 0);
            if (n <= 0) return got_.find(needle, from) != std::string::npos;
            got_.append(buf, size_t(n));
        }
    }
    void send_text(const std::string& s) {
        ASSERT_EQ(::send(fd_.get(), s.data(), s.size(), MSG_NOSIGNAL), ssize_t(s.size()));
    }
    const std::string& got() const { return got_; }
    void close() { fd_.reset(); }

private:
    base::UniqueFd fd_;
    std::string got_;
};

TEST(ConsoleSocket, ReplayInputSecondClientAndReattach) {
    REQUIRE_KVM();
    // uart_rx waits for one byte typed on the console, then the guest ticks.
    ApiVm v("tests=uart_rx rx_timeout=120 tick=100", {}, /*console_socket=*/true);
    ASSERT_TRUE(v.wait_api()) << v.vm().errors();

    // Attach after the guest has printed: the history is replayed.
    std::this_thread::sleep_for(500ms);
    ConsoleClient a(v.console_path());
    ASSERT_TRUE(a.wait_for("KT: ready-for-input", kBootTimeout)) << a.got();
    EXPECT_NE(a.got().find("KT: start kvmkit-testguest"), std::string::npos) << a.got();

    // One client at a time: the second is told so and closed.
    {
        ConsoleClient b(v.console_path());
        EXPECT_TRUE(b.wait_for("console busy", 10s)) << b.got();
    }

    // Input goes to the guest's UART.
    a.send_text("Z");
    ASSERT_TRUE(a.wait_for("KT: uart_rx byte=0x5a char=Z", 60s)) << a.got();
    ASSERT_TRUE(a.wait_for("KT: tick 2\r\n", 60s)) << a.got();
    a.close();

    // Output while nobody is attached is kept and replayed to the next client.
    std::this_thread::sleep_for(1000ms);
    ConsoleClient c(v.console_path());
    ASSERT_TRUE(c.wait_for("KT: tick 5\r\n", 60s)) << c.got();
    EXPECT_NE(c.got().find("KT: uart_rx byte=0x5a"), std::string::npos);

    // Nothing of the console reaches the VMM's stdout.
    EXPECT_EQ(v.vm().output().find("KT:"), std::string::npos) << v.vm().output();
    EXPECT_EQ(v.call("PUT", "vm.shutdown").status, 204);
    ASSERT_TRUE(v.vm().wait_exit(30s).has_value());
    EXPECT_NE(access(v.console_path().c_str(), F_OK), 0) << "the console socket is removed on exit";
}

// The 64 KiB bound of the history is tested in tests/unit/vmm/console_socket_test.cpp:
// the test guest prints ~1 KiB/s under emulation, a minute per 64 KiB.

// ---- the default Linux guest ----

TEST(ControlApiLinux, PowerButtonShutsTheDefaultGuestDownCleanly) {
    REQUIRE_LINUX_GUEST();
    TempDir tmp;
    std::string api = tmp.path() + "/api.sock";
    VmProcess vm({"--memory", "256M", "--api-socket", api});
    ASSERT_TRUE(vm.wait_for("KVMKIT-GUEST-READY", 600s)) << vm.output() << vm.errors();
    // acpid is up once it has written its pid file; ask the shell to say so.
    vm.send("while [ ! -s /run/acpid.pid ]; do sleep 1; done; echo acpid-$((1+1))-up\n");
    ASSERT_TRUE(vm.wait_for("acpid-2-up", 180s)) << vm.output();
    auto r = http::request(api, "PUT", "/api/v1/vm.power-button", std::nullopt, 30s);
    ASSERT_TRUE(r) << r.error().message();
    EXPECT_EQ(r->status, 204);
    auto code = vm.wait_exit(300s);
    ASSERT_TRUE(code.has_value()) << "the guest did not shut down\n" << vm.output();
    EXPECT_EQ(*code, 0) << vm.errors();
    const std::string out = vm.output();
    // busybox acpid ran /etc/acpi/PWRF/00000080, init ran its shutdown, the kernel powered off.
    EXPECT_NE(out.find("acpid: power button pressed"), std::string::npos) << out;
    EXPECT_NE(out.find("kvmkit-init: poweroff: stopping processes, unmounting"), std::string::npos) << out;
    EXPECT_NE(out.find("reboot: Power down"), std::string::npos) << out;
}

}  // namespace
}  // namespace kvmkit::test
