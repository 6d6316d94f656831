// InputPort: where a console's keystrokes go (a UART's receive FIFO, a
// virtio-console receive queue). accept() takes what fits now; the port calls
// the space callback when it can take more, so nothing typed is dropped.
#pragma once

#include <cstddef>
#include <cstdint>
#include <functional>
#include <span>

namespace kvmkit::base {

class InputPort {
public:
    virtual ~InputPort() = default;
    virtual size_t accept_input(std::span<const uint8_t> bytes) = 0;
    virtual void set_space_callback(std::function<void()> cb) = 0;
};

}  // namespace kvmkit::base
