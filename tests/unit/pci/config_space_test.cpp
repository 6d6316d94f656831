#include "pci/config_space.hpp"

#include <gtest/gtest.h>

using namespace kvmkit::pci;

namespace {
PciConfigSpace make() { return PciConfigSpace(PciIds{0x1af4, 0x1042, 0x010000, 1, 0x1af4, 0x40}); }

uint32_t read32(const PciConfigSpace& c, uint16_t off) {
    uint8_t b[4];
    c.read(off, b);
    return b[0] | (b[1] << 8) | (b[2] << 16) | (uint32_t(b[3]) << 24);
}
void write32(PciConfigSpace& c, uint16_t off, uint32_t v) {
    uint8_t b[4] = {uint8_t(v), uint8_t(v >> 8), uint8_t(v >> 16), uint8_t(v >> 24)};
    c.write(off, b);
}
}  // namespace

TEST(PciConfigSpace, IdentityIsReadOnly) {
    auto c = make();
    EXPECT_EQ(read32(c, 0x00), 0x10421af4u);
    EXPECT_EQ(read32(c, 0x08), 0x01000001u);  // class 01/00/00, revision 1
    write32(c, 0x00, 0xdeadbeef);
    EXPECT_EQ(read32(c, 0x00), 0x10421af4u);
    write32(c, 0x08, 0);
    EXPECT_EQ(read32(c, 0x08), 0x01000001u);
}

TEST(PciConfigSpace, CommandKeepsOnlyDefinedBits) {
    auto c = make();
    uint8_t v[2] = {0xff, 0xff};
    c.write(kCommand, v);
    EXPECT_EQ(c.command(), kCommandIo | kCommandMemory | kCommandBusMaster | kCommandIntxDisable);
}

TEST(PciConfigSpace, Bar64SizingProtocol) {
    auto c = make();
    c.set_bar(0, BarInfo{0x8000, true, false}, 0xc0000000);
    EXPECT_EQ(c.bar_address(0), 0xc0000000u);
    EXPECT_EQ(read32(c, 0x10) & 0xf, 0x4u);  // memory, 64-bit, not prefetchable
    // Sizing: all-ones in both halves reads back the size mask.
    write32(c, 0x10, 0xffffffff);
    write32(c, 0x14, 0xffffffff);
    EXPECT_EQ(read32(c, 0x10), 0xffff8004u);
    EXPECT_EQ(read32(c, 0x14), 0xffffffffu);
    // Placing it: the address sticks (naturally aligned).
    write32(c, 0x10, 0xd0001234);
    write32(c, 0x14, 0x1);
    EXPECT_EQ(c.bar_address(0), 0x1d0000000ull);
}

TEST(PciConfigSpace, UnusedBarReadsZero) {
    auto c = make();
    write32(c, 0x18, 0xffffffff);
    EXPECT_EQ(read32(c, 0x18), 0u);
}

TEST(PciConfigSpace, CapabilityListIsChained) {
    auto c = make();
    const uint8_t body1[6] = {1, 2, 3, 4, 5, 6};
    const uint8_t body2[2] = {9, 9};
    uint16_t a = c.add_capability(0x09, body1);
    uint16_t b = c.add_capability(0x11, body2);
    EXPECT_TRUE(c.read16(kStatus) & kStatusCapList);
    EXPECT_EQ(c.read8(kCapPointer), a);
    EXPECT_EQ(c.read8(a), 0x09);
    EXPECT_EQ(c.read8(a + 1), b);
    EXPECT_EQ(c.read8(b), 0x11);
    EXPECT_EQ(c.read8(b + 1), 0);  // end of list
    EXPECT_EQ(b % 4, 0);
    EXPECT_EQ(c.read8(a + 2), 1);
}

TEST(PciConfigSpace, OutOfRangeReadsAllOnes) {
    auto c = make();
    uint8_t b[4];
    c.read(kConfigSize - 2, b);
    EXPECT_EQ(b[2], 0xff);
    EXPECT_EQ(b[3], 0xff);
}
