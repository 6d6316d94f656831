#include "pci/msix.hpp"

#include <gtest/gtest.h>

#include <cstring>

using namespace kvmkit::pci;

namespace {
struct Fixture {
    PciConfigSpace cfg{PciIds{0x1af4, 0x1042, 0, 1, 0x1af4, 0x40}};
    Msix msix{cfg, 3, 0, 0x4000, 0x5000};
    uint16_t cap() const { return cfg.read8(kCapPointer); }
    void control(uint16_t v) {
        uint8_t b[2] = {uint8_t(v), uint8_t(v >> 8)};
        cfg.write(cap() + 2, b);
        msix.control_written();
    }
    void entry(uint16_t v, uint64_t addr, uint32_t data, bool masked) {
        uint8_t raw[16];
        uint32_t ctrl = masked;
        std::memcpy(raw, &addr, 8);
        std::memcpy(raw + 8, &data, 4);
        std::memcpy(raw + 12, &ctrl, 4);
        msix.table_write(v * 16, raw);
    }
};
}  // namespace

TEST(Msix, CapabilityDescribesTableAndPba) {
    Fixture f;
    uint16_t c = f.cap();
    EXPECT_EQ(f.cfg.read8(c), Msix::kCapId);
    EXPECT_EQ(f.cfg.read16(c + 2) & 0x7ff, 2);  // table size - 1
    EXPECT_EQ(f.cfg.read32(c + 4), 0x4000u);    // offset | BIR 0
    EXPECT_EQ(f.cfg.read32(c + 8), 0x5000u);
    // Only enable and function mask are writable.
    f.control(0xffff);
    EXPECT_EQ(f.cfg.read16(c + 2), 0xc002);
}

TEST(Msix, VectorsStartMaskedAndFireWhenEnabledAndUnmasked) {
    Fixture f;
    EXPECT_FALSE(f.msix.trigger(0));  // MSI-X disabled: dropped
    f.control(0x8000);
    f.entry(1, 0xfee00000, 0x4041, false);
    EXPECT_TRUE(f.msix.trigger(1));
    EXPECT_EQ(f.msix.vector(1).address, 0xfee00000u);
    EXPECT_EQ(f.msix.vector(1).data, 0x4041u);
    EXPECT_FALSE(f.msix.trigger(0));  // still masked
    EXPECT_FALSE(f.msix.trigger(7));  // no such vector
}

TEST(Msix, MaskedVectorPendsAndFiresOnUnmask) {
    Fixture f;
    std::vector<uint16_t> fired;
    f.msix.set_listener([&](const std::vector<uint16_t>& v) { fired.insert(fired.end(), v.begin(), v.end()); });
    f.control(0x8000);
    f.entry(2, 0xfee00000, 0x30, true);
    EXPECT_FALSE(f.msix.trigger(2));
    uint8_t pba = 0;
    f.msix.pba_read(0, {&pba, 1});
    EXPECT_EQ(pba, 0x4);
    f.entry(2, 0xfee00000, 0x30, false);
    ASSERT_EQ(fired.size(), 1u);
    EXPECT_EQ(fired[0], 2);
    f.msix.pba_read(0, {&pba, 1});
    EXPECT_EQ(pba, 0);
}

TEST(Msix, FunctionMaskHoldsEveryVector) {
    Fixture f;
    std::vector<uint16_t> fired;
    f.msix.set_listener([&](const std::vector<uint16_t>& v) { fired.insert(fired.end(), v.begin(), v.end()); });
    f.control(0xc000);  // enabled + function mask
    f.entry(0, 0xfee00000, 0x31, false);
    EXPECT_FALSE(f.msix.trigger(0));
    EXPECT_TRUE(fired.empty());
    f.control(0x8000);
    ASSERT_EQ(fired.size(), 1u);
    EXPECT_EQ(fired[0], 0);
}

TEST(Msix, TableReadsBackAndOutOfRangeIsIgnored) {
    Fixture f;
    f.entry(0, 0x12345678abcdull, 0x99, false);
    uint8_t raw[16];
    f.msix.table_read(0, raw);
    uint64_t addr;
    std::memcpy(&addr, raw, 8);
    EXPECT_EQ(addr, 0x12345678abcdull);
    EXPECT_EQ(raw[12], 0);
    uint8_t junk[4] = {1, 2, 3, 4};
    f.msix.table_write(16 * 100, junk);  // beyond the table: no effect, no crash
    uint8_t out[4];
    f.msix.table_read(16 * 100, out);
    EXPECT_EQ(out[0], 0xff);
}
