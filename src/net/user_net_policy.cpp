#include "net/user_net_policy.hpp"

#include <cstdio>

namespace kvmkit::net {

namespace {

constexpr uint16_t kEtherTypeIpv4 = 0x0800;
constexpr uint16_t kEtherTypeArp = 0x0806;
constexpr size_t kEthHeader = 14;
constexpr uint8_t kProtoUdp = 17;
constexpr uint16_t kDhcpServerPort = 67;

uint16_t be16(std::span<const uint8_t> b, size_t off) {
    return static_cast<uint16_t>(b[off] << 8 | b[off + 1]);
}
uint32_t be32(std::span<const uint8_t> b, size_t off) {
    return uint32_t{b[off]} << 24 | uint32_t{b[off + 1]} << 16 | uint32_t{b[off + 2]} << 8 | b[off + 3];
}

}  // namespace

const char* to_string(GuestFrameVerdict v) {
    switch (v) {
        case GuestFrameVerdict::Pass:
            return "pass";
        case GuestFrameVerdict::Malformed:
            return "malformed";
        case GuestFrameVerdict::NotAllowedType:
            return "not ARP or IPv4";
        case GuestFrameVerdict::NotAllowedTarget:
            return "destination is not the host (10.0.2.2)";
    }
    return "?";
}

GuestFrameVerdict classify_guest_frame(std::span<const uint8_t> frame, const UserNetAddresses& addrs) {
    if (frame.size() < kEthHeader) return GuestFrameVerdict::Malformed;
    uint16_t type = be16(frame, 12);
    if (type == kEtherTypeArp) return GuestFrameVerdict::Pass;
    if (type != kEtherTypeIpv4) return GuestFrameVerdict::NotAllowedType;

    auto ip = frame.subspan(kEthHeader);
    if (ip.size() < 20) return GuestFrameVerdict::Malformed;
    if ((ip[0] >> 4) != 4) return GuestFrameVerdict::Malformed;
    size_t ihl = size_t{ip[0] & 0x0fu} * 4;
    size_t total = be16(ip, 2);
    if (ihl < 20 || total < ihl || total > ip.size()) return GuestFrameVerdict::Malformed;

    uint32_t dst = be32(ip, 16);
    if (dst == addrs.gateway) return GuestFrameVerdict::Pass;

    // DHCP: a client without an address broadcasts (or, renewing, may unicast
    // to the server, which is the gateway and passed above). Only the first
    // fragment carries the UDP header; a fragmented DHCP request is not real.
    uint16_t frag = be16(ip, 6);
    bool fragment = (frag & 0x3fff) != 0;  // MF set or a non-zero offset
    if (dst == 0xffffffffu && ip[9] == kProtoUdp && !fragment && total >= ihl + 8 &&
        be16(ip, ihl + 2) == kDhcpServerPort)
        return GuestFrameVerdict::Pass;
    return GuestFrameVerdict::NotAllowedTarget;
}

const char* format_ipv4(uint32_t a, char (&buf)[16]) {
    std::snprintf(buf, sizeof buf, "%u.%u.%u.%u", a >> 24, (a >> 16) & 0xff, (a >> 8) & 0xff, a & 0xff);
    return buf;
}

}  // namespace kvmkit::net
