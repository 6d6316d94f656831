// A host port forward of the user-mode network: connections to a port on the
// host's loopback go to a port of the guest (QEMU's `hostfwd=`).
//
// Syntax (QEMU's, restricted to loopback):
//   [tcp|udp]:[HOSTADDR]:HOSTPORT-[GUESTADDR]:GUESTPORT
// HOSTADDR must be a loopback address (127.0.0.0/8); empty means 127.0.0.1
// (QEMU's empty means every interface, which would expose the guest to the
// network). GUESTADDR must be a guest address of the user network; empty
// means the address DHCP hands out (10.0.2.15).
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

#include "base/result.hpp"
#include "net/slirp/user_net_policy.hpp"

namespace kvmkit::net {

struct HostForward {
    bool udp = false;
    uint32_t host_addr = 0x7f000001;  // host byte order
    uint16_t host_port = 0;
    uint32_t guest_addr = 0;  // host byte order; 0: the DHCP address
    uint16_t guest_port = 0;

    std::string to_string() const;  // canonical form, e.g. "tcp:127.0.0.1:8080-10.0.2.15:80"
    bool operator==(const HostForward&) const = default;
};

// Parses the value of `hostfwd=`; errors name the input and what is wrong.
base::Result<HostForward> parse_host_forward(std::string_view spec, const UserNetAddresses& addrs = {});

// Checks a forward built by other means (e.g. a JSON config).
base::Result<void> validate_host_forward(const HostForward& fwd, const UserNetAddresses& addrs = {});

}  // namespace kvmkit::net
