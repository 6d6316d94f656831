#include "net/slirp_backend.hpp"

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

// A forward's guest address: empty (libslirp's DHCP address) or one of the
// user network's guest addresses.
base::Result<uint32_t> forward_guest_addr(const HostForward& f, const UserNetAddresses& addrs) {
    if (f.guest_addr.empty()) return addrs.dhcp_start;
    in_addr a{};
    if (inet_pton(AF_INET, f.guest_addr.c_str(), &a) != 1)
        return base::fail("guest address '" + f.guest_addr + "' is not an IPv4 address");
    uint32_t g = ntohl(a.s_addr), host_part = g & ~addrs.netmask;
    if ((g & addrs.netmask) != addrs.network || host_part == 0 || host_part == ~addrs.netmask || g == addrs.gateway ||
        g == addrs.dns)
        return base::fail("guest address " + f.guest_addr + " is not a guest address of the user network 10.0.2.0/24");
    return g;
}

base::Result<uint32_t> forward_host_addr(const HostForward& f) {
    in_addr a{};
    if (inet_pton(AF_INET, f.host_addr.c_str(), &a) != 1)
        return base::fail("host address '" + f.host_addr + "' is not an IPv4 address");
    uint32_t h = ntohl(a.s_addr);
    if ((h >> 24) != 127)
        return base::fail("host address " + f.host_addr + " is not loopback (forwards listen on 127.0.0.0/8 only)");
    return h;
}

}  // namespace

struct SlirpBackend::State {
    explicit State(SlirpBackendOptions o) : options(std::move(o)) {}

    const SlirpBackendOptions options;
    const UserNetAddresses addrs{};

    mutable std::mutex mutex;  // guards everything below, and every libslirp call
    Slirp* slirp = nullptr;
    // libslirp keeps this pointer (SlirpConfig.outbound_addr): it lives as long as the stack.
    sockaddr_in outbound{};
    event::EventLoop* loop = nullptr;  // set while attached
    BackendClient* client = nullptr;
    bool rx_enabled = false;
    bool paused = false;         // host sockets not watched: the guest's queue is too long
    bool epoll_on_loop = false;  // `epoll` registered on the loop

    base::UniqueFd epoll;                          // libslirp's sockets, for the event loop to watch as one fd
    base::UniqueFd timer;                          // timerfd: libslirp timers and its TCP fast/slow timeouts
    std::vector<pollfd> pollfds;                   // from the last slirp_pollfds_fill
    std::unordered_map<int, uint32_t> registered;  // fd -> epoll events in `epoll`
    std::list<SlirpTimer> timers;
    std::vector<uint8_t> tx_buffer;  // a guest frame gathered for slirp_input

    std::deque<std::vector<uint8_t>> rx_queue;
    size_t rx_queue_bytes = 0;

    std::atomic<bool> rx_ready_posted{false};
    base::RateLimiter warn{10};
    std::weak_ptr<State> weak_self;

    std::atomic<uint64_t> tx_frames{0}, tx_bytes{0}, tx_dropped{0}, tx_dropped_policy{0};
    std::atomic<uint64_t> rx_frames{0}, rx_bytes{0}, rx_dropped{0}, rx_dropped_full{0}, rx_pauses{0};

    // --- with `mutex` held -------------------------------------------------

    // Asks libslirp which sockets it wants watched and how long it may sleep,
    // and mirrors that into `epoll` and `timer`. Ends every libslirp call.
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
            int r = epoll_ctl(epoll.get(), it == registered.end() ? EPOLL_CTL_ADD : EPOLL_CTL_MOD, fd, &e);
            // The fd number may have been closed and reused behind our back.
            if (r < 0 && errno == EEXIST) r = epoll_ctl(epoll.get(), EPOLL_CTL_MOD, fd, &e);
            if (r < 0 && errno == ENOENT) r = epoll_ctl(epoll.get(), EPOLL_CTL_ADD, fd, &e);
            if (r < 0) {
                if (warn.allow()) LOG_WARN("net user: epoll_ctl(fd %d): %s", fd, strerror(errno));
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
        if (timeout_ms != UINT32_MAX) deadline_ms = monotonic_ns() / 1'000'000 + timeout_ms;
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

    // Lets libslirp act on its ready sockets (none while paused) and its TCP timers.
    void poll_round() {
        int error = 0;
        for (auto& p : pollfds) p.revents = 0;
        if (!paused && !pollfds.empty() && ::poll(pollfds.data(), pollfds.size(), 0) < 0) {
            error = 1;
            for (auto& p : pollfds) p.revents = 0;
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
            if (std::none_of(timers.begin(), timers.end(), [t](const SlirpTimer& u) { return &u == t; })) continue;
            if (t->expire_ms < 0) continue;
            t->expire_ms = -1;
            if (t->cb)
                t->cb(t->cb_opaque);
            else
                slirp_handle_timer(slirp, t->id, t->cb_opaque);
        }
    }

    // Watches the host sockets or not, after the queue changed.
    void update_pause() {
        if (!paused && rx_queue.size() >= options.rx_pause_frames) {
            paused = true;
            ++rx_pauses;
        } else if (paused && rx_queue.size() <= options.rx_pause_frames / 4) {
            paused = false;
        }
        bool want_on_loop = loop && !paused;
        if (want_on_loop == epoll_on_loop) return;
        if (want_on_loop) {
            std::weak_ptr<State> weak = weak_self;
            auto r = loop->add(epoll.get(), [weak](uint32_t) {
                if (auto s = weak.lock()) s->on_loop([&] { s->poll_round(); });
            });
            if (!r) {
                if (warn.allow())
                    LOG_WARN("net user: cannot watch libslirp's sockets: %s", r.error().message().c_str());
                return;
            }
        } else {
            (void)loop->remove(epoll.get());
        }
        epoll_on_loop = want_on_loop;
    }

    bool should_signal() const { return client && rx_enabled && !rx_queue.empty(); }

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
            ++s->rx_dropped;
            return static_cast<ssize_t>(len);
        }
        auto* p = static_cast<const uint8_t*>(buf);
        s->rx_queue.emplace_back(p, p + len);
        s->rx_queue_bytes += len;
        return static_cast<ssize_t>(len);
    }

    static void guest_error(const char* msg, void* opaque) {
        if (self(opaque)->warn.allow()) LOG_WARN("net user: guest error (libslirp): %s", msg);
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

    // A loop callback: libslirp work under the lock, then (without it) tell
    // the device about waiting frames.
    template <typename Work>
    void on_loop(Work&& work) {
        BackendClient* c = nullptr;
        {
            std::lock_guard lock(mutex);
            if (!slirp || !loop) return;
            work();
            refill();
            update_pause();
            if (should_signal()) c = client;
        }
        // detach() runs on the loop thread (or with the loop stopped), so `c` is still attached.
        if (c) c->rx_ready();
    }

    // From inside a device call: signal later, from the loop.
    void post_rx_ready() {
        if (!loop || rx_ready_posted.exchange(true)) return;
        std::weak_ptr<State> weak = weak_self;
        loop->post([weak] {
            auto s = weak.lock();
            if (!s) return;
            s->rx_ready_posted = false;
            BackendClient* c = nullptr;
            {
                std::lock_guard lock(s->mutex);
                if (s->should_signal()) c = s->client;
            }
            if (c) c->rx_ready();
        });
    }
};

base::Result<std::unique_ptr<SlirpBackend>> SlirpBackend::create(SlirpBackendOptions options) {
    auto s = std::make_shared<State>(std::move(options));
    s->weak_self = s;

    struct Forward {
        HostForward spec;
        uint32_t host, guest;
    };
    std::vector<Forward> forwards;
    for (const auto& f : s->options.hostfwd) {
        auto host = forward_host_addr(f);
        if (!host) return base::fail("--net user: hostfwd " + format_hostfwd(f) + ": " + host.error().message());
        auto guest = forward_guest_addr(f, s->addrs);
        if (!guest) return base::fail("--net user: hostfwd " + format_hostfwd(f) + ": " + guest.error().message());
        forwards.push_back({f, *host, *guest});
    }

    int ep = epoll_create1(EPOLL_CLOEXEC);
    if (ep < 0) return base::fail_errno("--net user: epoll_create1");
    s->epoll.reset(ep);
    int tfd = timerfd_create(CLOCK_MONOTONIC, TFD_NONBLOCK | TFD_CLOEXEC);
    if (tfd < 0) return base::fail_errno("--net user: timerfd_create");
    s->timer.reset(tfd);

    // Second line of defence behind the frame filter: outbound sockets bound
    // to 127.0.0.1 cannot reach any other host (the kernel refuses the route).
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

    std::unique_ptr<SlirpBackend> backend(new SlirpBackend(s));  // its destructor cleans up on every path
    std::lock_guard lock(s->mutex);  // (declared after `backend`: released before it is destroyed)
    s->slirp = slirp_new(&cfg, &callbacks, s.get());
    if (!s->slirp) return base::fail("--net user: libslirp: slirp_new failed");
    for (const auto& f : forwards) {
        errno = 0;
        if (slirp_add_hostfwd(s->slirp, f.spec.proto == HostFwdProto::Udp, to_in_addr(f.host), f.spec.host_port,
                              to_in_addr(f.guest), f.spec.guest_port) < 0) {
            int err = errno ? errno : EINVAL;
            return base::fail("--net user: hostfwd " + format_hostfwd(f.spec) + ": cannot listen on " +
                              f.spec.host_addr + ":" + std::to_string(f.spec.host_port) + ": " + strerror(err));
        }
    }
    s->refill();
    LOG_INFO("net user: 10.0.2.0/24 (libslirp %s): guest 10.0.2.15, host loopback at 10.0.2.2, %zu forward(s)",
             slirp_version_string(), forwards.size());
    return backend;
}

SlirpBackend::~SlirpBackend() {
    if (!s_) return;
    detach();
    std::lock_guard lock(s_->mutex);
    if (s_->slirp) slirp_cleanup(s_->slirp);  // closes its sockets, the forwards' listeners too
    s_->slirp = nullptr;
    s_->rx_queue.clear();
}

base::Result<void> SlirpBackend::attach(event::EventLoop& loop, BackendClient& client) {
    std::lock_guard lock(s_->mutex);
    if (s_->loop) return base::fail("--net user: backend attached twice");
    s_->loop = &loop;
    s_->client = &client;
    s_->rx_enabled = false;
    std::weak_ptr<State> weak = s_;
    TRY(loop.add(s_->timer.get(), [weak](uint32_t) {
        auto s = weak.lock();
        if (!s) return;
        uint64_t expirations;
        (void)!::read(s->timer.get(), &expirations, sizeof expirations);
        s->on_loop([&] {
            s->run_due_timers();
            s->poll_round();
        });
    }));
    s_->refill();
    s_->update_pause();  // puts libslirp's sockets on the loop
    return base::ok();
}

void SlirpBackend::detach() {
    std::lock_guard lock(s_->mutex);
    if (!s_->loop) return;
    (void)s_->loop->remove(s_->timer.get());
    if (s_->epoll_on_loop) (void)s_->loop->remove(s_->epoll.get());
    s_->epoll_on_loop = false;
    s_->loop = nullptr;
    s_->client = nullptr;
    s_->rx_enabled = false;
}

void SlirpBackend::set_rx_enabled(bool enabled) {
    std::lock_guard lock(s_->mutex);
    s_->rx_enabled = enabled;
    if (s_->should_signal()) s_->post_rx_ready();
}

std::optional<size_t> SlirpBackend::peek_frame_size() {
    std::lock_guard lock(s_->mutex);
    if (s_->rx_queue.empty()) return std::nullopt;
    return s_->rx_queue.front().size();
}

base::Result<size_t> SlirpBackend::receive(std::span<const iovec> bufs) {
    std::lock_guard lock(s_->mutex);
    if (s_->rx_queue.empty()) return size_t{0};
    std::vector<uint8_t> frame = std::move(s_->rx_queue.front());
    s_->rx_queue.pop_front();
    s_->rx_queue_bytes -= frame.size();
    size_t done = 0;
    for (const auto& v : bufs) {
        if (done == frame.size()) break;
        size_t n = std::min(v.iov_len, frame.size() - done);
        std::memcpy(v.iov_base, frame.data() + done, n);
        done += n;
    }
    if (done < frame.size()) {
        ++s_->rx_dropped;  // truncated: the device drops it
    } else {
        ++s_->rx_frames;
        s_->rx_bytes += frame.size();
    }
    s_->update_pause();
    return frame.size();
}

base::Result<void> SlirpBackend::transmit(std::span<const iovec> frame) {
    std::lock_guard lock(s_->mutex);
    size_t len = iov_length(frame);
    if (len > kMaxMtuFrameSize) {
        ++s_->tx_dropped;
        return base::fail("--net user: dropped a " + std::to_string(len) + "-byte frame (larger than the MTU)");
    }
    auto& buf = s_->tx_buffer;
    buf.resize(len);
    size_t done = 0;
    for (const auto& v : frame) {
        std::memcpy(buf.data() + done, v.iov_base, v.iov_len);
        done += v.iov_len;
    }
    auto verdict = classify_guest_frame(buf, s_->addrs);
    if (verdict != GuestFrameVerdict::Pass) {
        ++s_->tx_dropped;
        ++s_->tx_dropped_policy;
        return base::fail(std::string("--net user: dropped a frame from the guest: ") + to_string(verdict));
    }
    if (!s_->slirp) return base::fail("--net user: closed");
    ++s_->tx_frames;
    s_->tx_bytes += len;
    slirp_input(s_->slirp, buf.data(), static_cast<int>(len));
    s_->refill();
    s_->update_pause();
    // Not signalled here: the device holds its lock (backend.hpp).
    if (s_->should_signal()) s_->post_rx_ready();
    return base::ok();
}

BackendStats SlirpBackend::stats() const {
    BackendStats st;
    st.rx_frames = s_->rx_frames;
    st.rx_bytes = s_->rx_bytes;
    st.tx_frames = s_->tx_frames;
    st.tx_bytes = s_->tx_bytes;
    st.rx_dropped = s_->rx_dropped;
    st.tx_dropped = s_->tx_dropped;
    return st;
}

SlirpStats SlirpBackend::slirp_stats() const {
    SlirpStats st;
    st.tx_dropped_policy = s_->tx_dropped_policy;
    st.rx_dropped_full = s_->rx_dropped_full;
    st.rx_pauses = s_->rx_pauses;
    std::lock_guard lock(s_->mutex);
    st.rx_queued = s_->rx_queue.size();
    return st;
}

std::string SlirpBackend::connection_info() const {
    std::lock_guard lock(s_->mutex);
    if (!s_->slirp) return {};
    char* info = slirp_connection_info(s_->slirp);
    std::string out = info ? info : "";
    free(info);  // g_free; GLib allocates with malloc
    return out;
}

}  // namespace kvmkit::net
