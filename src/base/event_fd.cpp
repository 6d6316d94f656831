#include "base/event_fd.hpp"

#include <sys/eventfd.h>
#include <unistd.h>

namespace kvmkit::base {

Result<EventFd> EventFd::create(unsigned flags) {
    int fd = ::eventfd(0, EFD_CLOEXEC | flags);
    if (fd < 0) return fail_errno("eventfd");
    return EventFd(UniqueFd(fd));
}

Result<void> EventFd::write(uint64_t value) const {
    if (::write(fd_.get(), &value, sizeof value) != sizeof value) return fail_errno("eventfd write");
    return ok();
}

Result<uint64_t> EventFd::read() const {
    uint64_t v = 0;
    if (::read(fd_.get(), &v, sizeof v) != sizeof v) return fail_errno("eventfd read");
    return v;
}

}  // namespace kvmkit::base
