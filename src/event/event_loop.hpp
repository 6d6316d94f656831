// EventLoop: one epoll thread that runs callbacks when file descriptors
// become ready. Device back-ends (queue notifications through ioeventfd,
// io_uring completions, host sockets) live here, off the vCPU threads.
#pragma once

#include <atomic>
#include <vector>
#include <functional>
#include <memory>
#include <mutex>
#include <thread>
#include <unordered_map>

#include "base/event_fd.hpp"
#include "base/result.hpp"
#include "base/unique_fd.hpp"

namespace kvmkit::event {

class EventLoop {
public:
    using Callback = std::function<void(uint32_t events)>;

    static base::Result<std::unique_ptr<EventLoop>> create();
    ~EventLoop();

    // Watches `fd` (EPOLLIN by default); the callback runs on the loop thread.
    base::Result<void> add(int fd, Callback cb, uint32_t events = 0x001 /* EPOLLIN */);
    base::Result<void> remove(int fd);
    // Runs `fn` on the loop thread soon (thread-safe).
    void post(std::function<void()> fn);

    void start();  // spawns the loop thread
    void stop();   // stops and joins it; idempotent
    bool on_loop_thread() const { return std::this_thread::get_id() == thread_id_; }

private:
    EventLoop(base::UniqueFd epoll, base::EventFd wake) : epoll_(std::move(epoll)), wake_(std::move(wake)) {}
    void run();

    base::UniqueFd epoll_;
    base::EventFd wake_;
    std::thread thread_;
    std::atomic<std::thread::id> thread_id_{};
    std::atomic<bool> stop_{false};
    std::mutex mutex_;  // guards callbacks_ and posted_
    std::unordered_map<int, std::shared_ptr<Callback>> callbacks_;
    std::vector<std::function<void()>> posted_;
};

}  // namespace kvmkit::event
