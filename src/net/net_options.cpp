#include "net/net_options.hpp"

#include <arpa/inet.h>

#include <cctype>
#include <cstdio>

namespace kvmkit::net {

using base::fail;
using base::Result;

namespace {

int hex_digit(char c) {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
}

std::vector<std::string> split(const std::string& s, char sep) {
    std::vector<std::string> out;
    size_t start = 0;
    for (;;) {
        size_t p = s.find(sep, start);
        out.push_back(s.substr(start, p == std::string::npos ? std::string::npos : p - start));
        if (p == std::string::npos) return out;
        start = p + 1;
    }
}

Result<uint16_t> parse_port(const std::string& text, const std::string& what) {
    if (text.empty()) return fail(what + " is missing");
    if (text.size() > 5) return fail(what + " '" + text + "' is not a port number (1-65535)");
    uint32_t v = 0;
    for (char c : text) {
        if (c < '0' || c > '9') return fail(what + " '" + text + "' is not a port number (1-65535)");
        v = v * 10 + uint32_t(c - '0');
    }
    if (v == 0 || v > 65535) return fail(what + " '" + text + "' is not a port number (1-65535)");
    return static_cast<uint16_t>(v);
}

Result<in_addr> parse_ipv4(const std::string& text, const std::string& what) {
    in_addr a{};
    if (inet_pton(AF_INET, text.c_str(), &a) != 1) return fail(what + " '" + text + "' is not an IPv4 address");
    return a;
}

Result<bool> parse_on_off(const std::string& key, const std::string& value) {
    if (value == "on" || value == "true" || value == "yes") return true;
    if (value == "off" || value == "false" || value == "no") return false;
    return fail(key + ": use on or off, not '" + value + "'");
}

}  // namespace

std::string MacAddress::to_string() const {
    char b[18];
    snprintf(b, sizeof b, "%02x:%02x:%02x:%02x:%02x:%02x", bytes[0], bytes[1], bytes[2], bytes[3], bytes[4], bytes[5]);
    return b;
}

Result<MacAddress> parse_mac(const std::string& text) {
    auto bad = [&](const std::string& why) { return fail("mac '" + text + "': " + why); };
    if (text.size() != 17) return bad("expected six hex pairs like 52:54:00:12:34:56");
    MacAddress m;
    for (size_t i = 0; i < 6; ++i) {
        int hi = hex_digit(text[i * 3]), lo = hex_digit(text[i * 3 + 1]);
        if (hi < 0 || lo < 0) return bad("expected six hex pairs like 52:54:00:12:34:56");
        if (i < 5 && text[i * 3 + 2] != ':' && text[i * 3 + 2] != '-')
            return bad("expected six hex pairs like 52:54:00:12:34:56");
        m.bytes[i] = static_cast<uint8_t>(hi << 4 | lo);
    }
    if (m.bytes[0] & 1) return bad("a multicast address (lowest bit of the first octet set) cannot name a NIC");
    if (m == MacAddress{}) return bad("the all-zero address cannot name a NIC");
    return m;
}

MacAddress default_mac(const std::string& vm_name, size_t nic_index) {
    // FNV-1a over the name, a separator and the index: stable across runs
    // and builds (std::hash is not), different for each NIC of a VM.
    uint64_t h = 0xcbf29ce484222325ull;
    auto mix = [&h](uint8_t b) {
        h ^= b;
        h *= 0x100000001b3ull;
    };
    for (char c : vm_name) mix(static_cast<uint8_t>(c));
    mix(0);
    for (int i = 0; i < 8; ++i) mix(static_cast<uint8_t>(nic_index >> (8 * i)));
    MacAddress m;
    for (int i = 0; i < 6; ++i) m.bytes[i] = static_cast<uint8_t>(h >> (8 * i));
    m.bytes[0] = static_cast<uint8_t>((m.bytes[0] & 0xfc) | 0x02);  // locally administered, unicast
    return m;
}

const char* backend_kind_name(NetBackendKind kind) {
    return kind == NetBackendKind::Tap ? "tap" : "user";
}

Result<HostForward> parse_hostfwd(const std::string& text) {
    auto bad = [&](const std::string& why) {
        return fail("hostfwd '" + text + "': " + why + " (form: tcp:[127.0.0.1]:HOSTPORT-[GUESTADDR]:GUESTPORT)");
    };
    HostForward f;
    // PROTO:HOSTADDR:HOSTPORT-GUESTADDR:GUESTPORT
    size_t dash = text.find('-');
    if (dash == std::string::npos) return bad("no '-' between the host and guest sides");
    auto host = split(text.substr(0, dash), ':');
    auto guest = split(text.substr(dash + 1), ':');
    if (host.size() != 3) return bad("host side must be PROTO:ADDR:PORT");
    if (guest.size() != 2) return bad("guest side must be ADDR:PORT");
    if (host[0] == "tcp")
        f.proto = HostFwdProto::Tcp;
    else if (host[0] == "udp")
        f.proto = HostFwdProto::Udp;
    else
        return bad("protocol '" + host[0] + "' is not tcp or udp");
    if (!host[1].empty()) {
        auto a = parse_ipv4(host[1], "host address");
        if (!a) return bad(a.error().message());
        if ((ntohl(a->s_addr) >> 24) != 127)
            return bad("host address " + host[1] + " is not loopback: forwards may only listen on 127.0.0.0/8");
        f.host_addr = host[1];
    }
    auto hp = parse_port(host[2], "host port");
    if (!hp) return bad(hp.error().message());
    f.host_port = *hp;
    if (!guest[0].empty()) {
        auto a = parse_ipv4(guest[0], "guest address");
        if (!a) return bad(a.error().message());
        f.guest_addr = guest[0];
    }
    auto gp = parse_port(guest[1], "guest port");
    if (!gp) return bad(gp.error().message());
    f.guest_port = *gp;
    return f;
}

std::string format_hostfwd(const HostForward& f) {
    return std::string(f.proto == HostFwdProto::Tcp ? "tcp" : "udp") + ":" + f.host_addr + ":" +
           std::to_string(f.host_port) + "-" + f.guest_addr + ":" + std::to_string(f.guest_port);
}

Result<void> validate_ifname(const std::string& name) {
    if (name.empty()) return fail("ifname: empty");
    if (name.size() > 15) return fail("ifname '" + name + "': longer than 15 characters (IFNAMSIZ)");
    if (name == "." || name == "..") return fail("ifname '" + name + "': not a valid interface name");
    for (char c : name) {
        if (c == '/' || c == ':' || c == ',' || std::isspace(static_cast<unsigned char>(c)) ||
            !std::isprint(static_cast<unsigned char>(c)))
            return fail("ifname '" + name + "': contains a character not allowed in interface names");
    }
    return base::ok();
}

Result<NetOptions> parse_net_option(const std::string& spec) {
    auto parsed = [&]() -> Result<NetOptions> {
        auto parts = split(spec, ',');
        NetOptions o;
        if (parts[0] == "tap")
            o.backend = NetBackendKind::Tap;
        else if (parts[0] == "user")
            o.backend = NetBackendKind::User;
        else if (parts[0].empty())
            return fail("missing backend: use tap or user");
        else
            return fail("unknown backend '" + parts[0] + "': use tap or user");
        bool seen_ifname = false, seen_vhost = false, seen_mac = false;
        for (size_t i = 1; i < parts.size(); ++i) {
            const std::string& p = parts[i];
            size_t eq = p.find('=');
            if (p.empty()) return fail("empty option (two commas in a row?)");
            if (eq == std::string::npos) return fail("'" + p + "': expected KEY=VALUE");
            std::string key = p.substr(0, eq), value = p.substr(eq + 1);
            auto once = [&](bool& seen) -> Result<void> {
                if (seen) return fail(key + ": given twice");
                seen = true;
                return base::ok();
            };
            if (key == "mac") {
                TRY(once(seen_mac));
                o.mac = TRY(parse_mac(value));
            } else if (key == "ifname") {
                if (o.backend != NetBackendKind::Tap)
                    return fail("ifname: only for tap (user mode has no host interface)");
                TRY(once(seen_ifname));
                TRY(validate_ifname(value));
                o.ifname = value;
            } else if (key == "vhost") {
                if (o.backend != NetBackendKind::Tap) return fail("vhost: only for tap");
                TRY(once(seen_vhost));
                o.vhost = TRY(parse_on_off(key, value));
            } else if (key == "hostfwd") {
                if (o.backend != NetBackendKind::User)
                    return fail("hostfwd: only for user (a tap has no port forwards)");
                o.hostfwd.push_back(TRY(parse_hostfwd(value)));
            } else {
                return fail(
                    "unknown option '" + key + "' (" +
                    (o.backend == NetBackendKind::Tap ? "tap knows ifname, vhost, mac" : "user knows hostfwd, mac") +
                    ")");
            }
        }
        return o;
    }();
    if (!parsed) return base::unexpected(parsed.error().context("--net " + spec));
    return parsed;
}

std::string format_net_option(const NetOptions& o) {
    std::string s = backend_kind_name(o.backend);
    if (!o.ifname.empty()) s += ",ifname=" + o.ifname;
    if (o.vhost) s += ",vhost=on";
    for (const auto& f : o.hostfwd) s += ",hostfwd=" + format_hostfwd(f);
    if (o.mac) s += ",mac=" + o.mac->to_string();
    return s;
}

}  // namespace kvmkit::net
