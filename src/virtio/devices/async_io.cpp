#include "virtio/devices/async_io.hpp"

#include <liburing.h>
#include <sys/eventfd.h>
#include <unistd.h>

namespace kvmkit::virtio {

base::Result<std::unique_ptr<AsyncIo>> AsyncIo::create(unsigned depth) {
    std::unique_ptr<AsyncIo> a(new AsyncIo());
    a->ring_ = std::make_unique<io_uring>();
    int r = io_uring_queue_init(depth, a->ring_.get(), 0);
    if (r < 0) {
        a->ring_.reset();
        return base::fail_errno("io_uring_queue_init", -r);
    }
    a->event_fd_ = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
    if (a->event_fd_ < 0) return base::fail_errno("eventfd");
    r = io_uring_register_eventfd(a->ring_.get(), a->event_fd_);
    if (r < 0) return base::fail_errno("io_uring_register_eventfd", -r);
    return a;
}

AsyncIo::~AsyncIo() {
    if (ring_) io_uring_queue_exit(ring_.get());
    if (event_fd_ >= 0) close(event_fd_);
}

bool AsyncIo::readv(int fd, const iovec* iov, unsigned n, uint64_t offset, uint64_t user_data) {
    io_uring_sqe* sqe = io_uring_get_sqe(ring_.get());
    if (!sqe) return false;
    io_uring_prep_readv(sqe, fd, iov, n, offset);
    io_uring_sqe_set_data64(sqe, user_data);
    return true;
}

bool AsyncIo::writev(int fd, const iovec* iov, unsigned n, uint64_t offset, uint64_t user_data) {
    io_uring_sqe* sqe = io_uring_get_sqe(ring_.get());
    if (!sqe) return false;
    io_uring_prep_writev(sqe, fd, iov, n, offset);
    io_uring_sqe_set_data64(sqe, user_data);
    return true;
}

bool AsyncIo::fdatasync(int fd, uint64_t user_data) {
    io_uring_sqe* sqe = io_uring_get_sqe(ring_.get());
    if (!sqe) return false;
    io_uring_prep_fsync(sqe, fd, IORING_FSYNC_DATASYNC);
    io_uring_sqe_set_data64(sqe, user_data);
    return true;
}

void AsyncIo::submit() { io_uring_submit(ring_.get()); }

unsigned AsyncIo::reap(const std::function<void(uint64_t, int32_t)>& done, bool wait) {
    uint64_t drained;
    (void)!::read(event_fd_, &drained, sizeof drained);
    unsigned n = 0;
    io_uring_cqe* cqe = nullptr;
    if (wait && io_uring_wait_cqe(ring_.get(), &cqe) == 0 && cqe) {
        done(io_uring_cqe_get_data64(cqe), cqe->res);
        io_uring_cqe_seen(ring_.get(), cqe);
        ++n;
    }
    while (io_uring_peek_cqe(ring_.get(), &cqe) == 0 && cqe) {
        done(io_uring_cqe_get_data64(cqe), cqe->res);
        io_uring_cqe_seen(ring_.get(), cqe);
        ++n;
    }
    return n;
}

}  // namespace kvmkit::virtio
