// I8042: the keyboard controller's command/status port, controller self-tests,
// the command byte and the two software reset paths (pulse command 0xFE, and the
// output port's reset line, bit 0, driven low). Per the IBM PC/AT technical
// reference and the Linux i8042 driver's expectations.
#include "devices/i8042.hpp"

#include <gtest/gtest.h>

#include "fakes.hpp"

using kvmkit::devices::I8042;
using namespace kvmkit::test;

namespace {

constexpr uint64_t DATA = 0, CMD = 4;  // ports 0x60 and 0x64 in a range based at 0x60
constexpr uint8_t ST_OBF = 0x01, ST_SYS = 0x04, ST_CMD = 0x08;

class Kbc : public ::testing::Test {
protected:
    int resets = 0;
    I8042 kbc{[this] { ++resets; }};
};

}  // namespace

TEST_F(Kbc, OffsetsMatchTheIoPorts) {
    EXPECT_EQ(I8042::kDataOffset, DATA);
    EXPECT_EQ(I8042::kCommandOffset, CMD);
}

TEST_F(Kbc, StatusAfterReset) {
    const uint8_t st = rd(kbc, CMD);
    EXPECT_FALSE(st & ST_OBF) << "nothing to read";
    EXPECT_TRUE(st & ST_SYS) << "system flag: POST passed";
    EXPECT_EQ(resets, 0);
}

TEST_F(Kbc, ControllerSelfTest) {
    wr(kbc, CMD, 0xaa);
    EXPECT_TRUE(rd(kbc, CMD) & ST_OBF);
    EXPECT_TRUE(rd(kbc, CMD) & ST_CMD) << "last write was to the command port";
    EXPECT_EQ(rd(kbc, DATA), 0x55) << "self-test passed";
    EXPECT_FALSE(rd(kbc, CMD) & ST_OBF) << "the output buffer is empty again";
}

TEST_F(Kbc, InterfaceTests) {
    wr(kbc, CMD, 0xab);  // keyboard interface test
    EXPECT_EQ(rd(kbc, DATA), 0x00) << "no error";
    wr(kbc, CMD, 0xa9);  // aux interface test
    EXPECT_EQ(rd(kbc, DATA), 0x00);
}

TEST_F(Kbc, CommandByteReadWrite) {
    wr(kbc, CMD, 0x60);
    wr(kbc, DATA, 0x47);
    EXPECT_FALSE(rd(kbc, CMD) & ST_CMD) << "last write was data";
    EXPECT_FALSE(rd(kbc, CMD) & ST_OBF) << "writing the command byte produces no output";
    wr(kbc, CMD, 0x20);
    EXPECT_TRUE(rd(kbc, CMD) & ST_OBF);
    EXPECT_EQ(rd(kbc, DATA), 0x47);

    wr(kbc, CMD, 0xad);  // disable keyboard: command byte bit 4
    wr(kbc, CMD, 0x20);
    EXPECT_EQ(rd(kbc, DATA), 0x47 | 0x10);
    wr(kbc, CMD, 0xae);  // enable keyboard
    wr(kbc, CMD, 0x20);
    EXPECT_EQ(rd(kbc, DATA), 0x47);
    EXPECT_EQ(resets, 0);
}

TEST_F(Kbc, OutputIsQueuedInOrder) {
    wr(kbc, CMD, 0xaa);
    wr(kbc, CMD, 0xab);
    EXPECT_EQ(rd(kbc, DATA), 0x55);
    EXPECT_EQ(rd(kbc, DATA), 0x00);
    EXPECT_FALSE(rd(kbc, CMD) & ST_OBF);
}

TEST_F(Kbc, PulseResetCommand) {
    wr(kbc, CMD, 0xfe);
    EXPECT_EQ(resets, 1);
}

TEST_F(Kbc, PulseOutputPortLines) {
    // 0xF0-0xFF pulse output-port bits 0-3 low where the command's bit is 0; bit 0 is reset.
    wr(kbc, CMD, 0xff);  // pulses nothing
    EXPECT_EQ(resets, 0);
    wr(kbc, CMD, 0xfd);  // pulses bit 1 only
    EXPECT_EQ(resets, 0);
    wr(kbc, CMD, 0xf0);  // pulses bits 0-3
    EXPECT_EQ(resets, 1);
    wr(kbc, CMD, 0xfc);
    EXPECT_EQ(resets, 2);
}

TEST_F(Kbc, OutputPortWriteWithResetLineLow) {
    wr(kbc, CMD, 0xd1);
    wr(kbc, DATA, 0x03);  // bit 0 high: keep running (A20 on)
    EXPECT_EQ(resets, 0);
    wr(kbc, CMD, 0xd1);
    wr(kbc, DATA, 0x02);  // bit 0 low: reset
    EXPECT_EQ(resets, 1);
    wr(kbc, CMD, 0xd0);  // read the output port: the reset line is high (inactive)
    EXPECT_TRUE(rd(kbc, DATA) & 0x01);
}

TEST_F(Kbc, DataWithoutPendingCommandDoesNotReset) {
    wr(kbc, DATA, 0x00);  // a keyboard command byte for the absent keyboard
    wr(kbc, DATA, 0xfe);
    EXPECT_EQ(resets, 0);
}

TEST_F(Kbc, ResetCallbackRunsWithoutTheDeviceLock) {
    int status_in_callback = -1;
    I8042* self = nullptr;
    I8042 dev([&] { status_in_callback = rd(*self, CMD); });
    self = &dev;
    wr(dev, CMD, 0xfe);  // would deadlock if the callback ran under the lock
    EXPECT_NE(status_in_callback, -1);
}
