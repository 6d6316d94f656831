// The ACPI fixed-hardware power-management registers the FADT points at
// (ACPI 6.x, 4.8): the PM1a event block (status + enable) and the PM1a
// control block, plus the FADT reset register. Sleep type S5 with SLP_EN
// means "power off"; the reset value written to the reset register means
// "reset". The fixed power button sets PWRBTN_STS and raises the SCI when
// enabled. The SCI is level-triggered: it stays up while an enabled status
// bit is set.
// Left out: the PM timer, GPE blocks, sleep states other than S5.
#pragma once

#include <cstdint>
#include <functional>
#include <mutex>
#include <span>

#include "bus/bus.hpp"

namespace kvmkit::devices {

class AcpiPm : public bus::BusDevice {
public:
    // Offsets in the one I/O range the device covers (event block, control block, reset register).
    static constexpr uint64_t kStatusOffset = 0, kEnableOffset = 2, kControlOffset = 4, kResetOffset = 8;
    static constexpr uint64_t kRangeSize = 9;

    struct Actions {
        std::function<void()> poweroff;
        std::function<void()> reset;
    };

    AcpiPm(bus::IrqLine& sci, uint8_t s5_sleep_type, uint8_t reset_value, Actions actions)
        : sci_(sci), s5_type_(s5_sleep_type), reset_value_(reset_value), actions_(std::move(actions)) {}

    const char* name() const override { return "acpi-pm"; }
    void read(uint64_t offset, std::span<uint8_t> data) override;
    void write(uint64_t offset, std::span<const uint8_t> data) override;

    // Presses the fixed-feature power button (host-side request).
    void press_power_button();

private:
    uint8_t read_byte(uint64_t offset) const;
    void update_sci();

    bus::IrqLine& sci_;
    uint8_t s5_type_;
    uint8_t reset_value_;
    Actions actions_;
    std::mutex mutex_;
    uint16_t status_ = 0, enable_ = 0, control_ = 1;  // SCI_EN: always in ACPI mode
    bool sci_level_ = false;
};

}  // namespace kvmkit::devices
