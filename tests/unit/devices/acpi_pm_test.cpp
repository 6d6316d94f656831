// AcpiPm against ACPI 6.x 4.8.3 (PM1 event/control registers): PM1 status is
// write-one-to-clear, PWRBTN_STS is bit 8 of status and PWRBTN_EN bit 8 of
// enable, SLP_TYP is PM1_CNT bits 12:10 and SLP_EN bit 13 (write-only), SCI_EN
// bit 0; the FADT reset register (4.8.3.6) resets on its value.
#include "devices/acpi_pm.hpp"

#include <gtest/gtest.h>

#include "arch/x86_64/layout.hpp"
#include "fakes.hpp"

using kvmkit::devices::AcpiPm;
using namespace kvmkit::test;
namespace layout = kvmkit::arch::x86_64::layout;

namespace {

constexpr uint64_t STS = 0, EN = 2, CNT = 4, RESET = 8;
constexpr uint16_t PWRBTN = 1u << 8;
constexpr uint16_t SCI_EN = 1u << 0, SLP_EN = 1u << 13;
constexpr uint16_t slp_typ(unsigned t) {
    return static_cast<uint16_t>(t << 10);
}
constexpr uint8_t kS5 = 5, kResetValue = 0x01;

class Pm : public ::testing::Test {
protected:
    FakeIrqLine sci;
    int poweroffs = 0, resets = 0;
    AcpiPm pm{sci, kS5, kResetValue, AcpiPm::Actions{[this] { ++poweroffs; }, [this] { ++resets; }}};
};

}  // namespace

TEST(AcpiPmLayout, OffsetsMatchThePortMap) {
    // The device covers one I/O range from the PM1a event block; the FADT points at these ports.
    EXPECT_EQ(AcpiPm::kStatusOffset, 0u);
    EXPECT_EQ(AcpiPm::kEnableOffset, layout::kPm1EventLen / 2u) << "enable is the second half of PM1_EVT";
    EXPECT_EQ(layout::kPm1aEventPort + AcpiPm::kControlOffset, layout::kPm1aControlPort);
    EXPECT_EQ(layout::kPm1aEventPort + AcpiPm::kResetOffset, layout::kResetPort);
    EXPECT_GE(AcpiPm::kRangeSize, AcpiPm::kResetOffset + 1);
    EXPECT_GE(AcpiPm::kResetOffset, AcpiPm::kControlOffset + layout::kPm1ControlLen);
}

TEST_F(Pm, SleepTypeS5WithSlpEnPowersOff) {
    wr16(pm, CNT, slp_typ(5) | SLP_EN);
    EXPECT_EQ(poweroffs, 1);
    EXPECT_EQ(resets, 0);
}

TEST_F(Pm, SlpTypWithoutSlpEnDoesNothing) {
    wr16(pm, CNT, slp_typ(5));
    EXPECT_EQ(poweroffs, 0);
    // ACPICA writes SLP_TYP first, then SLP_TYP | SLP_EN.
    wr16(pm, CNT, slp_typ(5) | SLP_EN);
    EXPECT_EQ(poweroffs, 1);
}

TEST_F(Pm, OtherSleepTypesAreIgnored) {
    for (unsigned t : {0u, 1u, 2u, 3u, 4u, 6u, 7u}) wr16(pm, CNT, slp_typ(t) | SLP_EN);
    EXPECT_EQ(poweroffs, 0);
    EXPECT_EQ(resets, 0);
}

TEST_F(Pm, ByteWideControlWrite) {
    // The high byte alone holds SLP_TYP (bits 10-12) and SLP_EN (bit 13).
    wr(pm, CNT + 1, static_cast<uint8_t>((slp_typ(5) | SLP_EN) >> 8));
    EXPECT_EQ(poweroffs, 1);
}

TEST_F(Pm, ControlReadsSciEnAndNeverSlpEn) {
    EXPECT_TRUE(rd16(pm, CNT) & SCI_EN) << "always in ACPI mode";
    wr16(pm, CNT, slp_typ(3));
    EXPECT_EQ(rd16(pm, CNT), slp_typ(3) | SCI_EN);
    wr16(pm, CNT, slp_typ(3) | SLP_EN);
    EXPECT_EQ(rd16(pm, CNT) & SLP_EN, 0) << "SLP_EN is write-only and reads as zero";
    wr16(pm, CNT, 0);
    EXPECT_TRUE(rd16(pm, CNT) & SCI_EN) << "SCI_EN cannot be cleared by the OS";
}

TEST_F(Pm, PowerButtonStatusIsWriteOneToClear) {
    EXPECT_EQ(rd16(pm, STS), 0);
    pm.press_power_button();
    EXPECT_EQ(rd16(pm, STS) & PWRBTN, PWRBTN);
    wr16(pm, STS, 0);  // writing zero changes nothing
    EXPECT_EQ(rd16(pm, STS) & PWRBTN, PWRBTN);
    wr16(pm, STS, 0xfeff);  // ones everywhere except PWRBTN: still set
    EXPECT_EQ(rd16(pm, STS) & PWRBTN, PWRBTN);
    wr16(pm, STS, PWRBTN);
    EXPECT_EQ(rd16(pm, STS) & PWRBTN, 0);

    pm.press_power_button();
    wr(pm, STS + 1, 0x01);  // byte-wide clear of bit 8
    EXPECT_EQ(rd16(pm, STS), 0);
}

TEST_F(Pm, PowerButtonRaisesSciOnlyWhenEnabled) {
    pm.press_power_button();
    EXPECT_FALSE(sci.level);
    EXPECT_TRUE(sci.levels.empty());

    wr16(pm, EN, PWRBTN);  // enabling with the status already set raises the SCI
    EXPECT_TRUE(sci.level);
    EXPECT_EQ(rd16(pm, EN), PWRBTN);
    wr16(pm, STS, PWRBTN);  // the OS handles the event: SCI drops
    EXPECT_FALSE(sci.level);

    pm.press_power_button();
    EXPECT_TRUE(sci.level);
    wr16(pm, EN, 0);  // disabling also drops it
    EXPECT_FALSE(sci.level);
    EXPECT_EQ(sci.levels, (std::vector<bool>{true, false, true, false}));
}

TEST_F(Pm, SciIsALevel) {
    wr16(pm, EN, PWRBTN);
    pm.press_power_button();
    pm.press_power_button();  // still the same pending event: no new edge
    EXPECT_EQ(sci.levels, (std::vector<bool>{true}));
    EXPECT_EQ(poweroffs, 0) << "the power button is a request to the OS, not a poweroff";
}

TEST_F(Pm, EnableRegisterByteAccess) {
    wr(pm, EN + 1, 0x01);
    EXPECT_EQ(rd16(pm, EN), PWRBTN);
    EXPECT_EQ(rd(pm, EN), 0x00);
    EXPECT_EQ(rd(pm, EN + 1), 0x01);
    wr(pm, EN, 0x20);  // low byte only: the high byte stays
    EXPECT_EQ(rd16(pm, EN), PWRBTN | 0x20);
}

TEST_F(Pm, DwordReadOfTheEventBlock) {
    wr16(pm, EN, PWRBTN);
    pm.press_power_button();
    uint8_t b[4] = {};
    pm.read(STS, b);
    EXPECT_EQ(b[0], 0x00);
    EXPECT_EQ(b[1], 0x01);  // status high byte
    EXPECT_EQ(b[2], 0x00);
    EXPECT_EQ(b[3], 0x01);  // enable high byte
}

TEST_F(Pm, ResetRegister) {
    wr(pm, RESET, 0x02);
    EXPECT_EQ(resets, 0);
    wr(pm, RESET, kResetValue);
    EXPECT_EQ(resets, 1);
    EXPECT_EQ(poweroffs, 0);
}

TEST(AcpiPmCallbacks, RunWithoutTheDeviceLock) {
    FakeIrqLine sci;
    AcpiPm* self = nullptr;
    int seen = -1;
    AcpiPm pm(sci, kS5, kResetValue, AcpiPm::Actions{[&] { seen = rd16(*self, CNT); }, [&] { seen = rd(*self, EN); }});
    self = &pm;
    wr16(pm, CNT, slp_typ(5) | SLP_EN);  // would deadlock if the callback ran under the lock
    EXPECT_NE(seen, -1);
    seen = -1;
    wr(pm, RESET, kResetValue);
    EXPECT_NE(seen, -1);
}

TEST(AcpiPmCallbacks, MissingActionsAreTolerated) {
    FakeIrqLine sci;
    AcpiPm pm(sci, kS5, kResetValue, {});
    wr16(pm, CNT, slp_typ(5) | SLP_EN);
    wr(pm, RESET, kResetValue);
    SUCCEED();
}
