// AsyncIo: a small io_uring wrapper (liburing) for block back-ends: queue
// vectored reads, writes and data syncs, submit them in one system call, and
// reap completions when the ring's eventfd fires on the device event loop.
#pragma once

#include <sys/uio.h>

#include <cstdint>
#include <functional>
#include <memory>

#include "base/result.hpp"

struct io_uring;

namespace kvmkit::virtio {

class AsyncIo {
public:
    // Fails where io_uring is unavailable (old kernel, seccomp, disabled by sysctl).
    static base::Result<std::unique_ptr<AsyncIo>> create(unsigned depth);
    ~AsyncIo();

    // Queue one operation; false when the submission ring is full.
    bool readv(int fd, const iovec* iov, unsigned n, uint64_t offset, uint64_t user_data);
    bool writev(int fd, const iovec* iov, unsigned n, uint64_t offset, uint64_t user_data);
    bool fdatasync(int fd, uint64_t user_data);
    // Hands queued operations to the kernel.
    void submit();

    // Signalled when completions are ready (watch it on the event loop).
    int event_fd() const { return event_fd_; }
    // Calls `done(user_data, result)` for every completion ready now; with
    // `wait`, blocks for at least one.
    unsigned reap(const std::function<void(uint64_t, int32_t)>& done, bool wait = false);

private:
    AsyncIo() = default;
    std::unique_ptr<io_uring> ring_;
    int event_fd_ = -1;
};

}  // namespace kvmkit::virtio
