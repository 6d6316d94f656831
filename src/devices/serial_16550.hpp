// A 16550A UART as seen through its eight I/O registers (TI PC16550D
// datasheet): divisor latch, FIFOs (16-byte receive FIFO; transmit is
// immediate), interrupt identification with the datasheet's priorities,
// loopback mode and the modem status lines.
// Left out: baud-rate timing, parity/framing errors, the character timeout
// interrupt (received data raises "data available" at once).
// The model is pure: bytes out go to an injected sink, the interrupt to an
// injected IrqLine, bytes in come through enqueue_input().
#pragma once

#include <cstdint>
#include <deque>
#include <functional>
#include <mutex>
#include <span>

#include "base/input_port.hpp"
#include "bus/bus.hpp"

namespace kvmkit::devices {

class Serial16550 : public bus::BusDevice, public base::InputPort {
public:
    using OutputSink = std::function<void(std::span<const uint8_t>)>;
    static constexpr size_t kFifoSize = 16;

    Serial16550(bus::IrqLine& irq, OutputSink output);

    const char* name() const override { return "serial-16550a"; }
    void read(uint64_t offset, std::span<uint8_t> data) override;
    void write(uint64_t offset, std::span<const uint8_t> data) override;

    // Queues bytes from the host side; returns how many fit in the FIFO.
    size_t enqueue_input(std::span<const uint8_t> bytes);
    size_t input_space() const;
    // Called (from the guest's vCPU thread, outside the lock) whenever the guest frees FIFO
    // space: an RBR read, a receive-FIFO clear through FCR, or leaving loopback mode.
    void set_space_callback(std::function<void()> cb) override;
    size_t accept_input(std::span<const uint8_t> bytes) override { return enqueue_input(bytes); }

private:
    uint8_t read_reg(uint8_t reg);
    void write_reg(uint8_t reg, uint8_t value);
    uint8_t pending_iir() const;
    void update_irq();
    void receive(uint8_t byte);  // locked

    bus::IrqLine& irq_;
    OutputSink output_;
    std::function<void()> space_cb_;
    mutable std::mutex mutex_;  // guards all register state; taken by vCPU threads and the input thread

    std::deque<uint8_t> rx_;
    uint8_t ier_ = 0, lcr_ = 0x03, mcr_ = 0x08, lsr_ = 0x60, msr_ = 0xb0, scr_ = 0;
    uint8_t dll_ = 0x0c, dlm_ = 0;  // 9600 baud
    bool fifo_enabled_ = false;
    bool thre_pending_ = false;  // THR-empty interrupt armed (cleared by reading IIR)
    bool irq_level_ = false;
    bool space_freed_ = false;  // set by write_reg when the receiver gains room (FCR clear, loopback off)
};

}  // namespace kvmkit::devices
