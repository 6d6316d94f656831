// parse_net_option and friends: the --net grammar, the default MAC, and
// errors that name the bad part of the string.
#include "net/net_options.hpp"

#include <gtest/gtest.h>

#include <set>

using namespace kvmkit::net;

namespace {

NetOptions parse_ok(const std::string& s) {
    auto r = parse_net_option(s);
    EXPECT_TRUE(r) << s << ": " << (r ? "" : r.error().message());
    return r ? *r : NetOptions{};
}

std::string error_of(const std::string& s) {
    auto r = parse_net_option(s);
    EXPECT_FALSE(r) << "accepted: " << s;
    return r ? "" : r.error().message();
}

#define EXPECT_HAS(haystack, needle) EXPECT_NE((haystack).find(needle), std::string::npos) << (haystack)

TEST(NetOptions, TapDefaults) {
    auto o = parse_ok("tap");
    EXPECT_EQ(o.backend, NetBackendKind::Tap);
    EXPECT_TRUE(o.ifname.empty());
    EXPECT_FALSE(o.vhost);
    EXPECT_FALSE(o.mac);
    EXPECT_TRUE(o.hostfwd.empty());
}

TEST(NetOptions, TapWithEverything) {
    auto o = parse_ok("tap,ifname=kvmkit0,vhost=on,mac=52:54:00:12:34:56");
    EXPECT_EQ(o.ifname, "kvmkit0");
    EXPECT_TRUE(o.vhost);
    ASSERT_TRUE(o.mac);
    EXPECT_EQ(o.mac->to_string(), "52:54:00:12:34:56");
    EXPECT_FALSE(parse_ok("tap,vhost=off").vhost);
    EXPECT_EQ(parse_ok("tap,ifname=kt%d").ifname, "kt%d");
}

TEST(NetOptions, UserWithForwards) {
    auto o =
        parse_ok("user,hostfwd=tcp:127.0.0.1:8080-:80,hostfwd=tcp::2222-10.0.2.15:22,hostfwd=udp:127.0.0.2:5353-:53");
    EXPECT_EQ(o.backend, NetBackendKind::User);
    ASSERT_EQ(o.hostfwd.size(), 3u);
    EXPECT_EQ(o.hostfwd[0].proto, HostFwdProto::Tcp);
    EXPECT_EQ(o.hostfwd[0].host_addr, "127.0.0.1");
    EXPECT_EQ(o.hostfwd[0].host_port, 8080);
    EXPECT_EQ(o.hostfwd[0].guest_addr, "");
    EXPECT_EQ(o.hostfwd[0].guest_port, 80);
    EXPECT_EQ(o.hostfwd[1].host_addr, "127.0.0.1") << "an omitted host address means 127.0.0.1";
    EXPECT_EQ(o.hostfwd[1].guest_addr, "10.0.2.15");
    EXPECT_EQ(o.hostfwd[1].guest_port, 22);
    EXPECT_EQ(o.hostfwd[2].proto, HostFwdProto::Udp);
    EXPECT_EQ(o.hostfwd[2].host_addr, "127.0.0.2");
    EXPECT_EQ(parse_ok("user").hostfwd.size(), 0u);
}

TEST(NetOptions, RoundTripsThroughFormat) {
    for (const char* s :
         {"tap", "tap,ifname=kvmkit0,vhost=on,mac=52:54:00:12:34:56", "user",
          "user,hostfwd=tcp:127.0.0.1:8080-:80,hostfwd=udp:127.0.0.1:1-10.0.2.15:65535,mac=02:00:00:00:00:01"}) {
        auto o = parse_ok(s);
        EXPECT_EQ(format_net_option(o), s);
        EXPECT_EQ(parse_ok(format_net_option(o)), o);
    }
}

TEST(NetOptions, BadBackend) {
    EXPECT_HAS(error_of(""), "missing backend");
    EXPECT_HAS(error_of("bridge"), "unknown backend 'bridge'");
    EXPECT_HAS(error_of("bridge"), "--net bridge");
    EXPECT_HAS(error_of("TAP"), "unknown backend 'TAP'");
}

TEST(NetOptions, BadOptionsNameTheirPart) {
    EXPECT_HAS(error_of("tap,vhost=maybe"), "vhost: use on or off, not 'maybe'");
    EXPECT_HAS(error_of("tap,colour=red"), "unknown option 'colour'");
    EXPECT_HAS(error_of("tap,ifname"), "'ifname': expected KEY=VALUE");
    EXPECT_HAS(error_of("tap,,vhost=on"), "empty option");
    EXPECT_HAS(error_of("tap,"), "empty option");
    EXPECT_HAS(error_of("tap,ifname=a,ifname=b"), "ifname: given twice");
    EXPECT_HAS(error_of("tap,mac=52:54:00:12:34:56,mac=52:54:00:12:34:57"), "mac: given twice");
    EXPECT_HAS(error_of("user,ifname=tap0"), "ifname: only for tap");
    EXPECT_HAS(error_of("user,vhost=on"), "vhost: only for tap");
    EXPECT_HAS(error_of("tap,hostfwd=tcp::80-:80"), "hostfwd: only for user");
}

TEST(NetOptions, BadIfname) {
    EXPECT_HAS(error_of("tap,ifname="), "ifname: empty");
    EXPECT_HAS(error_of("tap,ifname=abcdefghijklmnop"), "longer than 15");
    EXPECT_HAS(error_of("tap,ifname=a/b"), "not allowed");
    EXPECT_HAS(error_of("tap,ifname=a b"), "not allowed");
    EXPECT_HAS(error_of("tap,ifname=a:1"), "not allowed");
    EXPECT_HAS(error_of("tap,ifname=.."), "not a valid interface name");
    EXPECT_TRUE(validate_ifname("abcdefghijklmno"));  // exactly 15
}

TEST(NetOptions, BadMac) {
    EXPECT_HAS(error_of("tap,mac=52:54:00:12:34"), "mac '52:54:00:12:34'");
    EXPECT_HAS(error_of("tap,mac=52:54:00:12:34:5g"), "six hex pairs");
    EXPECT_HAS(error_of("tap,mac=52.54.00.12.34.56"), "six hex pairs");
    EXPECT_HAS(error_of("tap,mac=01:00:5e:00:00:01"), "multicast");
    EXPECT_HAS(error_of("tap,mac=ff:ff:ff:ff:ff:ff"), "multicast");
    EXPECT_HAS(error_of("tap,mac=00:00:00:00:00:00"), "all-zero");
    auto m = parse_mac("AA-bb-CC-dd-EE-f0");
    ASSERT_TRUE(m);
    EXPECT_EQ(m->to_string(), "aa:bb:cc:dd:ee:f0");
}

TEST(NetOptions, BadHostForwards) {
    EXPECT_HAS(error_of("user,hostfwd=tcp:0.0.0.0:8080-:80"), "not loopback");
    EXPECT_HAS(error_of("user,hostfwd=tcp:192.168.1.1:8080-:80"), "not loopback");
    EXPECT_HAS(error_of("user,hostfwd=tcp:localhost:8080-:80"), "'localhost' is not an IPv4 address");
    EXPECT_HAS(error_of("user,hostfwd=sctp::8080-:80"), "protocol 'sctp'");
    EXPECT_HAS(error_of("user,hostfwd=tcp::8080:80"), "no '-'");
    EXPECT_HAS(error_of("user,hostfwd=tcp:8080-:80"), "host side must be PROTO:ADDR:PORT");
    EXPECT_HAS(error_of("user,hostfwd=tcp::8080-80"), "guest side must be ADDR:PORT");
    EXPECT_HAS(error_of("user,hostfwd=tcp::0-:80"), "host port '0'");
    EXPECT_HAS(error_of("user,hostfwd=tcp::65536-:80"), "host port '65536'");
    EXPECT_HAS(error_of("user,hostfwd=tcp::-:80"), "host port is missing");
    EXPECT_HAS(error_of("user,hostfwd=tcp::80-:http"), "guest port 'http'");
    EXPECT_HAS(error_of("user,hostfwd=tcp::80-10.0.2:80"), "guest address '10.0.2'");
    EXPECT_HAS(error_of("user,hostfwd=tcp::0-:80"), "--net user,hostfwd=tcp::0-:80: hostfwd");
}

TEST(NetOptions, DefaultMacIsStableUnicastAndLocal) {
    MacAddress a = default_mac("web1", 0);
    EXPECT_EQ(a, default_mac("web1", 0)) << "same name and index, same MAC";
    EXPECT_EQ(a.bytes[0] & 0x01, 0) << "unicast";
    EXPECT_EQ(a.bytes[0] & 0x02, 0x02) << "locally administered";
    std::set<std::string> seen;
    for (const char* name : {"web1", "web2", "kvmkit", "a", ""})
        for (size_t i = 0; i < 4; ++i) {
            auto m = default_mac(name, i);
            EXPECT_EQ(m.bytes[0] & 0x03, 0x02);
            EXPECT_TRUE(parse_mac(m.to_string())) << m.to_string();
            seen.insert(m.to_string());
        }
    EXPECT_EQ(seen.size(), 20u) << "different names and NIC indexes get different MACs";
}

}  // namespace
