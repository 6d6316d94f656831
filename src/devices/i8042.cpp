#include "devices/i8042.hpp"

namespace kvmkit::devices {

namespace {
constexpr uint8_t kStatusOutputFull = 0x01, kStatusSystem = 0x04, kStatusCommand = 0x08;
constexpr uint8_t kCmdReadCommandByte = 0x20, kCmdWriteCommandByte = 0x60, kCmdDisableAux = 0xa7,
                  kCmdEnableAux = 0xa8, kCmdTestAux = 0xa9, kCmdSelfTest = 0xaa, kCmdTestKbd = 0xab,
                  kCmdDisableKbd = 0xad, kCmdEnableKbd = 0xae, kCmdReadOutputPort = 0xd0, kCmdWriteOutputPort = 0xd1,
                  kCmdPulseReset = 0xfe;
}  // namespace

void I8042::read(uint64_t offset, std::span<uint8_t> data) {
    std::lock_guard lock(mutex_);
    for (auto& b : data) {
        if (offset == kCommandOffset) {
            b = kStatusSystem | (last_was_command_ ? kStatusCommand : 0) | (out_.empty() ? 0 : kStatusOutputFull);
        } else if (offset == kDataOffset && !out_.empty()) {
            b = out_.front();
            out_.pop_front();
        } else {
            b = offset == kDataOffset ? 0 : 0xff;
        }
    }
}

void I8042::write(uint64_t offset, std::span<const uint8_t> data) {
    if (data.empty()) return;
    bool reset = false;
    {
        std::lock_guard lock(mutex_);
        if (offset == kCommandOffset) command(data[0], reset);
        else if (offset == kDataOffset) data_write(data[0], reset);
    }
    if (reset && reset_) reset_();
}

void I8042::command(uint8_t cmd, bool& reset) {
    last_was_command_ = true;
    switch (cmd) {
        case kCmdReadCommandByte: out_.push_back(command_byte_); break;
        case kCmdWriteCommandByte:
        case kCmdWriteOutputPort: pending_ = cmd; break;
        case kCmdSelfTest: out_.push_back(0x55); break;
        case kCmdTestKbd:
        case kCmdTestAux: out_.push_back(0x00); break;
        case kCmdReadOutputPort: out_.push_back(0x01); break;  // reset line high (inactive)
        case kCmdDisableKbd: command_byte_ |= 0x10; break;
        case kCmdEnableKbd: command_byte_ &= ~0x10; break;
        case kCmdDisableAux: command_byte_ |= 0x20; break;
        case kCmdEnableAux: command_byte_ &= ~0x20; break;
        default:
            // 0xF0-0xFF pulse output-port lines; bit 0 low means "pulse CPU reset".
            if (cmd >= 0xf0 && !(cmd & 0x01)) reset = true;
            if (cmd == kCmdPulseReset) reset = true;
            break;
    }
}

void I8042::data_write(uint8_t value, bool& reset) {
    last_was_command_ = false;
    switch (pending_) {
        case kCmdWriteCommandByte: command_byte_ = value; break;
        case kCmdWriteOutputPort:
            if (!(value & 0x01)) reset = true;  // the reset line is active low
            break;
        default: break;  // a byte for the (absent) keyboard: dropped
    }
    pending_ = 0;
}

}  // namespace kvmkit::devices
