#include "devices/acpi_pm.hpp"

namespace kvmkit::devices {

namespace {
constexpr uint16_t kPwrBtnSts = 1u << 8;
constexpr uint16_t kWakeSts = 1u << 15;
constexpr uint16_t kSciEn = 1u << 0;
constexpr uint16_t kSlpEn = 1u << 13;
constexpr unsigned kSlpTypShift = 10;
}  // namespace

uint8_t AcpiPm::read_byte(uint64_t offset) const {
    switch (offset) {
        case kStatusOffset: return status_ & 0xff;
        case kStatusOffset + 1: return status_ >> 8;
        case kEnableOffset: return enable_ & 0xff;
        case kEnableOffset + 1: return enable_ >> 8;
        case kControlOffset: return (control_ | kSciEn) & 0xff;
        case kControlOffset + 1: return (control_ >> 8) & ~(kSlpEn >> 8);  // SLP_EN reads as zero
        default: return 0;
    }
}

void AcpiPm::read(uint64_t offset, std::span<uint8_t> data) {
    std::lock_guard lock(mutex_);
    for (size_t i = 0; i < data.size(); ++i) data[i] = read_byte(offset + i);
}

void AcpiPm::write(uint64_t offset, std::span<const uint8_t> data) {
    bool poweroff = false, reset = false;
    {
        std::lock_guard lock(mutex_);
        auto value16 = [&](uint16_t old, uint64_t reg) {
            // Merge a 1- or 2-byte write at `offset` into the 16-bit register at `reg`.
            uint16_t v = old;
            for (size_t i = 0; i < data.size(); ++i) {
                uint64_t byte = offset + i - reg;
                if (byte < 2) v = (v & ~(0xff << (8 * byte))) | (data[i] << (8 * byte));
            }
            return v;
        };
        if (offset < kEnableOffset) {
            uint16_t w1c = value16(0, kStatusOffset);  // status bits are write-one-to-clear
            status_ &= ~w1c;
        } else if (offset < kControlOffset) {
            enable_ = value16(enable_, kEnableOffset);
        } else if (offset < kResetOffset) {
            uint16_t v = value16(control_, kControlOffset);
            if (v & kSlpEn) {
                uint8_t type = (v >> kSlpTypShift) & 7;
                if (type == s5_type_) poweroff = true;
                // Other sleep states (S1-S4) are not offered by the DSDT: ignored.
            }
            control_ = (v & ~kSlpEn) | kSciEn;
        } else if (offset == kResetOffset && !data.empty()) {
            reset = data[0] == reset_value_;
        }
        update_sci();
    }
    if (poweroff && actions_.poweroff) actions_.poweroff();
    if (reset && actions_.reset) actions_.reset();
}

void AcpiPm::press_power_button() {
    std::lock_guard lock(mutex_);
    status_ |= kPwrBtnSts;
    update_sci();
}

void AcpiPm::update_sci() {
    bool level = (status_ & enable_ & ~kWakeSts) != 0;
    if (level != sci_level_) {
        sci_level_ = level;
        sci_.set_level(level);
    }
}

}  // namespace kvmkit::devices
