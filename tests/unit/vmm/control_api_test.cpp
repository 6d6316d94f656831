// The control API's HTTP mapping, against a fake target on a real UNIX socket.
#include "vmm/control_api.hpp"

#include <gtest/gtest.h>
#include <stdlib.h>

#include <atomic>
#include <filesystem>
#include <thread>

#include "http/client.hpp"
#include "http/unix_socket.hpp"

namespace kvmkit::vmm {
namespace {

using namespace std::chrono_literals;

class FakeTarget : public ControlTarget {
public:
    http::Json ping() override { return {{"version", "t"}, {"pid", 1}}; }
    http::Json info() override { return {{"state", paused ? "paused" : "running"}}; }
    http::Json counters() override { return {{"exits", {{"IO", 3}}}}; }
    ControlResult pause() override {
        if (paused) return ControlResult::fail(409, "the VM is already paused");
        paused = true;
        return ControlResult::ok();
    }
    ControlResult resume() override {
        if (!paused) return ControlResult::fail(409, "the VM is not paused");
        paused = false;
        return ControlResult::ok();
    }
    ControlResult power_button() override {
        ++presses;
        return ControlResult::ok();
    }
    ControlResult reboot() override {
        ++reboots;
        return ControlResult::ok();
    }
    void shutdown(bool vmm, std::function<void(ControlResult)> stopped) override {
        last_shutdown_vmm = vmm;
        // The VM stops later, on another thread.
        std::thread([stopped] {
            std::this_thread::sleep_for(20ms);
            stopped(ControlResult::ok());
        }).detach();
    }
    void shutdown_answered() override { ++answered; }

    std::atomic<bool> paused{false};
    std::atomic<int> presses{0}, reboots{0}, answered{0};
    std::atomic<bool> last_shutdown_vmm{false};
};

class ControlApiTest : public ::testing::Test {
protected:
    void SetUp() override {
        char tmpl[] = "/tmp/kvmkit-ctl-XXXXXX";
        dir_ = mkdtemp(tmpl);
        path_ = dir_ + "/api.sock";
        auto fd = http::listen_unix(path_);
        ASSERT_TRUE(fd) << fd.error().message();
        auto s = http::ServerThread::start(std::move(*fd), make_control_router(target_));
        ASSERT_TRUE(s) << s.error().message();
        server_ = std::move(*s);
    }
    void TearDown() override {
        server_.reset();
        std::filesystem::remove_all(dir_);
    }
    http::ClientResponse call(const std::string& method, const std::string& endpoint,
                              std::optional<http::Json> body = std::nullopt) {
        auto r = http::request(path_, method, "/api/v1/" + endpoint, body);
        EXPECT_TRUE(r) << r.error().message();
        return r ? *r : http::ClientResponse{};
    }

    FakeTarget target_;
    std::string dir_, path_;
    std::unique_ptr<http::ServerThread> server_;
};

TEST_F(ControlApiTest, QueriesReturnTheTargetsJson) {
    auto r = call("GET", "vmm.ping");
    EXPECT_EQ(r.status, 200);
    EXPECT_EQ(r.json["version"], "t");
    EXPECT_EQ(call("GET", "vm.info").json["state"], "running");
    EXPECT_EQ(call("GET", "vm.counters").json["exits"]["IO"], 3);
}

TEST_F(ControlApiTest, PauseResumeMapTo204And409) {
    EXPECT_EQ(call("PUT", "vm.pause").status, 204);
    EXPECT_EQ(call("GET", "vm.info").json["state"], "paused");
    auto again = call("PUT", "vm.pause");
    EXPECT_EQ(again.status, 409);
    EXPECT_EQ(again.error_message(), "the VM is already paused");
    EXPECT_EQ(call("PUT", "vm.resume").status, 204);
    EXPECT_EQ(call("PUT", "vm.resume").status, 409);
}

TEST_F(ControlApiTest, ActionsAcceptNoBodyOrAnEmptyObjectOnly) {
    EXPECT_EQ(call("PUT", "vm.power-button").status, 204);
    EXPECT_EQ(call("PUT", "vm.power-button", http::Json::object()).status, 204);
    auto r = call("PUT", "vm.power-button", http::Json{{"force", true}});
    EXPECT_EQ(r.status, 400);
    EXPECT_NE(r.error_message().find("takes no request body"), std::string::npos);
    EXPECT_EQ(target_.presses, 2);
}

TEST_F(ControlApiTest, WrongMethodsAndUnknownEndpoints) {
    EXPECT_EQ(call("GET", "vm.pause").status, 405);
    EXPECT_EQ(call("PUT", "vm.info").status, 405);
    EXPECT_EQ(call("POST", "vm.reboot").status, 405);
    auto r = call("GET", "vm.nonsense");
    EXPECT_EQ(r.status, 404);
    EXPECT_TRUE(r.json.contains("error"));
    EXPECT_EQ(target_.reboots, 0);
}

TEST_F(ControlApiTest, ShutdownAnswersOnceTheVmIsDownAndReportsTheAnswer) {
    auto r = call("PUT", "vm.shutdown");
    EXPECT_EQ(r.status, 204);
    EXPECT_FALSE(target_.last_shutdown_vmm);
    for (int i = 0; i < 500 && target_.answered < 1; ++i) std::this_thread::sleep_for(2ms);
    EXPECT_EQ(target_.answered, 1);
    EXPECT_EQ(call("PUT", "vmm.shutdown").status, 204);
    EXPECT_TRUE(target_.last_shutdown_vmm);
}

}  // namespace
}  // namespace kvmkit::vmm
