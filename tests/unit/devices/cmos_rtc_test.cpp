// CmosRtc against the MC146818A datasheet (time registers 0x00-0x09, registers
// A-D, data mode and hour format in register B) and the PC convention of a
// century byte at 0x32 (named by the FADT's CENTURY field) and the NMI mask in
// bit 7 of the index port. Time comes from an injected clock.
#include "devices/cmos_rtc.hpp"

#include <gtest/gtest.h>

#include "fakes.hpp"

using kvmkit::devices::CmosRtc;
using namespace kvmkit::test;

namespace {

constexpr uint64_t INDEX = 0, DATA = 1;
constexpr uint8_t SEC = 0x00, MIN = 0x02, HOUR = 0x04, WDAY = 0x06, MDAY = 0x07, MON = 0x08, YEAR = 0x09, REG_A = 0x0a,
                  REG_B = 0x0b, REG_C = 0x0c, REG_D = 0x0d, CENTURY = 0x32;
constexpr uint8_t B_24H = 0x02, B_BINARY = 0x04;

// Friday 2024-03-15 14:05:09 UTC (date -u -d '2024-03-15 14:05:09' +%s).
constexpr time_t kFri1405 = 1710511509;

class Rtc : public ::testing::Test {
protected:
    uint8_t reg(uint8_t index) {
        wr(rtc, INDEX, index);
        return rd(rtc, DATA);
    }
    void set(uint8_t index, uint8_t value) {
        wr(rtc, INDEX, index);
        wr(rtc, DATA, value);
    }
    time_t now = kFri1405;
    CmosRtc rtc{[this] { return now; }};
};

}  // namespace

TEST_F(Rtc, BcdTimeByDefault) {
    EXPECT_EQ(reg(REG_B) & (B_24H | B_BINARY), B_24H) << "24-hour, BCD after power-on";
    EXPECT_EQ(reg(SEC), 0x09);
    EXPECT_EQ(reg(MIN), 0x05);
    EXPECT_EQ(reg(HOUR), 0x14);
    EXPECT_EQ(reg(WDAY), 0x06) << "day of week: Sunday = 1, so Friday = 6";
    EXPECT_EQ(reg(MDAY), 0x15);
    EXPECT_EQ(reg(MON), 0x03);
    EXPECT_EQ(reg(YEAR), 0x24);
    EXPECT_EQ(reg(CENTURY), 0x20);
}

TEST_F(Rtc, BinaryMode) {
    set(REG_B, B_24H | B_BINARY);
    EXPECT_EQ(reg(SEC), 9);
    EXPECT_EQ(reg(MIN), 5);
    EXPECT_EQ(reg(HOUR), 14);
    EXPECT_EQ(reg(MDAY), 15);
    EXPECT_EQ(reg(MON), 3);
    EXPECT_EQ(reg(YEAR), 24);
    EXPECT_EQ(reg(CENTURY), 20);
}

TEST_F(Rtc, TwelveHourModeSetsThePmBit) {
    set(REG_B, 0);  // 12-hour, BCD
    EXPECT_EQ(reg(HOUR), 0x80 | 0x02) << "14:05 is 2 PM";
    set(REG_B, B_BINARY);  // 12-hour, binary
    EXPECT_EQ(reg(HOUR), 0x80 | 2);

    set(REG_B, 0);
    now = 1710549000;  // 2024-03-16 00:30 UTC: 12 AM
    EXPECT_EQ(reg(HOUR), 0x12);
    now = 1710504000;  // 2024-03-15 12:00 UTC: 12 PM
    EXPECT_EQ(reg(HOUR), 0x80 | 0x12);
}

TEST_F(Rtc, ClockAdvances) {
    now += 3600 + 61;
    EXPECT_EQ(reg(HOUR), 0x15);
    EXPECT_EQ(reg(MIN), 0x06);
    EXPECT_EQ(reg(SEC), 0x10);
    now = 4102444799;  // 2099-12-31 23:59:59
    EXPECT_EQ(reg(YEAR), 0x99);
    EXPECT_EQ(reg(CENTURY), 0x20);
    now += 1;
    EXPECT_EQ(reg(YEAR), 0x00);
    EXPECT_EQ(reg(CENTURY), 0x21);
    EXPECT_EQ(reg(MON), 0x01);
    EXPECT_EQ(reg(MDAY), 0x01);
}

TEST_F(Rtc, StatusRegisters) {
    EXPECT_TRUE(reg(REG_D) & 0x80) << "VRT: RAM and time are valid";
    EXPECT_FALSE(reg(REG_A) & 0x80) << "UIP never reads as set";
    set(REG_D, 0x00);
    EXPECT_TRUE(reg(REG_D) & 0x80) << "register D is read-only";
    set(REG_A, 0xa6);
    EXPECT_EQ(reg(REG_A), 0x26) << "UIP is read-only, the rest is writable";
    EXPECT_EQ(reg(REG_C), 0x00) << "no interrupt flags";
}

TEST_F(Rtc, IndexPortMasksTheNmiBit) {
    // Linux writes 0x80 | index to keep NMIs disabled; bit 7 is not part of the index.
    wr(rtc, INDEX, 0x80 | SEC);
    EXPECT_EQ(rd(rtc, DATA), 0x09);
    wr(rtc, INDEX, 0x80 | REG_D);
    EXPECT_EQ(rd(rtc, DATA) & 0x80, 0x80);
    wr(rtc, INDEX, 0x80 | 0x40);
    wr(rtc, DATA, 0x77);
    EXPECT_EQ(reg(0x40), 0x77) << "0xC0 selected CMOS byte 0x40";
}

TEST_F(Rtc, CmosRamIsPlainStorage) {
    set(0x40, 0xab);
    set(0x7f, 0xcd);
    EXPECT_EQ(reg(0x40), 0xab);
    EXPECT_EQ(reg(0x7f), 0xcd);
    rtc.set_cmos_byte(0x34, 0x12);
    EXPECT_EQ(reg(0x34), 0x12);
    // Alarm registers (0x01, 0x03, 0x05) hold what was written.
    set(0x01, 0x30);
    EXPECT_EQ(reg(0x01), 0x30);
}

TEST_F(Rtc, GuestSetTimeKeepsItsOffset) {
    set(HOUR, 0x10);  // BCD 10 o'clock
    EXPECT_EQ(reg(HOUR), 0x10);
    EXPECT_EQ(reg(MIN), 0x05) << "other fields unchanged";
    EXPECT_EQ(reg(MDAY), 0x15);
    now += 61;  // the host clock moves on; the guest's clock moves with it
    EXPECT_EQ(reg(HOUR), 0x10);
    EXPECT_EQ(reg(MIN), 0x06);
    EXPECT_EQ(reg(SEC), 0x10);

    set(YEAR, 0x30);
    EXPECT_EQ(reg(YEAR), 0x30);
    EXPECT_EQ(reg(CENTURY), 0x20);
    set(CENTURY, 0x21);
    EXPECT_EQ(reg(CENTURY), 0x21);
    EXPECT_EQ(reg(YEAR), 0x30);
    EXPECT_EQ(reg(HOUR), 0x10);
}

TEST_F(Rtc, GuestSetsTimeInBinaryAndTwelveHourModes) {
    set(REG_B, B_BINARY);  // 12-hour binary
    set(HOUR, 0x80 | 11);  // 11 PM
    set(REG_B, B_24H | B_BINARY);
    EXPECT_EQ(reg(HOUR), 23);
    set(REG_B, 0);    // 12-hour BCD
    set(HOUR, 0x12);  // 12 AM is hour 0
    set(REG_B, B_24H);
    EXPECT_EQ(reg(HOUR), 0x00);
    set(REG_B, 0);
    set(HOUR, 0x80 | 0x12);  // 12 PM is hour 12
    set(REG_B, B_24H);
    EXPECT_EQ(reg(HOUR), 0x12);
}

// BUG (src/devices/cmos_rtc.cpp, write_register): each time field written is applied at
// once through timegm(), which normalises the *intermediate* date. Linux's
// mc146818_set_time() writes year, month, day, hours, minutes, seconds in that order
// (with register B's SET bit held, during which the MC146818A just stores the bytes).
// On 31 March, setting 29 February: the month write makes "31 February" = 2 March, the
// day write then gives 29 *March*. Fix: stage the fields while SET (0x80) is set in
// register B and compute the offset once when SET is cleared (and never normalise a
// single field write against the others).
TEST_F(Rtc, SettingTheDateFieldByFieldIsNotNormalisedEarly) {
    now = 1711886400;          // 2024-03-31 12:00:00 UTC
    set(REG_B, 0x80 | B_24H);  // SET: stop updates while the time is written
    set(YEAR, 0x24);
    set(MON, 0x02);
    set(MDAY, 0x29);
    set(HOUR, 0x23);
    set(MIN, 0x59);
    set(SEC, 0x00);
    set(REG_B, B_24H);
    EXPECT_EQ(reg(MON), 0x02);
    EXPECT_EQ(reg(MDAY), 0x29);
    EXPECT_EQ(reg(HOUR), 0x23);
}
