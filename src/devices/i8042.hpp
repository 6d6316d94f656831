// Just enough of the i8042 keyboard controller for a PC guest: the status
// and command ports, the controller command byte, self-tests, and the two
// ways software resets the machine through it (command 0xFE, and writing
// the output port with the reset line low). No keyboard or mouse is attached:
// writes to the devices are answered with "no device" (0xFE resend is not sent).
#pragma once

#include <cstdint>
#include <deque>
#include <functional>
#include <mutex>
#include <span>

#include "bus/bus.hpp"

namespace kvmkit::devices {

class I8042 : public bus::BusDevice {
public:
    // Offsets within the 0x60..0x64 range this device is mapped at.
    static constexpr uint64_t kDataOffset = 0;
    static constexpr uint64_t kCommandOffset = 4;

    explicit I8042(std::function<void()> reset_request) : reset_(std::move(reset_request)) {}

    const char* name() const override { return "i8042"; }
    void read(uint64_t offset, std::span<uint8_t> data) override;
    void write(uint64_t offset, std::span<const uint8_t> data) override;

private:
    void command(uint8_t cmd, bool& reset);
    void data_write(uint8_t value, bool& reset);

    std::function<void()> reset_;
    std::mutex mutex_;
    std::deque<uint8_t> out_;
    uint8_t command_byte_ = 0x61;  // kbd interrupt on, system flag, translation
    uint8_t pending_ = 0;          // command awaiting a data byte
    bool last_was_command_ = false;
};

}  // namespace kvmkit::devices
