// handle_exit with fabricated kvm_run structures (Documentation/virt/kvm/api.rst,
// "The kvm_run structure"): port I/O data lives at run + io.data_offset (KVM puts
// it on the page after kvm_run), MMIO data inline in run.mmio.data.
#include "vmm/exit_dispatch.hpp"

#include <gtest/gtest.h>

#include <cstring>
#include <memory>
#include <vector>

using namespace kvmkit::vmm;
using kvmkit::bus::Bus;
using kvmkit::bus::BusDevice;

namespace {

constexpr size_t kRunSize = 2 * 4096;  // kvm_run page + the PIO data page
constexpr uint64_t kPioDataOffset = 4096;

struct Access {
    bool write;
    uint64_t offset;
    std::vector<uint8_t> bytes;
};

class FakeDevice : public BusDevice {
public:
    const char* name() const override { return "fake"; }
    void read(uint64_t offset, std::span<uint8_t> data) override {
        for (size_t i = 0; i < data.size(); ++i) data[i] = static_cast<uint8_t>(0x10 * (reads + 1) + offset + i);
        ++reads;
        log.push_back({false, offset, std::vector<uint8_t>(data.begin(), data.end())});
    }
    void write(uint64_t offset, std::span<const uint8_t> data) override {
        log.push_back({true, offset, std::vector<uint8_t>(data.begin(), data.end())});
    }
    std::vector<Access> log;
    int reads = 0;
};

class Exits : public ::testing::Test {
protected:
    void SetUp() override {
        ASSERT_TRUE(pio_bus.insert({0x3f8, 8}, pio_dev));
        ASSERT_TRUE(mmio_bus.insert({0xd0000000, 0x1000}, mmio_dev));
        buf.reset(new uint64_t[kRunSize / 8]());
    }
    kvm_run& run() { return *reinterpret_cast<kvm_run*>(buf.get()); }
    uint8_t* pio_data() { return reinterpret_cast<uint8_t*>(buf.get()) + kPioDataOffset; }

    void pio(uint8_t dir, uint16_t port, uint8_t size, uint32_t count, uint64_t data_offset = kPioDataOffset) {
        run().exit_reason = KVM_EXIT_IO;
        run().io.direction = dir;
        run().io.port = port;
        run().io.size = size;
        run().io.count = count;
        run().io.data_offset = data_offset;
    }
    ExitAction dispatch() { return handle_exit(Peripherals{pio_bus, mmio_bus}, run(), kRunSize); }

    Bus pio_bus{"pio"}, mmio_bus{"mmio"};
    std::shared_ptr<FakeDevice> pio_dev = std::make_shared<FakeDevice>();
    std::shared_ptr<FakeDevice> mmio_dev = std::make_shared<FakeDevice>();
    std::unique_ptr<uint64_t[]> buf;  // 8-byte aligned, like the real mapping
};

}  // namespace

static_assert(sizeof(kvm_run) <= kPioDataOffset, "the fabricated PIO data page follows kvm_run");

TEST_F(Exits, PioOutReachesTheDeviceWithItsOffset) {
    pio(KVM_EXIT_IO_OUT, 0x3fb, 1, 1);
    pio_data()[0] = 0x83;
    auto a = dispatch();
    EXPECT_EQ(a.kind, ExitAction::Kind::Continue);
    ASSERT_EQ(pio_dev->log.size(), 1u);
    EXPECT_TRUE(pio_dev->log[0].write);
    EXPECT_EQ(pio_dev->log[0].offset, 3u);
    EXPECT_EQ(pio_dev->log[0].bytes, std::vector<uint8_t>{0x83});
}

TEST_F(Exits, PioOutWordAndDword) {
    pio(KVM_EXIT_IO_OUT, 0x3f8, 2, 1);
    pio_data()[0] = 0x34;
    pio_data()[1] = 0x12;
    EXPECT_EQ(dispatch().kind, ExitAction::Kind::Continue);
    pio(KVM_EXIT_IO_OUT, 0x3fc, 4, 1);
    std::memcpy(pio_data(), "\x01\x02\x03\x04", 4);
    EXPECT_EQ(dispatch().kind, ExitAction::Kind::Continue);
    ASSERT_EQ(pio_dev->log.size(), 2u);
    EXPECT_EQ(pio_dev->log[0].bytes, (std::vector<uint8_t>{0x34, 0x12}));
    EXPECT_EQ(pio_dev->log[1].offset, 4u);
    EXPECT_EQ(pio_dev->log[1].bytes, (std::vector<uint8_t>{1, 2, 3, 4}));
}

TEST_F(Exits, PioInFillsTheDataArea) {
    pio(KVM_EXIT_IO_IN, 0x3fd, 1, 1);
    pio_data()[0] = 0;
    pio_data()[1] = 0xaa;
    EXPECT_EQ(dispatch().kind, ExitAction::Kind::Continue);
    ASSERT_EQ(pio_dev->log.size(), 1u);
    EXPECT_FALSE(pio_dev->log[0].write);
    EXPECT_EQ(pio_dev->log[0].offset, 5u);
    EXPECT_EQ(pio_data()[0], 0x15);  // first read: 0x10 + offset 5
    EXPECT_EQ(pio_data()[1], 0xaa) << "only `size` bytes are written";
}

TEST_F(Exits, StringPioOut) {
    // rep outsb with count 3: three accesses, consecutive bytes of the data area.
    pio(KVM_EXIT_IO_OUT, 0x3f8, 1, 3);
    std::memcpy(pio_data(), "abc", 3);
    EXPECT_EQ(dispatch().kind, ExitAction::Kind::Continue);
    ASSERT_EQ(pio_dev->log.size(), 3u);
    for (int i = 0; i < 3; ++i) {
        EXPECT_TRUE(pio_dev->log[i].write);
        EXPECT_EQ(pio_dev->log[i].offset, 0u) << "same port each time";
        EXPECT_EQ(pio_dev->log[i].bytes, std::vector<uint8_t>{static_cast<uint8_t>('a' + i)});
    }
}

TEST_F(Exits, StringPioIn) {
    // rep insw with count 4: four 2-byte reads placed one after the other.
    pio(KVM_EXIT_IO_IN, 0x3fa, 2, 4);
    EXPECT_EQ(dispatch().kind, ExitAction::Kind::Continue);
    ASSERT_EQ(pio_dev->log.size(), 4u);
    for (int i = 0; i < 4; ++i) {
        EXPECT_EQ(pio_data()[2 * i], 0x10 * (i + 1) + 2) << i;
        EXPECT_EQ(pio_data()[2 * i + 1], 0x10 * (i + 1) + 3) << i;
    }
}

TEST_F(Exits, UnclaimedPioReadsAllOnesAndWritesAreIgnored) {
    pio(KVM_EXIT_IO_IN, 0x2f8, 2, 3);
    std::memset(pio_data(), 0, 16);
    EXPECT_EQ(dispatch().kind, ExitAction::Kind::Continue);
    for (int i = 0; i < 6; ++i) EXPECT_EQ(pio_data()[i], 0xff) << i;
    EXPECT_EQ(pio_data()[6], 0x00);

    pio(KVM_EXIT_IO_OUT, 0x2f8, 1, 1);
    EXPECT_EQ(dispatch().kind, ExitAction::Kind::Continue);
    EXPECT_TRUE(pio_dev->log.empty());
}

TEST_F(Exits, PioDataOutsideTheRunAreaIsFatal) {
    struct {
        uint64_t data_offset;
        uint8_t size;
        uint32_t count;
    } bad[] = {
        {kRunSize, 1, 1},      // starts one past the end
        {kRunSize - 1, 2, 1},  // last byte sticks out
        {kRunSize - 4, 4, 2},  // string I/O runs past the end
        {kPioDataOffset, 4, 0xffffffff},
        {UINT64_MAX - 1, 4, 1},  // offset + size wraps
        {UINT64_MAX, 1, 1},
    };
    for (const auto& b : bad) {
        pio(KVM_EXIT_IO_OUT, 0x3f8, b.size, b.count, b.data_offset);
        auto a = dispatch();
        EXPECT_EQ(a.kind, ExitAction::Kind::Fatal) << b.data_offset;
        EXPECT_FALSE(a.message.empty());
        pio(KVM_EXIT_IO_IN, 0x3f8, b.size, b.count, b.data_offset);
        EXPECT_EQ(dispatch().kind, ExitAction::Kind::Fatal) << b.data_offset;
    }
    EXPECT_TRUE(pio_dev->log.empty());

    // The very last bytes of the area are fine.
    pio(KVM_EXIT_IO_OUT, 0x3f8, 4, 1, kRunSize - 4);
    EXPECT_EQ(dispatch().kind, ExitAction::Kind::Continue);
}

TEST_F(Exits, BadPioSizeIsFatal) {
    for (uint8_t size : {0, 3, 8, 16}) {
        pio(KVM_EXIT_IO_OUT, 0x3f8, size, 1);
        auto a = dispatch();
        EXPECT_EQ(a.kind, ExitAction::Kind::Fatal) << int(size);
        EXPECT_NE(a.message.find("size"), std::string::npos) << a.message;
    }
    EXPECT_TRUE(pio_dev->log.empty());
}

TEST_F(Exits, MmioWrite) {
    run().exit_reason = KVM_EXIT_MMIO;
    run().mmio.phys_addr = 0xd0000010;
    run().mmio.is_write = 1;
    run().mmio.len = 4;
    std::memcpy(run().mmio.data, "\xde\xad\xbe\xef", 4);
    EXPECT_EQ(dispatch().kind, ExitAction::Kind::Continue);
    ASSERT_EQ(mmio_dev->log.size(), 1u);
    EXPECT_TRUE(mmio_dev->log[0].write);
    EXPECT_EQ(mmio_dev->log[0].offset, 0x10u);
    EXPECT_EQ(mmio_dev->log[0].bytes, (std::vector<uint8_t>{0xde, 0xad, 0xbe, 0xef}));
    EXPECT_TRUE(pio_dev->log.empty()) << "MMIO does not go to the PIO bus";
}

TEST_F(Exits, MmioRead) {
    run().exit_reason = KVM_EXIT_MMIO;
    run().mmio.phys_addr = 0xd0000ff8;
    run().mmio.is_write = 0;
    run().mmio.len = 8;
    EXPECT_EQ(dispatch().kind, ExitAction::Kind::Continue);
    ASSERT_EQ(mmio_dev->log.size(), 1u);
    EXPECT_EQ(mmio_dev->log[0].offset, 0xff8u);
    for (int i = 0; i < 8; ++i) EXPECT_EQ(run().mmio.data[i], static_cast<uint8_t>(0x10 + 0xff8 + i)) << i;
}

TEST_F(Exits, UnclaimedMmioReadsAllOnes) {
    run().exit_reason = KVM_EXIT_MMIO;
    run().mmio.phys_addr = 0xfe000000;
    run().mmio.is_write = 0;
    run().mmio.len = 2;
    std::memset(run().mmio.data, 0, 8);
    EXPECT_EQ(dispatch().kind, ExitAction::Kind::Continue);
    EXPECT_EQ(run().mmio.data[0], 0xff);
    EXPECT_EQ(run().mmio.data[1], 0xff);
    EXPECT_EQ(run().mmio.data[2], 0x00);
    run().mmio.is_write = 1;
    EXPECT_EQ(dispatch().kind, ExitAction::Kind::Continue);
}

TEST_F(Exits, BadMmioLengthIsFatal) {
    run().exit_reason = KVM_EXIT_MMIO;
    run().mmio.phys_addr = 0xd0000000;
    for (uint32_t len : {0u, 9u, 0xffffffffu}) {
        run().mmio.len = len;
        EXPECT_EQ(dispatch().kind, ExitAction::Kind::Fatal) << len;
    }
    EXPECT_TRUE(mmio_dev->log.empty());
}

TEST_F(Exits, ShutdownIsATripleFaultReset) {
    run().exit_reason = KVM_EXIT_SHUTDOWN;
    EXPECT_EQ(dispatch().kind, ExitAction::Kind::Reset);
}

TEST_F(Exits, SystemEvents) {
    run().exit_reason = KVM_EXIT_SYSTEM_EVENT;
    run().system_event.type = KVM_SYSTEM_EVENT_SHUTDOWN;
    EXPECT_EQ(dispatch().kind, ExitAction::Kind::Poweroff);
    run().system_event.type = KVM_SYSTEM_EVENT_RESET;
    EXPECT_EQ(dispatch().kind, ExitAction::Kind::Reset);
    run().system_event.type = KVM_SYSTEM_EVENT_CRASH;
    EXPECT_EQ(dispatch().kind, ExitAction::Kind::Fatal);
    run().system_event.type = 0x1234;
    auto a = dispatch();
    EXPECT_EQ(a.kind, ExitAction::Kind::Fatal);
    EXPECT_NE(a.message.find(std::to_string(0x1234)), std::string::npos) << a.message;
}

TEST_F(Exits, InternalErrors) {
    run().exit_reason = KVM_EXIT_INTERNAL_ERROR;
    run().internal.suberror = KVM_INTERNAL_ERROR_EMULATION;
    EXPECT_EQ(dispatch().kind, ExitAction::Kind::EmulationFailure);
    run().internal.suberror = KVM_INTERNAL_ERROR_SIMUL_EX;
    EXPECT_EQ(dispatch().kind, ExitAction::Kind::Fatal);
}

TEST_F(Exits, BenignExitsContinue) {
    for (uint32_t r : {KVM_EXIT_HLT, KVM_EXIT_INTR, KVM_EXIT_IRQ_WINDOW_OPEN}) {
        run().exit_reason = r;
        EXPECT_EQ(dispatch().kind, ExitAction::Kind::Continue) << r;
    }
}

TEST_F(Exits, FailEntryAndUnknownReasonsAreFatal) {
    run().exit_reason = KVM_EXIT_FAIL_ENTRY;
    run().fail_entry.hardware_entry_failure_reason = 0x21;
    auto f = dispatch();
    EXPECT_EQ(f.kind, ExitAction::Kind::Fatal);
    EXPECT_NE(f.message.find("0x21"), std::string::npos) << f.message;

    run().exit_reason = 9999;
    auto u = dispatch();
    EXPECT_EQ(u.kind, ExitAction::Kind::Fatal);
    EXPECT_NE(u.message.find("9999"), std::string::npos) << u.message;

    run().exit_reason = KVM_EXIT_DEBUG;
    auto d = dispatch();
    EXPECT_EQ(d.kind, ExitAction::Kind::Fatal);
    EXPECT_NE(d.message.find("DEBUG"), std::string::npos) << d.message;
}

TEST(ExitReasonName, KnownAndUnknown) {
    EXPECT_STREQ(exit_reason_name(KVM_EXIT_IO), "IO");
    EXPECT_STREQ(exit_reason_name(KVM_EXIT_MMIO), "MMIO");
    EXPECT_STREQ(exit_reason_name(KVM_EXIT_SHUTDOWN), "SHUTDOWN");
    EXPECT_STREQ(exit_reason_name(KVM_EXIT_INTERNAL_ERROR), "INTERNAL_ERROR");
    EXPECT_STREQ(exit_reason_name(9999), "?");
}

TEST(EmulationFix, Int3IsABreakpointOfLengthOne) {
    const uint8_t insn[] = {0xcc, 0x90};
    auto f = decide_emulation_fix(insn);
    EXPECT_EQ(f.kind, EmulationFix::Kind::DeliverBreakpoint);
    EXPECT_EQ(f.length, 1u);
}

TEST(EmulationFix, FwaitIsSkipped) {
    const uint8_t insn[] = {0x9b, 0xdb, 0xe3};  // fwait; fninit (= finit)
    auto f = decide_emulation_fix(insn);
    EXPECT_EQ(f.kind, EmulationFix::Kind::Skip);
    EXPECT_EQ(f.length, 1u);
}

TEST(EmulationFix, OthersAreLeftAlone) {
    const uint8_t cpuid[] = {0x0f, 0xa2};
    EXPECT_EQ(decide_emulation_fix(cpuid).kind, EmulationFix::Kind::None);
    const uint8_t int_cd3[] = {0xcd, 0x03};  // "int 3" in its two-byte form is not int3
    EXPECT_EQ(decide_emulation_fix(int_cd3).kind, EmulationFix::Kind::None);
    const uint8_t prefixed[] = {0x66, 0x9b};
    EXPECT_EQ(decide_emulation_fix(prefixed).kind, EmulationFix::Kind::None);
    EXPECT_EQ(decide_emulation_fix({}).kind, EmulationFix::Kind::None);
    EXPECT_EQ(decide_emulation_fix({}).length, 0u);
}
