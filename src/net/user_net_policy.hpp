// What a guest on the user-mode network (libslirp) may send, and where.
//
// The project's network rule: a guest on `--net user` reaches the host's
// loopback and nothing else. libslirp alone does not give that: outside its
// `restricted` mode (which also cuts the guest off from the host) it connects
// any destination the guest names to the same address on the real network,
// and only the gateway address is mapped to 127.0.0.1 (libslirp 4.7,
// socket.c sotranslate_out). So every frame from the guest passes this
// filter before libslirp sees it:
//   - ARP passes (libslirp answers only for its own addresses);
//   - IPv4 to the gateway (10.0.2.2, any protocol) passes: libslirp maps it
//     to 127.0.0.1 for TCP and UDP and answers ICMP echo itself;
//   - DHCP (UDP to port 67 of the gateway or 255.255.255.255) passes;
//   - everything else is dropped: other addresses (the DNS alias 10.0.2.3
//     included), IPv6, VLAN tags, malformed headers.
// A second, independent line of defence is in UserNetwork: libslirp's
// outbound sockets are bound to 127.0.0.1, from which the kernel routes
// nowhere but loopback.
#pragma once

#include <cstdint>
#include <span>

namespace kvmkit::net {

// The user-mode network's addresses, in host byte order. The values are
// QEMU's, which guests and users know.
struct UserNetAddresses {
    uint32_t network = 0x0a000200;     // 10.0.2.0
    uint32_t netmask = 0xffffff00;     // /24
    uint32_t gateway = 0x0a000202;     // 10.0.2.2: the host's loopback, seen from the guest
    uint32_t dns = 0x0a000203;         // 10.0.2.3: announced by DHCP, answered by nobody
    uint32_t dhcp_start = 0x0a00020f;  // 10.0.2.15: the first (usually only) guest address
};

enum class GuestFrameVerdict {
    Pass,
    Malformed,         // too short, bad IP header, bad lengths
    NotAllowedType,    // an EtherType other than ARP and IPv4 (IPv6, VLAN, ...)
    NotAllowedTarget,  // IPv4 to anything but the gateway (or DHCP)
};

const char* to_string(GuestFrameVerdict v);

// Decides whether an Ethernet frame from the guest may go to libslirp.
// Pure: looks only at the bytes.
GuestFrameVerdict classify_guest_frame(std::span<const uint8_t> frame, const UserNetAddresses& addrs);

// "a.b.c.d" for an address in host byte order (for messages).
const char* format_ipv4(uint32_t addr, char (&buf)[16]);

}  // namespace kvmkit::net
