// The virtio-pci transport driven the way a driver drives it (spec 4.1 and
// 3.1.1), with a fake device underneath.
#include "virtio/transport/virtio_pci.hpp"

#include <gtest/gtest.h>

#include <cstring>

using namespace kvmkit;
using namespace kvmkit::virtio;

namespace {

class FakeDevice : public VirtioDevice {
public:
    const char* name() const override { return "fake"; }
    DeviceType type() const override { return DeviceType::Block; }
    uint64_t device_features() const override { return 1ull << 9; }  // FLUSH
    uint16_t num_queues() const override { return 2; }
    uint16_t queue_max_size(uint16_t) const override { return 64; }
    void read_config(uint64_t offset, std::span<uint8_t> data) override {
        for (size_t i = 0; i < data.size(); ++i) data[i] = static_cast<uint8_t>(0xa0 + offset + i);
    }
    base::Result<void> activate(uint64_t features, std::vector<QueueConfig> queues, memory::GuestMemory&,
                                VirtioInterrupt& irq) override {
        ++activations;
        interrupt = &irq;
        acked = features;
        configs = std::move(queues);
        return base::ok();
    }
    void process_queue(uint16_t q) override { processed.push_back(q); }
    void reset() override { ++resets; }

    VirtioInterrupt* interrupt = nullptr;  // the transport, as the device sees it
    int activations = 0, resets = 0;
    uint64_t acked = 0;
    std::vector<QueueConfig> configs;
    std::vector<uint16_t> processed;
};

struct Driver {
    std::vector<uint8_t> ram = std::vector<uint8_t>(1 << 20);
    memory::GuestMemory mem;
    std::shared_ptr<FakeDevice> dev = std::make_shared<FakeDevice>();
    std::shared_ptr<VirtioPciDevice> t;
    std::vector<uint16_t> msi;

    Driver() {
        EXPECT_TRUE(mem.add_borrowed(0, ram.size(), ram.data()));
        t = *VirtioPciDevice::create(dev, mem, 0xc0000000);
        t->set_msi_sink([this](uint16_t v) { msi.push_back(v); });
    }
    uint64_t rd(uint64_t off, size_t n) {
        uint8_t b[8] = {};
        t->bar_read(0, off, {b, n});
        uint64_t v = 0;
        std::memcpy(&v, b, n);
        return v;
    }
    void wr(uint64_t off, size_t n, uint64_t v) {
        uint8_t b[8];
        std::memcpy(b, &v, 8);
        t->bar_write(0, off, {b, n});
    }
    uint64_t features() {
        wr(0x00, 4, 0);
        uint64_t lo = rd(0x04, 4);
        wr(0x00, 4, 1);
        return lo | (rd(0x04, 4) << 32);
    }
    void set_features(uint64_t f) {
        wr(0x08, 4, 0);
        wr(0x0c, 4, f & 0xffffffff);
        wr(0x08, 4, 1);
        wr(0x0c, 4, f >> 32);
    }
    uint8_t status() { return static_cast<uint8_t>(rd(0x14, 1)); }
    void set_status(uint8_t s) { wr(0x14, 1, s); }
    void setup_queue(uint16_t q, uint16_t size, uint64_t base) {
        wr(0x16, 2, q);
        wr(0x18, 2, size);
        wr(0x20, 8, base);
        wr(0x28, 4, (base + 0x1000) & 0xffffffff);  // drivers may split 64-bit fields
        wr(0x2c, 4, (base + 0x1000) >> 32);
        wr(0x30, 8, base + 0x2000);
        wr(0x1a, 2, q + 1);  // MSI-X vector
        wr(0x1c, 2, 1);
    }
};

constexpr uint64_t kVersion1 = 1ull << 32;

}  // namespace

TEST(VirtioPci, IdentityAndCapabilities) {
    Driver d;
    auto& cfg = d.t->config();
    EXPECT_EQ(cfg.read16(0x00), 0x1af4);
    EXPECT_EQ(cfg.read16(0x02), 0x1042);  // 0x1040 + device type 2
    EXPECT_GE(cfg.read8(0x08), 1);        // modern devices have revision >= 1
    // Walk the capability list: common, ISR, device, notify (vendor 0x09) and MSI-X (0x11).
    int types[6] = {};
    bool msix = false;
    uint32_t notify_mult = 0;
    for (uint16_t p = cfg.read8(0x34); p; p = cfg.read8(p + 1)) {
        if (cfg.read8(p) == 0x11) msix = true;
        if (cfg.read8(p) != 0x09) continue;
        uint8_t type = cfg.read8(p + 3);
        ASSERT_LT(type, 6);
        ++types[type];
        EXPECT_EQ(cfg.read8(p + 4), 0);  // BAR 0
        if (type == 2) notify_mult = cfg.read32(p + 16);
    }
    EXPECT_EQ(types[1], 1);
    EXPECT_EQ(types[2], 1);
    EXPECT_EQ(types[3], 1);
    EXPECT_EQ(types[4], 1);
    EXPECT_TRUE(msix);
    EXPECT_EQ(notify_mult, VirtioPciDevice::kNotifyMultiplier);
    EXPECT_EQ(cfg.bar_address(0), 0xc0000000u);
}

TEST(VirtioPci, OffersVersion1AndDeviceFeatures) {
    Driver d;
    uint64_t f = d.features();
    EXPECT_TRUE(f & kVersion1);
    EXPECT_TRUE(f & (1ull << 9));
    EXPECT_EQ(d.rd(0x12, 2), 2u);  // num_queues
    EXPECT_EQ(d.rd(0x2000, 1), 0xa0u);  // device config
}

TEST(VirtioPci, RefusesFeaturesNotOffered) {
    Driver d;
    d.set_status(1 | 2);
    d.set_features(kVersion1 | (1ull << 40));  // bit 40 was never offered
    d.set_status(1 | 2 | 8);
    EXPECT_FALSE(d.status() & 8) << "FEATURES_OK must not stick";
}

TEST(VirtioPci, RefusesLegacyDriverWithoutVersion1) {
    Driver d;
    d.set_status(1 | 2);
    d.set_features(1ull << 9);
    d.set_status(1 | 2 | 8);
    EXPECT_FALSE(d.status() & 8);
}

TEST(VirtioPci, FullInitActivatesWithQueueConfig) {
    Driver d;
    d.set_status(1 | 2);
    d.set_features(kVersion1 | (1ull << 29));
    d.set_status(1 | 2 | 8);
    ASSERT_TRUE(d.status() & 8);
    d.wr(0x16, 2, 0);
    EXPECT_EQ(d.rd(0x18, 2), 64u);  // max size offered
    d.setup_queue(0, 32, 0x10000);
    d.set_status(1 | 2 | 8 | 4);
    ASSERT_EQ(d.dev->activations, 1);
    EXPECT_EQ(d.dev->acked, kVersion1 | (1ull << 29));
    ASSERT_EQ(d.dev->configs.size(), 2u);
    EXPECT_EQ(d.dev->configs[0].size, 32);
    EXPECT_EQ(d.dev->configs[0].desc_table, 0x10000u);
    EXPECT_EQ(d.dev->configs[0].avail_ring, 0x11000u);
    EXPECT_EQ(d.dev->configs[0].used_ring, 0x12000u);
    EXPECT_TRUE(d.dev->configs[0].event_idx);
    EXPECT_EQ(d.dev->configs[1].size, 0);  // never enabled
}

TEST(VirtioPci, QueueRegistersFreezeOnceEnabled) {
    Driver d;
    d.set_status(1 | 2);
    d.set_features(kVersion1);
    d.set_status(1 | 2 | 8);
    d.setup_queue(0, 16, 0x20000);
    d.wr(0x16, 2, 0);
    d.wr(0x18, 2, 8);
    d.wr(0x20, 8, 0x90000);
    EXPECT_EQ(d.rd(0x18, 2), 16u);
    EXPECT_EQ(d.rd(0x20, 8), 0x20000u);
}

TEST(VirtioPci, RejectsBadQueueSizes) {
    Driver d;
    d.wr(0x16, 2, 0);
    d.wr(0x18, 2, 48);  // not a power of two
    EXPECT_EQ(d.rd(0x18, 2), 64u);
    d.wr(0x18, 2, 128);  // above the maximum
    EXPECT_EQ(d.rd(0x18, 2), 64u);
    d.wr(0x16, 2, 7);  // no such queue: size reads 0
    EXPECT_EQ(d.rd(0x18, 2), 0u);
}

TEST(VirtioPci, ResetClearsEverythingAndResetsTheDevice) {
    Driver d;
    d.set_status(1 | 2);
    d.set_features(kVersion1);
    d.set_status(1 | 2 | 8);
    d.setup_queue(0, 16, 0x20000);
    d.set_status(1 | 2 | 8 | 4);
    d.set_status(0);
    EXPECT_EQ(d.status(), 0);
    EXPECT_EQ(d.dev->resets, 1);
    d.wr(0x16, 2, 0);
    EXPECT_EQ(d.rd(0x1c, 2), 0u);  // queue disabled again
    EXPECT_EQ(d.rd(0x18, 2), 64u);
}

TEST(VirtioPci, NotifyReachesTheDeviceOnlyWhenRunning) {
    Driver d;
    d.wr(VirtioPciDevice::kNotifyOffset + 4, 2, 1);  // queue 1, before DRIVER_OK
    d.t->handle_notify(1);
    EXPECT_TRUE(d.dev->processed.empty());
    d.set_status(1 | 2);
    d.set_features(kVersion1);
    d.set_status(1 | 2 | 8);
    d.setup_queue(1, 16, 0x30000);
    d.set_status(1 | 2 | 8 | 4);
    d.wr(VirtioPciDevice::kNotifyOffset + 4, 2, 1);
    EXPECT_EQ(*d.t->notify_event(1).read(), 2u);  // the write landed on queue 1's eventfd (plus the activation kick)
    d.t->handle_notify(1);
    ASSERT_EQ(d.dev->processed.size(), 1u);
    EXPECT_EQ(d.dev->processed[0], 1);
}

TEST(VirtioPci, QueueInterruptUsesItsMsixVector) {
    Driver d;
    // Enable MSI-X in config space and unmask vector 2.
    auto& cfg = d.t->config();
    uint16_t cap = 0;
    for (uint16_t p = cfg.read8(0x34); p; p = cfg.read8(p + 1))
        if (cfg.read8(p) == 0x11) cap = p;
    ASSERT_NE(cap, 0);
    uint8_t ctl[2] = {0x00, 0x80};
    cfg.write(cap + 2, ctl);
    d.t->config_written(cap + 2, 2);
    uint64_t table = VirtioPciDevice::kMsixTableOffset + 2 * 16;
    d.wr(table, 8, 0xfee00000);
    d.wr(table + 8, 4, 0x41);
    d.wr(table + 12, 4, 0);
    d.set_status(1 | 2);
    d.set_features(kVersion1);
    d.set_status(1 | 2 | 8);
    d.setup_queue(1, 16, 0x30000);  // vector 2
    d.set_status(1 | 2 | 8 | 4);
    d.t->signal_queue(1);
    ASSERT_EQ(d.msi.size(), 1u);
    EXPECT_EQ(d.msi[0], 2);
    d.t->signal_queue(0);  // queue 0 has no vector assigned (0xffff): nothing
    EXPECT_EQ(d.msi.size(), 1u);
    EXPECT_EQ(d.rd(VirtioPciDevice::kIsrOffset, 1) & 1, 1u);  // ISR set, cleared by the read
    EXPECT_EQ(d.rd(VirtioPciDevice::kIsrOffset, 1), 0u);
}

// A device whose queue the driver broke (Virtqueue::broken()) asks the transport for a reset:
// DEVICE_NEEDS_RESET (64) in the status and a configuration change notification (spec 2.1.2),
// once; the bit survives status writes and only a device reset clears it.
TEST(VirtioPci, DeviceNeedsResetSetsTheStatusBitAndSignalsConfigOnce) {
    Driver d;
    auto& cfg = d.t->config();
    uint16_t cap = 0;
    for (uint16_t p = cfg.read8(0x34); p; p = cfg.read8(p + 1))
        if (cfg.read8(p) == 0x11) cap = p;
    ASSERT_NE(cap, 0);
    uint8_t ctl[2] = {0x00, 0x80};  // MSI-X enable
    cfg.write(cap + 2, ctl);
    d.t->config_written(cap + 2, 2);
    d.wr(VirtioPciDevice::kMsixTableOffset, 8, 0xfee00000);  // vector 0, unmasked
    d.wr(VirtioPciDevice::kMsixTableOffset + 8, 4, 0x42);
    d.wr(VirtioPciDevice::kMsixTableOffset + 12, 4, 0);
    d.set_status(1 | 2);
    d.set_features(kVersion1);
    d.set_status(1 | 2 | 8);
    d.wr(0x10, 2, 0);  // config_msix_vector = 0
    d.setup_queue(0, 16, 0x20000);
    d.set_status(1 | 2 | 8 | 4);
    ASSERT_NE(d.dev->interrupt, nullptr);
    const uint8_t generation = static_cast<uint8_t>(d.rd(0x15, 1));

    d.dev->interrupt->needs_reset();
    EXPECT_EQ(d.status(), 1 | 2 | 8 | 4 | 64);
    ASSERT_EQ(d.msi.size(), 1u);
    EXPECT_EQ(d.msi[0], 0) << "the configuration change vector";
    EXPECT_NE(d.rd(0x15, 1), generation);
    EXPECT_EQ(d.rd(VirtioPciDevice::kIsrOffset, 1), 2u) << "ISR: configuration change";

    d.dev->interrupt->needs_reset();  // again (the driver keeps notifying the broken queue)
    EXPECT_EQ(d.msi.size(), 1u) << "notified once";
    EXPECT_EQ(d.rd(VirtioPciDevice::kIsrOffset, 1), 0u);

    d.set_status(1 | 2 | 8 | 4);  // a status write does not clear it
    EXPECT_TRUE(d.status() & 64);
    d.set_status(0);
    EXPECT_EQ(d.status(), 0);
    EXPECT_EQ(d.dev->resets, 1);
}
