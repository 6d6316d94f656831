// EventFd: a Linux eventfd, used to wake threads and to tie devices to
// KVM's ioeventfd/irqfd.
#pragma once

#include <cstdint>

#include "base/result.hpp"
#include "base/unique_fd.hpp"

namespace kvmkit::base {

class EventFd {
public:
    static Result<EventFd> create(unsigned flags = 0);
    int fd() const { return fd_.get(); }
    Result<void> write(uint64_t value = 1) const;
    Result<uint64_t> read() const;

private:
    explicit EventFd(UniqueFd fd) : fd_(std::move(fd)) {}
    UniqueFd fd_;
};

}  // namespace kvmkit::base
