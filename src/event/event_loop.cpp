#include "event/event_loop.hpp"

#include <sys/epoll.h>
#include <sys/eventfd.h>

#include <cstring>

#include "base/log.hpp"

namespace kvmkit::event {

base::Result<std::unique_ptr<EventLoop>> EventLoop::create() {
    int ep = epoll_create1(EPOLL_CLOEXEC);
    if (ep < 0) return base::fail_errno("epoll_create1");
    auto wake = TRY(base::EventFd::create(EFD_NONBLOCK));
    std::unique_ptr<EventLoop> loop(new EventLoop(base::UniqueFd(ep), std::move(wake)));
    epoll_event ev{};
    ev.events = EPOLLIN;
    ev.data.fd = loop->wake_.fd();
    if (epoll_ctl(ep, EPOLL_CTL_ADD, loop->wake_.fd(), &ev) < 0) return base::fail_errno("epoll_ctl(wake)");
    return loop;
}

EventLoop::~EventLoop() { stop(); }

base::Result<void> EventLoop::add(int fd, Callback cb, uint32_t events) {
    std::lock_guard lock(mutex_);
    epoll_event ev{};
    ev.events = events;
    ev.data.fd = fd;
    if (epoll_ctl(epoll_.get(), EPOLL_CTL_ADD, fd, &ev) < 0) return base::fail_errno("epoll_ctl(add)");
    callbacks_[fd] = std::make_shared<Callback>(std::move(cb));
    return base::ok();
}

base::Result<void> EventLoop::remove(int fd) {
    std::lock_guard lock(mutex_);
    callbacks_.erase(fd);
    if (epoll_ctl(epoll_.get(), EPOLL_CTL_DEL, fd, nullptr) < 0) return base::fail_errno("epoll_ctl(del)");
    return base::ok();
}

void EventLoop::post(std::function<void()> fn) {
    {
        std::lock_guard lock(mutex_);
        posted_.push_back(std::move(fn));
    }
    (void)wake_.write(1);
}

void EventLoop::start() {
    thread_ = std::thread([this] {
        thread_id_ = std::this_thread::get_id();
        run();
    });
}

void EventLoop::stop() {
    stop_ = true;
    (void)wake_.write(1);
    if (thread_.joinable()) thread_.join();
}

void EventLoop::run() {
    epoll_event events[32];
    while (!stop_) {
        int n = epoll_wait(epoll_.get(), events, 32, -1);
        if (n < 0) {
            if (errno == EINTR) continue;
            LOG_ERROR("event loop: epoll_wait: %s", strerror(errno));
            return;
        }
        for (int i = 0; i < n && !stop_; ++i) {
            int fd = events[i].data.fd;
            if (fd == wake_.fd()) {
                (void)wake_.read();
                std::vector<std::function<void()>> posted;
                {
                    std::lock_guard lock(mutex_);
                    posted.swap(posted_);
                }
                for (auto& fn : posted) fn();
                continue;
            }
            std::shared_ptr<Callback> cb;
            {
                std::lock_guard lock(mutex_);
                auto it = callbacks_.find(fd);
                if (it != callbacks_.end()) cb = it->second;
            }
            if (cb) (*cb)(events[i].events);
        }
    }
}

}  // namespace kvmkit::event
