// virtio-blk driven by the fake driver (the guest side written in the test):
// how many data segments one request may carry.
#include "virtio/devices/virtio_blk.hpp"

#include <gtest/gtest.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <string>

#include "fake_driver.hpp"

namespace kvmkit::virtio {
namespace {

using testing::FakeDriver;

constexpr uint64_t kFeatSegMax = 1ull << 2, kFeatIndirect = 1ull << 28;

struct NoIrq : VirtioInterrupt {
    void signal_queue(uint16_t) override {}
    void signal_config() override {}
    void needs_reset() override {}
};

class TempImage {
public:
    explicit TempImage(uint64_t size) {
        char tmpl[] = "/tmp/kvmkit-blk-test-XXXXXX";
        int fd = mkstemp(tmpl);
        EXPECT_GE(fd, 0);
        path_ = tmpl;
        EXPECT_EQ(ftruncate(fd, static_cast<off_t>(size)), 0);
        close(fd);
    }
    ~TempImage() { unlink(path_.c_str()); }
    const std::string& path() const { return path_; }

private:
    std::string path_;
};

uint32_t read_seg_max(VirtioBlk& blk) {
    uint8_t raw[4];
    blk.read_config(12, raw);  // struct virtio_blk_config: seg_max at offset 12
    return raw[0] | raw[1] << 8 | raw[2] << 16 | uint32_t(raw[3]) << 24;
}

// Posts one IN request with `segments` 512-byte data buffers through an
// indirect table and returns the status byte the device wrote (0xff: none).
uint8_t read_with_segments(VirtioBlk& blk, FakeDriver& drv, uint32_t segments) {
    uint64_t hdr = drv.alloc(16);
    drv.put<uint32_t>(hdr, 0);      // VIRTIO_BLK_T_IN
    drv.put<uint64_t>(hdr + 8, 0);  // sector
    std::vector<FakeDriver::Buf> bufs{{hdr, 16, false}};
    for (uint32_t i = 0; i < segments; ++i) bufs.push_back({drv.alloc(512), 512, true});
    uint64_t status = drv.alloc(1);
    drv.put<uint8_t>(status, 0xff);
    bufs.push_back({status, 1, true});
    drv.add_indirect_chain(bufs);
    blk.process_queue(0);
    return drv.get<uint8_t>(status);
}

TEST(VirtioBlk, OneRequestCarriesSegMaxSegmentsAsAdvertised) {
    TempImage img(1 << 20);
    auto image = DiskImage::open({img.path(), false, CacheMode::Writeback});
    ASSERT_TRUE(image) << image.error().message();
    VirtioBlk blk(std::move(*image), "t");  // no event loop: served synchronously
    ASSERT_TRUE(blk.device_features() & kFeatSegMax);
    uint32_t seg_max = read_seg_max(blk);
    // As many as one chain of the queue size can hold besides header and status.
    EXPECT_EQ(seg_max, VirtioBlk::kQueueSize - 2u);

    FakeDriver drv(VirtioBlk::kQueueSize, false, true);
    NoIrq irq;
    ASSERT_TRUE(blk.activate(kFeatureVersion1 | kFeatIndirect | kFeatSegMax, {drv.config()}, drv.mem, irq));
    EXPECT_EQ(read_with_segments(blk, drv, seg_max), 0);  // VIRTIO_BLK_S_OK
    EXPECT_EQ(drv.used_idx(), 1);
    EXPECT_EQ(drv.used(0).len, seg_max * 512 + 1);
    EXPECT_EQ(blk.counters().bytes_read, seg_max * 512ull);
}

}  // namespace
}  // namespace kvmkit::virtio
