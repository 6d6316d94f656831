// The CMOS RTC of a PC (MC146818A): index port + data port, 128 bytes of
// CMOS, the time/date registers computed from a clock source on every read,
// BCD or binary and 12/24-hour formats as register B selects.
// The guest may set the time; we keep the difference to the host clock. While
// register B's SET bit is on, updates stop: time-field writes are held (and read
// back) as written, and the new time is computed once, when SET clears.
// Left out: alarm and periodic interrupts (IRQ 8), the update-ended interrupt.
#pragma once

#include <cstdint>
#include <ctime>
#include <functional>
#include <mutex>
#include <span>

#include "bus/bus.hpp"

namespace kvmkit::devices {

class CmosRtc : public bus::BusDevice {
public:
    using Clock = std::function<time_t()>;
    explicit CmosRtc(Clock clock = [] { return ::time(nullptr); });

    const char* name() const override { return "cmos-rtc"; }
    void read(uint64_t offset, std::span<uint8_t> data) override;
    void write(uint64_t offset, std::span<const uint8_t> data) override;

    // Raw CMOS bytes (firmware memory-size fields and the like).
    void set_cmos_byte(uint8_t index, uint8_t value);

private:
    uint8_t read_register(uint8_t index);
    void write_register(uint8_t index, uint8_t value);
    uint8_t encode(int value) const;
    int decode(uint8_t value) const;
    // Stores one time field (register index, guest encoding) into tm, unnormalised.
    void apply_field(struct tm& tm, uint8_t index, uint8_t value) const;
    // Makes tm the guest's current time.
    void commit(struct tm tm);

    Clock clock_;
    std::mutex mutex_;
    uint8_t index_ = 0;
    uint8_t cmos_[128] = {};
    time_t offset_ = 0;  // guest time - host time, after the guest set the clock
    struct tm held_ {};  // the time fields while register B's SET bit is on
};

}  // namespace kvmkit::devices
