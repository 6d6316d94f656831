#include "pci/pci_root.hpp"

#include <gtest/gtest.h>

#include <cstring>

using namespace kvmkit::pci;

namespace {
class FakeDevice : public PciDevice {
public:
    FakeDevice() : cfg_(PciIds{0x1234, 0x5678, 0xff0000, 2, 0x1234, 1}) {}
    const char* name() const override { return "fake"; }
    PciConfigSpace& config() override { return cfg_; }
    void bar_read(uint8_t, uint64_t, std::span<uint8_t> d) override { std::memset(d.data(), 0, d.size()); }
    void bar_write(uint8_t, uint64_t, std::span<const uint8_t>) override {}

private:
    PciConfigSpace cfg_;
};

uint32_t cf8(PciConfigIo& io, uint32_t address) {
    uint8_t a[4];
    std::memcpy(a, &address, 4);
    io.write(0, a);
    uint8_t d[4];
    io.read(4, d);
    uint32_t v;
    std::memcpy(&v, d, 4);
    return v;
}
}  // namespace

TEST(PciRoot, HostBridgeAndDevicesThroughConfigMechanism1) {
    PciRoot root;
    auto slot = root.add_device(std::make_shared<FakeDevice>());
    ASSERT_TRUE(slot);
    EXPECT_EQ(*slot, 1);
    PciConfigIo io(root);
    EXPECT_EQ(cf8(io, 0x80000000), 0x00081b36u);  // 00:00.0 host bridge
    EXPECT_EQ(cf8(io, 0x80000000 | (1 << 11)), 0x56781234u);
    EXPECT_EQ(cf8(io, 0x80000000 | (2 << 11)), 0xffffffffu);  // empty slot
    EXPECT_EQ(cf8(io, 0x80000000 | (1 << 11) | (1 << 8)), 0xffffffffu);  // function 1
    EXPECT_EQ(cf8(io, 0x80000000 | (1 << 16)), 0xffffffffu);  // bus 1
    EXPECT_EQ(cf8(io, 0x00000000 | (1 << 11)), 0xffffffffu);  // enable bit clear
}

TEST(PciRoot, SubDwordDataPortAccess) {
    PciRoot root;
    (void)root.add_device(std::make_shared<FakeDevice>());
    PciConfigIo io(root);
    uint32_t addr = 0x80000000 | (1 << 11) | 0x00;
    uint8_t a[4];
    std::memcpy(a, &addr, 4);
    io.write(0, a);
    uint8_t hi[2];
    io.read(6, hi);  // 0xCFE: device ID
    EXPECT_EQ(hi[0] | (hi[1] << 8), 0x5678);
}

TEST(PciRoot, EcamAddressesBusDeviceFunctionRegister) {
    PciRoot root;
    (void)root.add_device(std::make_shared<FakeDevice>());
    PciEcam ecam(root);
    uint8_t d[2];
    ecam.read((1 << 15) | 0x02, d);
    EXPECT_EQ(d[0] | (d[1] << 8), 0x5678);
    ecam.read((3 << 15), d);
    EXPECT_EQ(d[0], 0xff);
    // Writes reach the device's config space and the listener hears of them.
    int heard = -1;
    root.set_config_listener([&](uint8_t s) { heard = s; });
    uint8_t cmd[2] = {0x06, 0x00};
    ecam.write((1 << 15) | kCommand, cmd);
    EXPECT_EQ(heard, 1);
    EXPECT_EQ(root.device(1)->config().command(), kCommandMemory | kCommandBusMaster);
}

TEST(PciRoot, FullBusIsAnError) {
    PciRoot root;
    for (int i = 1; i < 32; ++i) ASSERT_TRUE(root.add_device(std::make_shared<FakeDevice>()));
    auto r = root.add_device(std::make_shared<FakeDevice>());
    ASSERT_FALSE(r);
    EXPECT_NE(r.error().message().find("full"), std::string::npos);
}
