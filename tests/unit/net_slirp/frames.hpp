// Builds and parses the Ethernet/ARP/IPv4/UDP/TCP/ICMP frames a guest would
// send on the user network, with correct checksums (libslirp checks them).
// Test-only; addresses are in host byte order.
#pragma once

#include <array>
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

namespace kvmkit::net::test {

using Mac = std::array<uint8_t, 6>;
using Bytes = std::vector<uint8_t>;

constexpr Mac kGuestMac{0x52, 0x54, 0x00, 0x12, 0x34, 0x56};
constexpr Mac kBroadcast{0xff, 0xff, 0xff, 0xff, 0xff, 0xff};
constexpr uint32_t kGuestIp = 0x0a00020f;    // 10.0.2.15
constexpr uint32_t kGatewayIp = 0x0a000202;  // 10.0.2.2

constexpr uint8_t kTcpFin = 0x01, kTcpSyn = 0x02, kTcpRst = 0x04, kTcpPsh = 0x08, kTcpAck = 0x10;

inline void put16(Bytes& b, uint16_t v) {
    b.push_back(v >> 8);
    b.push_back(v & 0xff);
}
inline void put32(Bytes& b, uint32_t v) {
    put16(b, v >> 16);
    put16(b, v & 0xffff);
}
inline uint16_t get16(const Bytes& b, size_t o) {
    return static_cast<uint16_t>(b.at(o) << 8 | b.at(o + 1));
}
inline uint32_t get32(const Bytes& b, size_t o) {
    return uint32_t{get16(b, o)} << 16 | get16(b, o + 2);
}

// The Internet checksum (RFC 1071) over `b`, starting from `sum`.
inline uint16_t inet_checksum(const uint8_t* p, size_t n, uint32_t sum = 0) {
    for (size_t i = 0; i + 1 < n; i += 2) sum += uint32_t{p[i]} << 8 | p[i + 1];
    if (n & 1) sum += uint32_t{p[n - 1]} << 8;
    while (sum >> 16) sum = (sum & 0xffff) + (sum >> 16);
    return static_cast<uint16_t>(~sum);
}

inline Bytes ethernet(const Mac& dst, const Mac& src, uint16_t type, const Bytes& payload) {
    Bytes f(dst.begin(), dst.end());
    f.insert(f.end(), src.begin(), src.end());
    put16(f, type);
    f.insert(f.end(), payload.begin(), payload.end());
    return f;
}

inline Bytes arp_request(uint32_t sender_ip, uint32_t target_ip, const Mac& sender = kGuestMac) {
    Bytes a;
    put16(a, 1);       // Ethernet
    put16(a, 0x0800);  // IPv4
    a.push_back(6);
    a.push_back(4);
    put16(a, 1);  // request
    a.insert(a.end(), sender.begin(), sender.end());
    put32(a, sender_ip);
    a.insert(a.end(), 6, 0);
    put32(a, target_ip);
    return ethernet(kBroadcast, sender, 0x0806, a);
}

inline Bytes ipv4(uint32_t src, uint32_t dst, uint8_t proto, const Bytes& payload, uint16_t id = 1) {
    Bytes h;
    h.push_back(0x45);
    h.push_back(0);
    put16(h, static_cast<uint16_t>(20 + payload.size()));
    put16(h, id);
    put16(h, 0x4000);  // DF
    h.push_back(64);
    h.push_back(proto);
    put16(h, 0);
    put32(h, src);
    put32(h, dst);
    uint16_t c = inet_checksum(h.data(), h.size());
    h[10] = c >> 8;
    h[11] = c & 0xff;
    h.insert(h.end(), payload.begin(), payload.end());
    return h;
}

inline uint32_t pseudo_sum(uint32_t src, uint32_t dst, uint8_t proto, size_t len) {
    return (src >> 16) + (src & 0xffff) + (dst >> 16) + (dst & 0xffff) + proto + static_cast<uint32_t>(len);
}

inline Bytes udp(uint32_t src, uint32_t dst, uint16_t sport, uint16_t dport, const Bytes& data) {
    Bytes u;
    put16(u, sport);
    put16(u, dport);
    put16(u, static_cast<uint16_t>(8 + data.size()));
    put16(u, 0);
    u.insert(u.end(), data.begin(), data.end());
    uint16_t c = inet_checksum(u.data(), u.size(), pseudo_sum(src, dst, 17, u.size()));
    if (c == 0) c = 0xffff;
    u[6] = c >> 8;
    u[7] = c & 0xff;
    return ipv4(src, dst, 17, u);
}

inline Bytes tcp(uint32_t src, uint32_t dst, uint16_t sport, uint16_t dport, uint32_t seq, uint32_t ack, uint8_t flags,
                 const Bytes& data = {}) {
    Bytes t;
    put16(t, sport);
    put16(t, dport);
    put32(t, seq);
    put32(t, ack);
    t.push_back(5 << 4);
    t.push_back(flags);
    put16(t, 65535);  // window
    put16(t, 0);
    put16(t, 0);
    t.insert(t.end(), data.begin(), data.end());
    uint16_t c = inet_checksum(t.data(), t.size(), pseudo_sum(src, dst, 6, t.size()));
    t[16] = c >> 8;
    t[17] = c & 0xff;
    return ipv4(src, dst, 6, t);
}

inline Bytes icmp_echo(uint32_t src, uint32_t dst, uint16_t id, uint16_t seq, const Bytes& data = {}) {
    Bytes i{8, 0, 0, 0};
    put16(i, id);
    put16(i, seq);
    i.insert(i.end(), data.begin(), data.end());
    uint16_t c = inet_checksum(i.data(), i.size());
    i[2] = c >> 8;
    i[3] = c & 0xff;
    return ipv4(src, dst, 1, i);
}

// A DHCP client message (RFC 2131) with option 53 = `type`; `extra` options follow.
inline Bytes dhcp(uint8_t type, uint32_t xid, const Mac& mac = kGuestMac, const Bytes& extra = {}) {
    Bytes d;
    d.push_back(1);  // BOOTREQUEST
    d.push_back(1);
    d.push_back(6);
    d.push_back(0);
    put32(d, xid);
    put16(d, 0);
    put16(d, 0x8000);          // broadcast replies
    d.insert(d.end(), 16, 0);  // ciaddr, yiaddr, siaddr, giaddr
    d.insert(d.end(), mac.begin(), mac.end());
    d.insert(d.end(), 10 + 64 + 128, 0);  // chaddr padding, sname, file
    put32(d, 0x63825363);                 // magic cookie
    d.push_back(53);
    d.push_back(1);
    d.push_back(type);
    d.insert(d.end(), extra.begin(), extra.end());
    d.push_back(255);
    if (d.size() < 300) d.resize(300, 0);
    return d;
}

// What the tests look at in a frame libslirp sent to the guest.
struct Parsed {
    Mac dst{}, src{};
    uint16_t type = 0;
    // ARP
    uint16_t arp_op = 0;
    uint32_t arp_sender_ip = 0, arp_target_ip = 0;
    Mac arp_sender_mac{};
    // IPv4
    uint32_t ip_src = 0, ip_dst = 0;
    uint8_t proto = 0;
    bool ip_checksum_ok = false;
    // UDP / TCP / ICMP
    uint16_t sport = 0, dport = 0;
    uint32_t seq = 0, ack = 0;
    uint8_t flags = 0;
    uint8_t icmp_type = 0;
    uint16_t icmp_seq = 0;
    Bytes data;  // L4 payload
};

inline std::optional<Parsed> parse(const Bytes& f) {
    if (f.size() < 14) return std::nullopt;
    Parsed p;
    std::copy(f.begin(), f.begin() + 6, p.dst.begin());
    std::copy(f.begin() + 6, f.begin() + 12, p.src.begin());
    p.type = get16(f, 12);
    if (p.type == 0x0806) {
        if (f.size() < 42) return std::nullopt;
        p.arp_op = get16(f, 20);
        std::copy(f.begin() + 22, f.begin() + 28, p.arp_sender_mac.begin());
        p.arp_sender_ip = get32(f, 28);
        p.arp_target_ip = get32(f, 38);
        return p;
    }
    if (p.type != 0x0800 || f.size() < 34) return p;
    size_t ihl = (f[14] & 0xf) * 4;
    size_t total = get16(f, 16);
    if (14 + total > f.size() || total < ihl) return std::nullopt;
    p.ip_checksum_ok = inet_checksum(f.data() + 14, ihl) == 0;
    p.proto = f[23];
    p.ip_src = get32(f, 26);
    p.ip_dst = get32(f, 30);
    size_t l4 = 14 + ihl, end = 14 + total;
    if (p.proto == 17 && end >= l4 + 8) {
        p.sport = get16(f, l4);
        p.dport = get16(f, l4 + 2);
        p.data.assign(f.begin() + l4 + 8, f.begin() + end);
    } else if (p.proto == 6 && end >= l4 + 20) {
        p.sport = get16(f, l4);
        p.dport = get16(f, l4 + 2);
        p.seq = get32(f, l4 + 4);
        p.ack = get32(f, l4 + 8);
        size_t off = (f[l4 + 12] >> 4) * 4;
        p.flags = f[l4 + 13];
        if (l4 + off <= end) p.data.assign(f.begin() + l4 + off, f.begin() + end);
    } else if (p.proto == 1 && end >= l4 + 8) {
        p.icmp_type = f[l4];
        p.icmp_seq = get16(f, l4 + 6);
        p.data.assign(f.begin() + l4 + 8, f.begin() + end);
    }
    return p;
}

// The value of DHCP option `code` in a BOOTP payload, if present.
inline std::optional<Bytes> dhcp_option(const Bytes& bootp, uint8_t code) {
    for (size_t i = 240; i < bootp.size();) {
        uint8_t c = bootp[i];
        if (c == 255) break;
        if (c == 0) {
            ++i;
            continue;
        }
        if (i + 1 >= bootp.size()) break;
        uint8_t len = bootp[i + 1];
        if (i + 2 + len > bootp.size()) break;
        if (c == code) return Bytes(bootp.begin() + i + 2, bootp.begin() + i + 2 + len);
        i += 2 + len;
    }
    return std::nullopt;
}

}  // namespace kvmkit::net::test
