// What `--net` (and the "nets" array of the JSON VM config) asks for: one NIC
// each, with its backend and the backend's settings.
//
//   --net tap[,ifname=NAME][,vhost=on|off][,mac=52:54:00:12:34:56]
//   --net user[,hostfwd=[tcp|udp]:[HOSTADDR]:HOSTPORT-[GUESTADDR]:GUESTPORT]...[,mac=...]
//
// Parsing only: nothing here opens a device. A bad string is an error that
// names the bad part ("--net tap,vhost=maybe: vhost: use on or off").
// Host forwards may only listen on loopback (127.0.0.0/8): the project's
// network rule keeps guest traffic on this machine.
#pragma once

#include <array>
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "base/result.hpp"

namespace kvmkit::net {

struct MacAddress {
    std::array<uint8_t, 6> bytes{};
    std::string to_string() const;  // "52:54:00:12:34:56"
    bool operator==(const MacAddress&) const = default;
};

// "52:54:00:12:34:56" (hex digits, ':' or '-' separators). Multicast and
// all-zero addresses are refused: a NIC needs a unicast address.
base::Result<MacAddress> parse_mac(const std::string& text);

// The MAC a NIC gets when none is given: stable for a VM name and NIC index
// (a hash of both), locally administered and unicast (first octet xxxxxx10).
MacAddress default_mac(const std::string& vm_name, size_t nic_index);

enum class NetBackendKind { Tap, User };
const char* backend_kind_name(NetBackendKind kind);  // "tap", "user"

enum class HostFwdProto { Tcp, Udp };

// A user-mode port forward: connections to host_addr:host_port on the host
// reach guest_addr:guest_port in the guest (guest_addr empty: the address
// the guest got from the user-mode DHCP server).
struct HostForward {
    HostFwdProto proto = HostFwdProto::Tcp;
    std::string host_addr = "127.0.0.1";  // dotted IPv4, always loopback
    uint16_t host_port = 0;
    std::string guest_addr;  // dotted IPv4 or empty
    uint16_t guest_port = 0;
    bool operator==(const HostForward&) const = default;
};

// "tcp:127.0.0.1:8080-:80", "tcp::8080-10.0.2.15:80", "udp::5353-:53".
base::Result<HostForward> parse_hostfwd(const std::string& text);
std::string format_hostfwd(const HostForward& fwd);  // canonical form, parse_hostfwd round-trips it

// A TAP interface name: 1..15 characters (IFNAMSIZ - 1), no '/', ':' or
// white space; "%d" lets the kernel pick the number ("kvmkit%d").
base::Result<void> validate_ifname(const std::string& name);

struct NetOptions {
    NetBackendKind backend = NetBackendKind::User;
    std::optional<MacAddress> mac;  // nullopt: default_mac(vm name, index)
    // tap
    std::string ifname;  // empty: the kernel picks the name (tapN)
    bool vhost = false;  // vhost=on: kernel data path when /dev/vhost-net exists
    // user
    std::vector<HostForward> hostfwd;
    bool operator==(const NetOptions&) const = default;
};

// Parses one --net value.
base::Result<NetOptions> parse_net_option(const std::string& spec);
// The --net string for `opts` (parse_net_option round-trips it).
std::string format_net_option(const NetOptions& opts);

}  // namespace kvmkit::net
