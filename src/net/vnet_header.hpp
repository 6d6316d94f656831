// The virtio-net header (virtio spec 1.2, 5.1.6) and the feature bits that
// describe offloads (5.1.3). They are the common language of the virtio-net
// device and the backends: a Linux TAP with IFF_VNET_HDR reads and writes
// exactly this header in front of each frame, so the device can pass it
// through untouched.
#pragma once

#include <cstdint>

namespace kvmkit::net {

// With VIRTIO_F_VERSION_1 the header is always 12 bytes (num_buffers is
// present whether or not MRG_RXBUF is negotiated). Little-endian fields.
struct VirtioNetHdr {
    uint8_t flags;
    uint8_t gso_type;
    uint16_t hdr_len;
    uint16_t gso_size;
    uint16_t csum_start;
    uint16_t csum_offset;
    uint16_t num_buffers;
};
static_assert(sizeof(VirtioNetHdr) == 12);
inline constexpr uint32_t kVnetHdrSize = sizeof(VirtioNetHdr);

inline constexpr uint8_t kVnetHdrFNeedsCsum = 1;
inline constexpr uint8_t kVnetHdrFDataValid = 2;
inline constexpr uint8_t kVnetHdrGsoNone = 0;
inline constexpr uint8_t kVnetHdrGsoTcpv4 = 1;
inline constexpr uint8_t kVnetHdrGsoUdp = 3;
inline constexpr uint8_t kVnetHdrGsoTcpv6 = 4;
inline constexpr uint8_t kVnetHdrGsoEcn = 0x80;

// virtio-net feature bits (spec 5.1.3).
namespace feature {
inline constexpr uint64_t kCsum = 1ull << 0;       // device takes frames with partial checksums (host offload)
inline constexpr uint64_t kGuestCsum = 1ull << 1;  // driver takes frames with partial checksums
inline constexpr uint64_t kCtrlGuestOffloads = 1ull << 2;
inline constexpr uint64_t kMtu = 1ull << 3;
inline constexpr uint64_t kMac = 1ull << 5;
inline constexpr uint64_t kGuestTso4 = 1ull << 7;
inline constexpr uint64_t kGuestTso6 = 1ull << 8;
inline constexpr uint64_t kGuestEcn = 1ull << 9;
inline constexpr uint64_t kGuestUfo = 1ull << 10;
inline constexpr uint64_t kHostTso4 = 1ull << 11;
inline constexpr uint64_t kHostTso6 = 1ull << 12;
inline constexpr uint64_t kHostEcn = 1ull << 13;
inline constexpr uint64_t kHostUfo = 1ull << 14;
inline constexpr uint64_t kMrgRxbuf = 1ull << 15;
inline constexpr uint64_t kStatus = 1ull << 16;
inline constexpr uint64_t kCtrlVq = 1ull << 17;
inline constexpr uint64_t kCtrlRx = 1ull << 18;
inline constexpr uint64_t kCtrlVlan = 1ull << 19;
inline constexpr uint64_t kGuestAnnounce = 1ull << 21;
inline constexpr uint64_t kMq = 1ull << 22;
inline constexpr uint64_t kCtrlMacAddr = 1ull << 23;

// All offload bits: what a backend may claim in Backend::offload_features().
inline constexpr uint64_t kAllOffloads =
    kCsum | kGuestCsum | kGuestTso4 | kGuestTso6 | kGuestEcn | kGuestUfo | kHostTso4 | kHostTso6 | kHostEcn | kHostUfo;
}  // namespace feature

// The largest frame a backend may hand the device or take from it: a 64 KiB
// GSO super-frame plus the Ethernet and virtio-net headers.
inline constexpr uint32_t kMaxFrameSize = 65535 + 14 + 4 + kVnetHdrSize;
// The largest frame without GSO: 1500-byte MTU + Ethernet header + VLAN tag.
inline constexpr uint32_t kMaxMtuFrameSize = 1500 + 14 + 4;

}  // namespace kvmkit::net
