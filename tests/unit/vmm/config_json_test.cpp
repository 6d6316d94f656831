// vm_config_from_json / vm_config_to_json: the VM definition schema shared by
// --config, the control API and kvmkitd. Bad documents must name the bad key.
#include "vmm/config_json.hpp"

#include <gtest/gtest.h>

using namespace kvmkit::vmm;

namespace {

std::string error_of(const std::string& text) {
    auto r = vm_config_from_json(text);
    EXPECT_FALSE(r) << "accepted: " << text;
    return r ? "" : r.error().message();
}

TEST(ConfigJson, FullDocumentParses) {
    auto r = vm_config_from_json(R"({"name":"web1","kernel":"/k","initrd":"/i","cmdline":"quiet",
        "memory":"1G","cpus":2,"cpu":"minimal","no_reboot":true,
        "disks":[{"path":"/a.raw"},{"path":"/b.raw","readonly":true,"cache":"none"}],
        "rng":true,"console":"virtio"})");
    ASSERT_TRUE(r) << r.error().message();
    EXPECT_EQ(r->name, "web1");
    EXPECT_EQ(r->kernel, "/k");
    EXPECT_EQ(r->initrd, "/i");
    EXPECT_EQ(r->cmdline, "quiet");
    EXPECT_TRUE(r->cmdline_set);
    EXPECT_EQ(r->memory, 1ull << 30);
    EXPECT_EQ(r->cpus, 2u);
    ASSERT_TRUE(r->cpu_profile);
    EXPECT_EQ(*r->cpu_profile, kvmkit::arch::x86_64::CpuProfile::Minimal);
    EXPECT_TRUE(r->no_reboot);
    ASSERT_EQ(r->disks.size(), 2u);
    EXPECT_EQ(r->disks[0].path, "/a.raw");
    EXPECT_FALSE(r->disks[0].readonly);
    EXPECT_EQ(r->disks[0].cache, kvmkit::virtio::CacheMode::Writeback);
    EXPECT_TRUE(r->disks[1].readonly);
    EXPECT_EQ(r->disks[1].cache, kvmkit::virtio::CacheMode::None);
    EXPECT_TRUE(r->rng);
    EXPECT_TRUE(r->virtio_console);
}

TEST(ConfigJson, EmptyObjectGivesDefaults) {
    auto r = vm_config_from_json("{}");
    ASSERT_TRUE(r);
    VmConfig d;
    EXPECT_EQ(r->name, d.name);
    EXPECT_EQ(r->memory, d.memory);
    EXPECT_EQ(r->cpus, 1u);
    EXPECT_FALSE(r->cmdline_set);
    EXPECT_FALSE(r->cpu_profile);
}

TEST(ConfigJson, MemoryAsByteCount) {
    auto r = vm_config_from_json(R"({"memory": 268435456})");
    ASSERT_TRUE(r);
    EXPECT_EQ(r->memory, 256ull << 20);
}

TEST(ConfigJson, RoundTrip) {
    VmConfig c;
    c.name = "rt";
    c.kernel = "/boot/k";
    c.cmdline = "";
    c.cmdline_set = true;
    c.memory = (3ull << 30) + (5ull << 20);
    c.cpus = 3;
    c.cpu_profile = kvmkit::arch::x86_64::CpuProfile::Host;
    c.disks.push_back({"/x", true, kvmkit::virtio::CacheMode::None});
    c.rng = true;
    auto r = vm_config_from_json(vm_config_to_json(c));
    ASSERT_TRUE(r) << r.error().message();
    EXPECT_EQ(vm_config_to_json(*r), vm_config_to_json(c));
    EXPECT_TRUE(r->cmdline_set) << "an empty but given cmdline must survive";
    EXPECT_EQ(r->memory, c.memory);
}

TEST(ConfigJson, ErrorsNameTheKey) {
    EXPECT_NE(error_of("{\"name\": 5}").find("\"name\""), std::string::npos);
    EXPECT_NE(error_of("{\"disk\": []}").find("\"disk\": unknown key"), std::string::npos);
    EXPECT_NE(error_of("{\"cpus\": -1}").find("\"cpus\""), std::string::npos);
    EXPECT_NE(error_of("{\"cpus\": 1.5}").find("\"cpus\""), std::string::npos);
    EXPECT_NE(error_of("{\"memory\": \"lots\"}").find("\"memory\""), std::string::npos);
    EXPECT_NE(error_of("{\"cpu\": \"pentium\"}").find("\"cpu\""), std::string::npos);
    EXPECT_NE(error_of("{\"console\": \"vga\"}").find("\"console\""), std::string::npos);
    EXPECT_NE(error_of("{\"disks\": {}}").find("\"disks\""), std::string::npos);
    EXPECT_NE(error_of("{\"disks\": [{\"readonly\": true}]}").find("disks[0].path"), std::string::npos);
    EXPECT_NE(error_of("{\"disks\": [{\"path\": \"/a\", \"size\": 1}]}").find("disks[0].size"), std::string::npos);
    EXPECT_NE(error_of("{\"disks\": [{\"path\": \"/a\", \"cache\": \"unsafe\"}]}").find("disks[0].cache"),
              std::string::npos);
    EXPECT_NE(error_of("{\"name\": \"\"}").find("\"name\""), std::string::npos);
}

TEST(ConfigJson, NotJsonOrNotAnObject) {
    EXPECT_NE(error_of("{\"name\": ").find("not valid JSON"), std::string::npos);
    EXPECT_NE(error_of("").find("not valid JSON"), std::string::npos);
    EXPECT_NE(error_of("[1,2]").find("expected a JSON object"), std::string::npos);
}

TEST(ConfigJson, FormatSize) {
    EXPECT_EQ(format_size(512ull << 20), "512M");
    EXPECT_EQ(format_size(4ull << 30), "4G");
    EXPECT_EQ(format_size(1000), "1000");
}

}  // namespace

namespace {

TEST(ConfigJson, Nets) {
    auto r = vm_config_from_json(R"({"nets": [
        {"backend": "tap", "ifname": "kvmkit0", "vhost": true, "mac": "52:54:00:12:34:56"},
        {"backend": "user", "hostfwd": ["tcp:127.0.0.1:8080-:80", "tcp::2222-:22"]},
        {"backend": "tap"}]})");
    ASSERT_TRUE(r) << r.error().message();
    ASSERT_EQ(r->nets.size(), 3u);
    EXPECT_EQ(r->nets[0].backend, kvmkit::net::NetBackendKind::Tap);
    EXPECT_EQ(r->nets[0].ifname, "kvmkit0");
    EXPECT_TRUE(r->nets[0].vhost);
    ASSERT_TRUE(r->nets[0].mac);
    EXPECT_EQ(r->nets[0].mac->to_string(), "52:54:00:12:34:56");
    EXPECT_EQ(r->nets[1].backend, kvmkit::net::NetBackendKind::User);
    ASSERT_EQ(r->nets[1].hostfwd.size(), 2u);
    EXPECT_EQ(r->nets[1].hostfwd[1].host_addr, "127.0.0.1");
    EXPECT_EQ(r->nets[1].hostfwd[1].host_port, 2222);
    EXPECT_FALSE(r->nets[2].mac);
    EXPECT_TRUE(r->nets[2].ifname.empty());
}

TEST(ConfigJson, NetsRoundTrip) {
    VmConfig c;
    c.nets.push_back(*kvmkit::net::parse_net_option("tap,ifname=t0,vhost=on,mac=52:54:00:00:00:01"));
    c.nets.push_back(*kvmkit::net::parse_net_option("user,hostfwd=tcp::8080-:80,hostfwd=udp:127.0.0.3:53-10.0.2.15:53"));
    c.nets.push_back(*kvmkit::net::parse_net_option("tap"));
    auto r = vm_config_from_json(vm_config_to_json(c));
    ASSERT_TRUE(r) << r.error().message();
    EXPECT_EQ(r->nets, c.nets);
}

TEST(ConfigJson, NetErrorsNameTheKey) {
    EXPECT_NE(error_of(R"({"nets": {}})").find("\"nets\": expected an array"), std::string::npos);
    EXPECT_NE(error_of(R"({"nets": [5]})").find("\"nets[0]\": expected an object"), std::string::npos);
    EXPECT_NE(error_of(R"({"nets": [{}]})").find("nets[0].backend\": missing"), std::string::npos);
    EXPECT_NE(error_of(R"({"nets": [{"backend": "bridge"}]})").find("nets[0].backend\": use"), std::string::npos);
    EXPECT_NE(error_of(R"({"nets": [{"backend": "tap", "vhost": "on"}]})").find("nets[0].vhost\": expected true or false"),
              std::string::npos);
    EXPECT_NE(error_of(R"({"nets": [{"backend": "tap", "ifname": "a/b"}]})").find("nets[0].ifname"), std::string::npos);
    EXPECT_NE(error_of(R"({"nets": [{"backend": "tap", "mac": "01:00:00:00:00:00"}]})").find("nets[0].mac\": mac"),
              std::string::npos);
    EXPECT_NE(error_of(R"({"nets": [{"backend": "tap", "hostfwd": []}]})").find("nets[0].hostfwd\": not an option of backend \"tap\""),
              std::string::npos);
    EXPECT_NE(error_of(R"({"nets": [{"backend": "user", "ifname": "x"}]})").find("nets[0].ifname\": not an option"),
              std::string::npos);
    EXPECT_NE(error_of(R"({"nets": [{"backend": "user", "hostfwd": "tcp::1-:1"}]})").find("nets[0].hostfwd\": expected an array"),
              std::string::npos);
    EXPECT_NE(error_of(R"({"nets": [{"backend": "user", "hostfwd": ["tcp:10.0.0.1:1-:1"]}]})")
                  .find("\"nets[0].hostfwd[0]\": hostfwd 'tcp:10.0.0.1:1-:1': host address 10.0.0.1 is not loopback"),
              std::string::npos);
    EXPECT_NE(error_of(R"({"nets": [{"backend": "user", "speed": 1}]})").find("nets[0].speed\": unknown key"),
              std::string::npos);
}

}  // namespace
