#include "devices/serial_16550.hpp"

namespace kvmkit::devices {

namespace {
// Register offsets (DLAB=0 unless noted).
constexpr uint8_t kData = 0, kIer = 1, kIirFcr = 2, kLcr = 3, kMcr = 4, kLsr = 5, kMsr = 6, kScr = 7;

constexpr uint8_t kIerRda = 0x01, kIerThre = 0x02, kIerRls = 0x04, kIerMs = 0x08;
constexpr uint8_t kIirNone = 0x01, kIirMs = 0x00, kIirThre = 0x02, kIirRda = 0x04, kIirRls = 0x06;
constexpr uint8_t kIirFifoEnabled = 0xc0;
constexpr uint8_t kFcrEnable = 0x01, kFcrClearRx = 0x02;
constexpr uint8_t kLcrDlab = 0x80;
constexpr uint8_t kMcrDtr = 0x01, kMcrRts = 0x02, kMcrOut1 = 0x04, kMcrOut2 = 0x08, kMcrLoop = 0x10;
constexpr uint8_t kLsrDr = 0x01, kLsrOe = 0x02, kLsrThre = 0x20, kLsrTemt = 0x40;
constexpr uint8_t kMsrDcts = 0x01, kMsrDdsr = 0x02, kMsrTeri = 0x04, kMsrDdcd = 0x08;  // delta bits
constexpr uint8_t kMsrCts = 0x10, kMsrDsr = 0x20, kMsrRi = 0x40, kMsrDcd = 0x80;
}  // namespace

Serial16550::Serial16550(bus::IrqLine& irq, OutputSink output) : irq_(irq), output_(std::move(output)) {}

void Serial16550::set_space_callback(std::function<void()> cb) {
    std::lock_guard lock(mutex_);
    space_cb_ = std::move(cb);
}

size_t Serial16550::input_space() const {
    std::lock_guard lock(mutex_);
    return rx_.size() >= kFifoSize ? 0 : kFifoSize - rx_.size();
}

size_t Serial16550::enqueue_input(std::span<const uint8_t> bytes) {
    std::lock_guard lock(mutex_);
    if (mcr_ & kMcrLoop) return 0;  // in loopback the line is disconnected from the outside
    size_t n = 0;
    while (n < bytes.size() && rx_.size() < kFifoSize) receive(bytes[n++]);
    update_irq();
    return n;
}

void Serial16550::receive(uint8_t byte) {
    if (rx_.size() >= kFifoSize) {
        lsr_ |= kLsrOe;
        return;
    }
    rx_.push_back(byte);
    lsr_ |= kLsrDr;
}

void Serial16550::read(uint64_t offset, std::span<uint8_t> data) {
    std::function<void()> cb;
    {
        std::lock_guard lock(mutex_);
        size_t before = rx_.size();
        for (size_t i = 0; i < data.size(); ++i) data[i] = read_reg(static_cast<uint8_t>((offset + i) & 7));
        update_irq();
        if (rx_.size() < before) cb = space_cb_;  // the guest made room: let the input side refill
    }
    if (cb) cb();
}

void Serial16550::write(uint64_t offset, std::span<const uint8_t> data) {
    std::function<void()> cb;
    {
        std::lock_guard lock(mutex_);
        space_freed_ = false;
        for (size_t i = 0; i < data.size(); ++i) write_reg(static_cast<uint8_t>((offset + i) & 7), data[i]);
        update_irq();
        // An FCR receive clear or leaving loopback makes room: let the input side refill.
        if (space_freed_) cb = space_cb_;
    }
    if (cb) cb();
}

uint8_t Serial16550::read_reg(uint8_t reg) {
    switch (reg) {
        case kData: {
            if (lcr_ & kLcrDlab) return dll_;
            if (rx_.empty()) return 0;
            uint8_t b = rx_.front();
            rx_.pop_front();
            if (rx_.empty()) lsr_ &= ~kLsrDr;
            return b;
        }
        case kIer: return (lcr_ & kLcrDlab) ? dlm_ : ier_;
        case kIirFcr: {
            uint8_t iir = pending_iir();
            // Reading IIR while THRE is the reported source acknowledges it.
            if ((iir & 0x0f) == kIirThre) thre_pending_ = false;
            return iir | (fifo_enabled_ ? kIirFifoEnabled : 0);
        }
        case kLcr: return lcr_;
        case kMcr: return mcr_;
        case kLsr: {
            uint8_t v = lsr_;
            lsr_ &= ~kLsrOe;  // error bits clear on read
            return v;
        }
        case kMsr: {
            uint8_t v = msr_;
            msr_ &= 0xf0;  // delta bits clear on read
            return v;
        }
        case kScr: return scr_;
    }
    return 0xff;
}

void Serial16550::write_reg(uint8_t reg, uint8_t value) {
    switch (reg) {
        case kData:
            if (lcr_ & kLcrDlab) {
                dll_ = value;
                return;
            }
            if (mcr_ & kMcrLoop) {
                receive(value);
            } else if (output_) {
                output_({&value, 1});
            }
            // The byte leaves at once: the holding register is empty again.
            lsr_ |= kLsrThre | kLsrTemt;
            thre_pending_ = true;
            return;
        case kIer:
            if (lcr_ & kLcrDlab) {
                dlm_ = value;
                return;
            }
            // Enabling THRE while the holding register is empty raises it (as real 16550As do).
            if ((value & kIerThre) && !(ier_ & kIerThre)) thre_pending_ = true;
            ier_ = value & 0x0f;
            return;
        case kIirFcr:
            fifo_enabled_ = value & kFcrEnable;
            if (value & kFcrClearRx) {
                if (!rx_.empty()) space_freed_ = true;
                rx_.clear();
                lsr_ &= ~kLsrDr;
            }
            return;
        case kLcr: lcr_ = value; return;
        case kMcr: {
            uint8_t old_msr = msr_;
            // Leaving loopback reconnects the receiver, which refused input meanwhile.
            if ((mcr_ & kMcrLoop) && !(value & kMcrLoop)) space_freed_ = true;
            mcr_ = value & 0x1f;
            if (mcr_ & kMcrLoop) {
                // Loopback wires RTS->CTS, DTR->DSR, OUT1->RI, OUT2->DCD.
                msr_ = (msr_ & 0x0f) | ((mcr_ & kMcrRts) ? kMsrCts : 0) | ((mcr_ & kMcrDtr) ? kMsrDsr : 0) |
                       ((mcr_ & kMcrOut1) ? kMsrRi : 0) | ((mcr_ & kMcrOut2) ? kMsrDcd : 0);
            } else {
                msr_ = (msr_ & 0x0f) | kMsrCts | kMsrDsr | kMsrDcd;
            }
            // Delta bits (PC16550D, MSR bits 0-3): any change of CTS, DSR, DCD; for RI only
            // the trailing edge (the RI bit going from 1 to 0).
            uint8_t changed = old_msr ^ msr_;
            if (changed & kMsrCts) msr_ |= kMsrDcts;
            if (changed & kMsrDsr) msr_ |= kMsrDdsr;
            if ((old_msr & kMsrRi) && !(msr_ & kMsrRi)) msr_ |= kMsrTeri;
            if (changed & kMsrDcd) msr_ |= kMsrDdcd;
            return;
        }
        case kLsr: return;  // read-only (factory test register on real parts)
        case kMsr: return;
        case kScr: scr_ = value; return;
    }
}

uint8_t Serial16550::pending_iir() const {
    if ((ier_ & kIerRls) && (lsr_ & kLsrOe)) return kIirRls;
    if ((ier_ & kIerRda) && (lsr_ & kLsrDr)) return kIirRda;
    if ((ier_ & kIerThre) && thre_pending_) return kIirThre;
    if ((ier_ & kIerMs) && (msr_ & 0x0f)) return kIirMs;
    return kIirNone;
}

void Serial16550::update_irq() {
    bool level = pending_iir() != kIirNone;
    if (level != irq_level_) {
        irq_level_ = level;
        irq_.set_level(level);
    }
}

}  // namespace kvmkit::devices
