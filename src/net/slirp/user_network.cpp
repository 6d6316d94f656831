#include "net/slirp/user_network.hpp"

#include <arpa/inet.h>
#include <libslirp.h>
#include <poll.h>
#include <sys/epoll.h>
#include <sys/timerfd.h>
#include <time.h>

#include <algorithm>
#include <atomic>
#include <cstdlib>
#include <cstring>
#include <deque>
#include <list>
#include <mutex>
#include <unordered_map>

#include "base/log.hpp"
#include "base/unique_fd.hpp"

namespace kvmkit::net {

namespace {

int64_t monotonic_ns() {
    timespec ts{};
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return int64_t{ts.tv_sec} * 1'000'000'000 + ts.tv_nsec;
}

in_addr to_in_addr(uint32_t host_order) {
    return in_addr{htonl(host_order)};
}

// A libslirp timer: either the opaque kind (SlirpConfig version 4, handed back
// through slirp_handle_timer) or the older callback kind.
struct SlirpTimer {
    SlirpTimerId id = SLIRP_TIMER_RA;
    SlirpTimerCb cb = nullptr;
    void* cb_opaque = nullptr;
    int64_t expire_ms = -1;  // on the libslirp clock (monotonic ms); -1: not armed
};

}  // namespace

struct UserNetwork::State {
    State(event::EventLoop& l, UserNetworkOptions o, Deliver d)
        : loop(l), options(std::move(o)), deliver(std::move(d)) {}

    event::EventLoop& loop;
    const UserNetworkOptions options;
    const UserNetAddresses addrs{};
    const Deliver deliver;

    std::mutex flush_mutex;    // serialises deliveries (keeps frame order); see the header's lock order
    mutable std::mutex mutex;  // guards everything below, and every libslirp call
    Slirp* slirp = nullptr;
    bool closed = false;
    // libslirp keeps a pointer to the outbound address: it lives as long as the stack.
    sockaddr_in outbound{};

    base::UniqueFd epoll;                          // libslirp's sockets, for the event loop to watch as one fd
    base::UniqueFd timer;                          // timerfd: libslirp timers and its TCP fast/slow timeouts
    std::vector<pollfd> pollfds;                   // from the last slirp_pollfds_fill
    std::unordered_map<int, uint32_t> registered;  // fd -> epoll events in `epoll`
    std::list<SlirpTimer> timers;
    bool paused = false;  // host sockets not watched: the guest's queue is too long

    std::deque<std::vector<uint8_t>> rx_queue;
    size_t rx_queue_bytes = 0;

    std::atomic<bool> flush_posted{false};
    base::RateLimiter warn{10};

    std::atomic<uint64_t> tx_frames{0}, tx_bytes{0}, tx_dropped_policy{0};
    std::atomic<uint64_t> rx_frames{0}, rx_bytes{0}, rx_dropped_full{0}, rx_pauses{0};

    // --- with `mutex` held -------------------------------------------------

    // Asks libslirp which sockets it wants watched and for how long it may
    // sleep, and mirrors that into `epoll` and `timer`.
    void refill() {
        uint32_t timeout_ms = UINT32_MAX;
        pollfds.clear();
        slirp_pollfds_fill(slirp, &timeout_ms, &State::add_poll, this);
        sync_epoll();
        arm_timer(timeout_ms);
    }

    void sync_epoll() {
        std::unordered_map<int, uint32_t> want;
        for (const auto& p : pollfds) {
            uint32_t ev = 0;
            if (p.events & POLLIN) ev |= EPOLLIN;
            if (p.events & POLLOUT) ev |= EPOLLOUT;
            if (p.events & POLLPRI) ev |= EPOLLPRI;
            want[p.fd] |= ev;
        }
        for (auto it = registered.begin(); it != registered.end();) {
            if (want.count(it->first)) {
                ++it;
                continue;
            }
            (void)epoll_ctl(epoll.get(), EPOLL_CTL_DEL, it->first, nullptr);  // may already be closed
            it = registered.erase(it);
        }
        for (const auto& [fd, ev] : want) {
            auto it = registered.find(fd);
            if (it != registered.end() && it->second == ev) continue;
            epoll_event e{};
            e.events = ev;
            e.data.fd = fd;
            int op = it == registered.end() ? EPOLL_CTL_ADD : EPOLL_CTL_MOD;
            int r = epoll_ctl(epoll.get(), op, fd, &e);
            // The fd number may have been closed and reused behind our back.
            if (r < 0 && errno == EEXIST) r = epoll_ctl(epoll.get(), EPOLL_CTL_MOD, fd, &e);
            if (r < 0 && errno == ENOENT) r = epoll_ctl(epoll.get(), EPOLL_CTL_ADD, fd, &e);
            if (r < 0) {
                if (warn.allow()) LOG_WARN("%s: epoll_ctl(fd %d): %s", options.name.c_str(), fd, strerror(errno));
                registered.erase(fd);
                continue;
            }
            registered[fd] = ev;
        }
    }

    void forget_fd(int fd) {
        if (registered.erase(fd)) (void)epoll_ctl(epoll.get(), EPOLL_CTL_DEL, fd, nullptr);
    }

    void arm_timer(uint32_t timeout_ms) {
        int64_t deadline_ms = -1;
        int64_t now_ms = monotonic_ns() / 1'000'000;
        if (timeout_ms != UINT32_MAX) deadline_ms = now_ms + timeout_ms;
        for (const auto& t : timers)
            if (t.expire_ms >= 0 && (deadline_ms < 0 || t.expire_ms < deadline_ms)) deadline_ms = t.expire_ms;
        itimerspec its{};
        if (deadline_ms >= 0) {
            int64_t ns = std::max<int64_t>(deadline_ms * 1'000'000, 1);  // 0 would disarm
            its.it_value.tv_sec = ns / 1'000'000'000;
            its.it_value.tv_nsec = ns % 1'000'000'000;
        }
        (void)timerfd_settime(timer.get(), TFD_TIMER_ABSTIME, &its, nullptr);
    }

    // Lets libslirp act on its sockets (unless paused) and its TCP timers.
    void poll_round() {
        int error = 0;
        if (paused) {
            for (auto& p : pollfds) p.revents = 0;
        } else if (!pollfds.empty()) {
            int n = ::poll(pollfds.data(), pollfds.size(), 0);
            if (n < 0) {
                error = 1;
                for (auto& p : pollfds) p.revents = 0;
            }
        }
        slirp_pollfds_poll(slirp, error, &State::get_revents, this);
    }

    void run_due_timers() {
        int64_t now_ms = monotonic_ns() / 1'000'000;
        std::vector<SlirpTimer*> due;
        for (auto& t : timers)
            if (t.expire_ms >= 0 && t.expire_ms <= now_ms) due.push_back(&t);
        for (SlirpTimer* t : due) {
            // A callback may free other timers: fire only those still listed.
            bool alive = false;
            for (auto& u : timers) alive |= &u == t;
            if (!alive || t->expire_ms < 0) continue;
            t->expire_ms = -1;
            if (t->cb)
                t->cb(t->cb_opaque);
            else
                slirp_handle_timer(slirp, t->id, t->cb_opaque);
        }
    }

    // Decides whether the host sockets should be watched, after the queue changed.
    void update_pause() {
        bool want_pause = rx_queue.size() >= options.rx_pause_frames;
        bool want_resume = rx_queue.size() <= options.rx_pause_frames / 4;
        if (!paused && want_pause) {
            paused = true;
            ++rx_pauses;
            (void)loop.remove(epoll.get());
        } else if (paused && want_resume) {
            paused = false;
            add_epoll_to_loop();
        }
    }

    void add_epoll_to_loop();

    // --- libslirp callbacks (always inside a libslirp call, `mutex` held) --

    static State* self(void* opaque) { return static_cast<State*>(opaque); }

    static int add_poll(int fd, int events, void* opaque) {
        auto* s = self(opaque);
        short ev = 0;
        if (events & SLIRP_POLL_IN) ev |= POLLIN;
        if (events & SLIRP_POLL_OUT) ev |= POLLOUT;
        if (events & SLIRP_POLL_PRI) ev |= POLLPRI;
        s->pollfds.push_back(pollfd{fd, ev, 0});
        return static_cast<int>(s->pollfds.size() - 1);
    }

    static int get_revents(int idx, void* opaque) {
        auto* s = self(opaque);
        if (idx < 0 || static_cast<size_t>(idx) >= s->pollfds.size()) return 0;
        short r = s->pollfds[idx].revents;
        int out = 0;
        if (r & POLLIN) out |= SLIRP_POLL_IN;
        if (r & POLLOUT) out |= SLIRP_POLL_OUT;
        if (r & POLLPRI) out |= SLIRP_POLL_PRI;
        if (r & POLLERR) out |= SLIRP_POLL_ERR;
        if (r & POLLHUP) out |= SLIRP_POLL_HUP;
        return out;
    }

    static ssize_t send_packet(const void* buf, size_t len, void* opaque) {
        auto* s = self(opaque);
        if (s->rx_queue.size() >= s->options.rx_queue_frames || s->rx_queue_bytes + len > s->options.rx_queue_bytes) {
            ++s->rx_dropped_full;  // as a NIC without buffers; TCP retransmits
            return static_cast<ssize_t>(len);
        }
        auto* p = static_cast<const uint8_t*>(buf);
        s->rx_queue.emplace_back(p, p + len);
        s->rx_queue_bytes += len;
        return static_cast<ssize_t>(len);
    }

    static void guest_error(const char* msg, void* opaque) {
        auto* s = self(opaque);
        if (s->warn.allow()) LOG_WARN("%s: guest error (libslirp): %s", s->options.name.c_str(), msg);
    }

    static int64_t clock_get_ns(void*) { return monotonic_ns(); }

    static void* timer_new(SlirpTimerCb cb, void* cb_opaque, void* opaque) {
        auto& t = self(opaque)->timers.emplace_back();
        t.cb = cb;
        t.cb_opaque = cb_opaque;
        return &t;
    }

    static void* timer_new_opaque(SlirpTimerId id, void* cb_opaque, void* opaque) {
        auto& t = self(opaque)->timers.emplace_back();
        t.id = id;
        t.cb_opaque = cb_opaque;
        return &t;
    }

    static void timer_free(void* timer, void* opaque) {
        self(opaque)->timers.remove_if([timer](const SlirpTimer& t) { return &t == timer; });
    }

    // The deadline takes effect at the refill that ends every libslirp call.
    static void timer_mod(void* timer, int64_t expire_ms, void*) {
        static_cast<SlirpTimer*>(timer)->expire_ms = expire_ms;
    }

    // A socket appeared or goes away: whatever we knew about its fd number is stale.
    static void register_poll_fd(int fd, void* opaque) { self(opaque)->forget_fd(fd); }
    static void unregister_poll_fd(int fd, void* opaque) { self(opaque)->forget_fd(fd); }

    // libslirp can take more data now: the refill after the current call sees it.
    static void notify(void*) {}

    // --- without `mutex` ---------------------------------------------------

    // Hands queued frames to the guest, in order, until it has no room.
    void flush() {
        std::lock_guard flock(flush_mutex);
        flush_posted = false;
        for (;;) {
            std::vector<uint8_t> frame;
            {
                std::lock_guard lock(mutex);
                if (closed || rx_queue.empty()) break;
                frame = std::move(rx_queue.front());
                rx_queue.pop_front();
                rx_queue_bytes -= frame.size();
            }
            if (!deliver(frame)) {
                std::lock_guard lock(mutex);
                rx_queue_bytes += frame.size();
                rx_queue.push_front(std::move(frame));
                break;
            }
            ++rx_frames;
            rx_bytes += frame.size();
        }
        std::lock_guard lock(mutex);
        if (!closed) update_pause();
    }

    void post_flush(const std::shared_ptr<State>& self_ptr) {
        if (flush_posted.exchange(true)) return;
        std::weak_ptr<State> weak = self_ptr;
        loop.post([weak] {
            if (auto s = weak.lock()) s->flush();
        });
    }

    // An event loop callback: libslirp work, then deliveries.
    template <typename Work>
    void on_loop(Work&& work) {
        bool have_frames;
        {
            std::lock_guard lock(mutex);
            if (closed) return;
            work();
            refill();
            update_pause();
            have_frames = !rx_queue.empty();
        }
        if (have_frames) flush();
    }

    std::weak_ptr<State> weak_self;
};

void UserNetwork::State::add_epoll_to_loop() {
    std::weak_ptr<State> weak = weak_self;
    auto r = loop.add(epoll.get(), [weak](uint32_t) {
        if (auto s = weak.lock())
            s->on_loop([&] {
                if (!s->paused) s->poll_round();
            });
    });
    if (!r && warn.allow())
        LOG_WARN("%s: cannot watch libslirp's sockets: %s", options.name.c_str(), r.error().message().c_str());
}

base::Result<std::unique_ptr<UserNetwork>> UserNetwork::create(event::EventLoop& loop, UserNetworkOptions options,
                                                               Deliver deliver) {
    auto s = std::make_shared<State>(loop, std::move(options), std::move(deliver));
    s->weak_self = s;
    const auto& name = s->options.name;
    for (const auto& f : s->options.forwards) TRY_CTX(validate_host_forward(f, s->addrs), "hostfwd " + f.to_string());

    int ep = epoll_create1(EPOLL_CLOEXEC);
    if (ep < 0) return base::fail_errno(name + ": epoll_create1");
    s->epoll.reset(ep);
    int tfd = timerfd_create(CLOCK_MONOTONIC, TFD_NONBLOCK | TFD_CLOEXEC);
    if (tfd < 0) return base::fail_errno(name + ": timerfd_create");
    s->timer.reset(tfd);

    s->outbound.sin_family = AF_INET;
    s->outbound.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    s->outbound.sin_port = 0;

    SlirpConfig cfg{};
    cfg.version = 4;
    cfg.restricted = 0;  // restricted mode would also cut off 10.0.2.2 -> 127.0.0.1; see user_net_policy.hpp
    cfg.in_enabled = true;
    cfg.vnetwork = to_in_addr(s->addrs.network);
    cfg.vnetmask = to_in_addr(s->addrs.netmask);
    cfg.vhost = to_in_addr(s->addrs.gateway);
    cfg.in6_enabled = false;
    cfg.vdhcp_start = to_in_addr(s->addrs.dhcp_start);
    cfg.vnameserver = to_in_addr(s->addrs.dns);
    cfg.disable_host_loopback = false;
    cfg.enable_emu = false;
    cfg.outbound_addr = &s->outbound;
    cfg.outbound_addr6 = nullptr;
    cfg.disable_dns = true;
    cfg.disable_dhcp = false;

    static const SlirpCb callbacks = {
        .send_packet = &State::send_packet,
        .guest_error = &State::guest_error,
        .clock_get_ns = &State::clock_get_ns,
        .timer_new = &State::timer_new,
        .timer_free = &State::timer_free,
        .timer_mod = &State::timer_mod,
        .register_poll_fd = &State::register_poll_fd,
        .unregister_poll_fd = &State::unregister_poll_fd,
        .notify = &State::notify,
        .init_completed = nullptr,
        .timer_new_opaque = &State::timer_new_opaque,
    };

    {
        std::lock_guard lock(s->mutex);
        s->slirp = slirp_new(&cfg, &callbacks, s.get());
        if (!s->slirp) return base::fail(name + ": libslirp: slirp_new failed");
        for (const auto& f : s->options.forwards) {
            char buf[16];
            errno = 0;
            if (slirp_add_hostfwd(s->slirp, f.udp, to_in_addr(f.host_addr), f.host_port, to_in_addr(f.guest_addr),
                                  f.guest_port) < 0) {
                int err = errno ? errno : EINVAL;
                slirp_cleanup(s->slirp);
                s->slirp = nullptr;
                return base::fail(name + ": hostfwd " + f.to_string() + ": cannot listen on " +
                                  format_ipv4(f.host_addr, buf) + ":" + std::to_string(f.host_port) + ": " +
                                  strerror(err));
            }
        }
        s->refill();
    }

    // From here on the destructor cleans up, also when a step below fails.
    std::unique_ptr<UserNetwork> net(new UserNetwork(s));
    std::weak_ptr<State> weak = s;
    s->add_epoll_to_loop();
    TRY(loop.add(s->timer.get(), [weak](uint32_t) {
        auto st = weak.lock();
        if (!st) return;
        uint64_t expirations;
        (void)!::read(st->timer.get(), &expirations, sizeof expirations);
        st->on_loop([&] {
            st->run_due_timers();
            st->poll_round();
        });
    }));
    LOG_INFO("%s: user network 10.0.2.0/24 (libslirp %s), guest 10.0.2.15, host loopback at 10.0.2.2, %zu forward(s)",
             name.c_str(), slirp_version_string(), s->options.forwards.size());
    return net;
}

UserNetwork::~UserNetwork() {
    if (!s_) return;
    (void)s_->loop.remove(s_->timer.get());
    {
        std::lock_guard lock(s_->mutex);
        if (!s_->paused) (void)s_->loop.remove(s_->epoll.get());
    }
    // Waits for a delivery in progress, so `deliver` is never called after this.
    std::lock_guard flock(s_->flush_mutex);
    std::lock_guard lock(s_->mutex);
    if (s_->slirp) slirp_cleanup(s_->slirp);
    s_->slirp = nullptr;
    s_->closed = true;
    s_->rx_queue.clear();
}

void UserNetwork::send(std::span<const uint8_t> frame) {
    auto verdict = classify_guest_frame(frame, s_->addrs);
    if (verdict != GuestFrameVerdict::Pass) {
        ++s_->tx_dropped_policy;
        LOG_DEBUG("%s: dropped a frame from the guest: %s", s_->options.name.c_str(), to_string(verdict));
        return;
    }
    bool have_frames;
    {
        std::lock_guard lock(s_->mutex);
        if (s_->closed) return;
        ++s_->tx_frames;
        s_->tx_bytes += frame.size();
        slirp_input(s_->slirp, frame.data(), static_cast<int>(frame.size()));
        s_->refill();
        s_->update_pause();
        have_frames = !s_->rx_queue.empty();
    }
    // Not delivered here: the caller may hold a lock that deliver() takes.
    if (have_frames) s_->post_flush(s_);
}

void UserNetwork::rx_ready() {
    s_->post_flush(s_);
}

UserNetworkStats UserNetwork::stats() const {
    UserNetworkStats st;
    st.tx_frames = s_->tx_frames;
    st.tx_bytes = s_->tx_bytes;
    st.tx_dropped_policy = s_->tx_dropped_policy;
    st.rx_frames = s_->rx_frames;
    st.rx_bytes = s_->rx_bytes;
    st.rx_dropped_full = s_->rx_dropped_full;
    st.rx_pauses = s_->rx_pauses;
    std::lock_guard lock(s_->mutex);
    st.rx_queued = s_->rx_queue.size();
    return st;
}

const UserNetAddresses& UserNetwork::addresses() const {
    return s_->addrs;
}

std::string UserNetwork::connection_info() const {
    std::lock_guard lock(s_->mutex);
    if (!s_->slirp) return {};
    char* info = slirp_connection_info(s_->slirp);
    std::string out = info ? info : "";
    free(info);  // g_free; glib allocates with malloc
    return out;
}

}  // namespace kvmkit::net
