#include "net/slirp/host_forward.hpp"

#include <arpa/inet.h>

#include <charconv>

namespace kvmkit::net {

namespace {

base::Result<uint32_t> parse_addr(std::string_view s) {
    std::string str(s);
    in_addr a{};
    if (inet_pton(AF_INET, str.c_str(), &a) != 1) return base::fail("'" + str + "' is not an IPv4 address");
    return ntohl(a.s_addr);
}

base::Result<uint16_t> parse_port(std::string_view s) {
    unsigned v = 0;
    auto [end, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
    if (s.empty() || ec != std::errc() || end != s.data() + s.size() || v == 0 || v > 65535)
        return base::fail("'" + std::string(s) + "' is not a port (1-65535)");
    return static_cast<uint16_t>(v);
}

bool is_loopback(uint32_t a) {
    return (a >> 24) == 127;
}

}  // namespace

std::string HostForward::to_string() const {
    char h[16], g[16];
    return std::string(udp ? "udp:" : "tcp:") + format_ipv4(host_addr, h) + ":" + std::to_string(host_port) + "-" +
           (guest_addr ? format_ipv4(guest_addr, g) : "") + ":" + std::to_string(guest_port);
}

base::Result<void> validate_host_forward(const HostForward& f, const UserNetAddresses& addrs) {
    char buf[16];
    if (!is_loopback(f.host_addr))
        return base::fail(std::string("host address ") + format_ipv4(f.host_addr, buf) +
                          " is not a loopback address (only 127.0.0.0/8 may be forwarded, so the guest is reachable "
                          "from this machine only)");
    if (f.host_port == 0) return base::fail("host port 0");
    if (f.guest_port == 0) return base::fail("guest port 0");
    if (f.guest_addr != 0) {
        uint32_t host_part = f.guest_addr & ~addrs.netmask;
        if ((f.guest_addr & addrs.netmask) != addrs.network || host_part == 0 || host_part == ~addrs.netmask ||
            f.guest_addr == addrs.gateway || f.guest_addr == addrs.dns)
            return base::fail(std::string("guest address ") + format_ipv4(f.guest_addr, buf) +
                              " is not a guest address of the user network 10.0.2.0/24");
    }
    return base::ok();
}

base::Result<HostForward> parse_host_forward(std::string_view spec, const UserNetAddresses& addrs) {
    auto error = [&](const std::string& why) {
        return base::fail("hostfwd '" + std::string(spec) + "': " + why +
                          " (expected [tcp|udp]:[127.0.0.1]:HOSTPORT-[GUESTADDR]:GUESTPORT)");
    };
    HostForward f;
    std::string_view rest = spec;
    // The protocol is optional: "tcp:..." / "udp:..." / ":..." (QEMU allows an empty one).
    if (auto colon = rest.find(':'); colon != std::string_view::npos) {
        auto proto = rest.substr(0, colon);
        if (proto == "udp") {
            f.udp = true;
            rest.remove_prefix(colon + 1);
        } else if (proto == "tcp" || proto.empty()) {
            rest.remove_prefix(colon + 1);
        } else if (proto.find('-') == std::string_view::npos && proto.find('.') == std::string_view::npos) {
            return error("unknown protocol '" + std::string(proto) + "'");
        }
    }
    auto dash = rest.find('-');
    if (dash == std::string_view::npos) return error("no '-' between the host and the guest side");
    auto host = rest.substr(0, dash), guest = rest.substr(dash + 1);
    auto hc = host.rfind(':'), gc = guest.rfind(':');
    if (hc == std::string_view::npos) return error("host side needs ADDR:PORT");
    if (gc == std::string_view::npos) return error("guest side needs ADDR:PORT");

    auto host_addr = host.substr(0, hc);
    if (!host_addr.empty()) {
        auto a = parse_addr(host_addr);
        if (!a) return error("host " + a.error().message());
        f.host_addr = *a;
    }
    auto hp = parse_port(host.substr(hc + 1));
    if (!hp) return error("host " + hp.error().message());
    f.host_port = *hp;

    auto guest_addr = guest.substr(0, gc);
    if (!guest_addr.empty()) {
        auto a = parse_addr(guest_addr);
        if (!a) return error("guest " + a.error().message());
        f.guest_addr = *a;
    }
    auto gp = parse_port(guest.substr(gc + 1));
    if (!gp) return error("guest " + gp.error().message());
    f.guest_port = *gp;

    if (auto v = validate_host_forward(f, addrs); !v) return error(v.error().message());
    return f;
}

}  // namespace kvmkit::net
