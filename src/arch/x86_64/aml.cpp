#include "arch/x86_64/aml.hpp"

#include <cstring>

namespace kvmkit::arch::x86_64::aml {

namespace {
constexpr uint8_t kZeroOp = 0x00, kOneOp = 0x01, kNameOp = 0x08, kBytePrefix = 0x0a, kWordPrefix = 0x0b,
                  kDWordPrefix = 0x0c, kStringPrefix = 0x0d, kQWordPrefix = 0x0e, kScopeOp = 0x10,
                  kBufferOp = 0x11, kPackageOp = 0x12, kExtOpPrefix = 0x5b, kDeviceOp = 0x82;

// A loop rather than insert(): GCC 12 reports a false -Warray-bounds on small vector inserts.
void append(Bytes& out, const Bytes& b) {
    for (uint8_t x : b) out.push_back(x);
}
template <typename T>
void append_le(Bytes& out, T v) {
    for (size_t i = 0; i < sizeof(T); ++i) out.push_back(static_cast<uint8_t>(uint64_t(v) >> (8 * i)));
}

Bytes name_string(const std::string& path) {
    // "\_SB_" style root paths, or one 4-character segment.
    Bytes out;
    std::string p = path;
    if (!p.empty() && p[0] == '\\') {
        out.push_back('\\');
        p = p.substr(1);
    }
    std::vector<std::string> segs;
    for (size_t i = 0; i < p.size(); i += 4) segs.push_back(p.substr(i, 4));
    if (segs.size() == 2) out.push_back(0x2e);  // DualNamePrefix
    else if (segs.size() > 2) {
        out.push_back(0x2f);  // MultiNamePrefix
        out.push_back(static_cast<uint8_t>(segs.size()));
    }
    for (auto s : segs) {
        s.resize(4, '_');
        for (char c : s) out.push_back(static_cast<uint8_t>(c));
    }
    return out;
}

Bytes with_pkg_length(uint8_t op, bool ext, const Bytes& body) {
    Bytes out;
    if (ext) out.push_back(kExtOpPrefix);
    out.push_back(op);
    append(out, pkg_length(body.size()));
    append(out, body);
    return out;
}

// Address space descriptors share one layout (6.4.3.5): type, flags, then
// granularity, min, max, translation offset, length in the item's width.
template <typename T>
Bytes address_space(uint8_t tag, uint8_t resource_type, uint8_t type_flags, T min, T max) {
    Bytes out{tag};
    uint16_t len = static_cast<uint16_t>(3 + 5 * sizeof(T));
    append_le(out, len);
    out.push_back(resource_type);
    out.push_back(0x0c);  // MinFixed | MaxFixed, producer, positive decode
    out.push_back(type_flags);
    append_le(out, T(0));          // granularity
    append_le(out, min);
    append_le(out, max);
    append_le(out, T(0));          // translation offset
    append_le(out, T(max - min + 1));
    return out;
}
}  // namespace

Bytes pkg_length(size_t len) {
    // The length counts its own encoding bytes.
    if (len + 1 < 0x40) return {static_cast<uint8_t>(len + 1)};
    for (int extra = 1; extra <= 3; ++extra) {
        size_t total = len + 1 + extra;
        if (total < (size_t(1) << (4 + 8 * extra))) {
            Bytes out{static_cast<uint8_t>((extra << 6) | (total & 0x0f))};
            for (int i = 0; i < extra; ++i) out.push_back(static_cast<uint8_t>(total >> (4 + 8 * i)));
            return out;
        }
    }
    return {};
}

Bytes integer(uint64_t v) {
    if (v == 0) return {kZeroOp};
    if (v == 1) return {kOneOp};
    Bytes out;
    if (v <= 0xff) {
        out.push_back(kBytePrefix);
        append_le(out, uint8_t(v));
    } else if (v <= 0xffff) {
        out.push_back(kWordPrefix);
        append_le(out, uint16_t(v));
    } else if (v <= 0xffffffff) {
        out.push_back(kDWordPrefix);
        append_le(out, uint32_t(v));
    } else {
        out.push_back(kQWordPrefix);
        append_le(out, v);
    }
    return out;
}

Bytes string(const std::string& s) {
    Bytes out{kStringPrefix};
    for (char c : s) out.push_back(static_cast<uint8_t>(c));
    out.push_back(0);
    return out;
}

Bytes eisa_id(const std::string& id) {
    // Three letters (5 bits each, 'A' = 1) and four hex digits, stored big-endian.
    auto c = [&](int i) { return uint32_t(id[i] - 'A' + 1) & 0x1f; };
    uint32_t v = (c(0) << 26) | (c(1) << 21) | (c(2) << 16) | std::stoul(id.substr(3, 4), nullptr, 16);
    uint32_t be = __builtin_bswap32(v);
    Bytes out{kDWordPrefix};
    append_le(out, be);
    return out;
}

Bytes name(const std::string& seg4, const Bytes& value) {
    Bytes out{kNameOp};
    append(out, name_string(seg4));
    append(out, value);
    return out;
}

Bytes package(const std::vector<Bytes>& elements) {
    Bytes body{static_cast<uint8_t>(elements.size())};
    for (const auto& e : elements) append(body, e);
    return with_pkg_length(kPackageOp, false, body);
}

Bytes buffer(const Bytes& bytes) {
    Bytes body = integer(bytes.size());
    append(body, bytes);
    return with_pkg_length(kBufferOp, false, body);
}

Bytes device(const std::string& seg4, const std::vector<Bytes>& body) {
    Bytes b = name_string(seg4);
    for (const auto& t : body) append(b, t);
    return with_pkg_length(kDeviceOp, true, b);
}

Bytes scope(const std::string& path, const std::vector<Bytes>& body) {
    Bytes b = name_string(path);
    for (const auto& t : body) append(b, t);
    return with_pkg_length(kScopeOp, false, b);
}

Bytes io_port(uint16_t min, uint16_t max, uint8_t align, uint8_t len) {
    Bytes out{0x47, 0x01};  // small item: I/O port, 16-bit decode
    append_le(out, min);
    append_le(out, max);
    out.push_back(align);
    out.push_back(len);
    return out;
}

Bytes word_bus_number(uint16_t min, uint16_t max) { return address_space<uint16_t>(0x88, 2, 0, min, max); }
Bytes word_io(uint16_t min, uint16_t max) { return address_space<uint16_t>(0x88, 1, 0x03, min, max); }
Bytes dword_memory(uint32_t min, uint32_t max) { return address_space<uint32_t>(0x87, 0, 0x01, min, max); }
Bytes qword_memory(uint64_t min, uint64_t max) { return address_space<uint64_t>(0x8a, 0, 0x01, min, max); }
Bytes end_tag() { return {0x79, 0x00}; }

}  // namespace kvmkit::arch::x86_64::aml
