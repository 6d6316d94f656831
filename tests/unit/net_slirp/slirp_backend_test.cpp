// SlirpBackend with the real libslirp on a real event loop: the test plays
// the device and the guest (it writes Ethernet frames and pulls the ones
// libslirp sends back, as virtio-net does) and the host side (sockets on
// 127.0.0.1). No KVM, no traffic off loopback. The backend is thread-safe;
// the test transmits from its own thread, the pulls run on the loop thread
// as the device's do.
#include "net/slirp_backend.hpp"

#include <arpa/inet.h>
#include <fcntl.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <chrono>
#include <condition_variable>
#include <deque>
#include <future>
#include <mutex>
#include <thread>

#include "frames.hpp"

namespace kvmkit::net {
namespace {

using namespace std::chrono_literals;
using namespace test;

// A TCP socket listening on 127.0.0.1 at a port the kernel picks.
struct HostServer {
    base::UniqueFd fd;
    uint16_t port = 0;
    HostServer() {
        fd.reset(socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0));
        sockaddr_in a{};
        a.sin_family = AF_INET;
        a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
        EXPECT_EQ(bind(fd.get(), reinterpret_cast<sockaddr*>(&a), sizeof a), 0);
        EXPECT_EQ(listen(fd.get(), 4), 0);
        socklen_t len = sizeof a;
        getsockname(fd.get(), reinterpret_cast<sockaddr*>(&a), &len);
        port = ntohs(a.sin_port);
    }
};

bool wait_readable(int fd, int ms) {
    pollfd p{fd, POLLIN, 0};
    return ::poll(&p, 1, ms) == 1;
}

uint16_t free_loopback_port() {
    HostServer s;  // bound, then closed: the port is free (SO_REUSEADDR is not needed for a listener never connected)
    return s.port;
}

// The device side: pulls every waiting frame on rx_ready() while it
// "has buffers", and turns receive off when it has none, as virtio-net does.
class FakeDevice : public BackendClient {
public:
    SlirpBackend* backend = nullptr;
    std::mutex mutex;  // the device lock: held while calling the backend
    std::condition_variable cv;
    std::deque<Bytes> frames;
    bool accept = true;

    void rx_ready() override {
        std::lock_guard lock(mutex);
        if (!accept) {
            backend->set_rx_enabled(false);
            return;
        }
        for (;;) {
            std::vector<uint8_t> buf(kMaxMtuFrameSize);
            iovec iov{buf.data(), buf.size()};
            auto n = backend->receive({&iov, 1});
            if (!n || *n == 0) break;
            buf.resize(*n);
            frames.push_back(std::move(buf));
        }
        cv.notify_all();
    }
    void link_changed(bool) override {}
};

class SlirpBackendTest : public ::testing::Test {
protected:
    void SetUp() override {
        auto l = event::EventLoop::create();
        ASSERT_TRUE(l) << l.error().message();
        loop_ = std::move(*l);
        loop_->start();
    }
    void TearDown() override {
        loop_->stop();  // detach() needs the loop thread or a stopped loop
        backend_.reset();
    }

    void start(SlirpBackendOptions opts = {}) {
        auto b = SlirpBackend::create(std::move(opts));
        ASSERT_TRUE(b) << b.error().message();
        backend_ = std::move(*b);
        device_.backend = backend_.get();
        ASSERT_TRUE(backend_->attach(*loop_, device_));
        on_loop([&] { backend_->set_rx_enabled(true); });
    }

    // Runs `fn` on the loop thread and waits for it.
    template <typename Fn>
    void on_loop(Fn&& fn) {
        std::promise<void> done;
        loop_->post([&] {
            fn();
            done.set_value();
        });
        done.get_future().wait();
    }

    void send(const Bytes& frame) {
        iovec iov{const_cast<uint8_t*>(frame.data()), frame.size()};
        (void)backend_->transmit({&iov, 1});
    }

    // The next frame libslirp sends that `match` accepts (others are skipped).
    template <typename Match>
    std::optional<Parsed> expect_frame(Match&& match, std::chrono::milliseconds timeout = 5s) {
        std::unique_lock lock(device_.mutex);
        auto deadline = std::chrono::steady_clock::now() + timeout;
        for (;;) {
            while (!device_.frames.empty()) {
                auto f = std::move(device_.frames.front());
                device_.frames.pop_front();
                auto p = parse(f);
                if (p && match(*p)) return p;
            }
            if (device_.cv.wait_until(lock, deadline) == std::cv_status::timeout && device_.frames.empty())
                return std::nullopt;
        }
    }

    // The guest announces itself, as a real one does before it talks: libslirp
    // learns its MAC (it sends to the guest only once it knows it).
    void arp_gateway() {
        send(arp_request(kGuestIp, kGatewayIp));
        auto reply = expect_frame([](const Parsed& p) { return p.type == 0x0806 && p.arp_op == 2; });
        ASSERT_TRUE(reply) << "no ARP reply for 10.0.2.2";
        gateway_mac_ = reply->arp_sender_mac;
    }

    void set_accept(bool a) {
        {
            std::lock_guard lock(device_.mutex);
            device_.accept = a;
        }
        if (a) on_loop([&] { backend_->set_rx_enabled(true); });
    }

    std::unique_ptr<event::EventLoop> loop_;
    FakeDevice device_;
    std::unique_ptr<SlirpBackend> backend_;
    Mac gateway_mac_{};
};

TEST_F(SlirpBackendTest, AnswersArpForTheGateway) {
    start();
    send(arp_request(kGuestIp, kGatewayIp));
    auto p = expect_frame([](const Parsed& p) { return p.type == 0x0806; });
    ASSERT_TRUE(p);
    EXPECT_EQ(p->arp_op, 2);
    EXPECT_EQ(p->arp_sender_ip, kGatewayIp);
    EXPECT_EQ(p->arp_target_ip, kGuestIp);
    EXPECT_EQ(p->dst, kGuestMac);
    EXPECT_EQ(backend_->stats().tx_frames, 1u);
}

TEST_F(SlirpBackendTest, DhcpDiscoverGetsAnOfferFor10_0_2_15) {
    start();
    send(ethernet(kBroadcast, kGuestMac, 0x0800, udp(0, 0xffffffff, 68, 67, dhcp(1 /*DISCOVER*/, 0x1234abcd))));
    auto offer = expect_frame([](const Parsed& p) { return p.proto == 17 && p.sport == 67 && p.dport == 68; });
    ASSERT_TRUE(offer) << "no DHCP reply";
    EXPECT_TRUE(offer->ip_checksum_ok);
    EXPECT_EQ(offer->ip_src, kGatewayIp);
    ASSERT_GE(offer->data.size(), 240u);
    EXPECT_EQ(get32(offer->data, 4), 0x1234abcdu);  // xid
    EXPECT_EQ(get32(offer->data, 16), kGuestIp);    // yiaddr
    auto type = dhcp_option(offer->data, 53);
    ASSERT_TRUE(type);
    EXPECT_EQ(type->at(0), 2);  // OFFER
    auto router = dhcp_option(offer->data, 3);
    ASSERT_TRUE(router);
    EXPECT_EQ(get32(*router, 0), kGatewayIp);
    auto mask = dhcp_option(offer->data, 1);
    ASSERT_TRUE(mask);
    EXPECT_EQ(get32(*mask, 0), 0xffffff00u);

    // REQUEST -> ACK for the offered address.
    Bytes want{50, 4, 10, 0, 2, 15};
    send(ethernet(kBroadcast, kGuestMac, 0x0800,
                  udp(0, 0xffffffff, 68, 67, dhcp(3 /*REQUEST*/, 0x1234abce, kGuestMac, want))));
    auto ack = expect_frame([](const Parsed& p) { return p.proto == 17 && p.sport == 67 && p.dport == 68; });
    ASSERT_TRUE(ack);
    auto ack_type = dhcp_option(ack->data, 53);
    ASSERT_TRUE(ack_type);
    EXPECT_EQ(ack_type->at(0), 5);  // ACK
    EXPECT_EQ(get32(ack->data, 16), kGuestIp);
}

TEST_F(SlirpBackendTest, PingToTheGatewayIsAnswered) {
    start();
    arp_gateway();
    send(ethernet(gateway_mac_, kGuestMac, 0x0800, icmp_echo(kGuestIp, kGatewayIp, 7, 1, {1, 2, 3, 4})));
    auto p = expect_frame([](const Parsed& p) { return p.proto == 1; });
    ASSERT_TRUE(p);
    EXPECT_EQ(p->icmp_type, 0);  // echo reply
    EXPECT_EQ(p->ip_src, kGatewayIp);
    EXPECT_EQ(p->data, (Bytes{1, 2, 3, 4}));
}

// The heart of `--net user`: the guest's 10.0.2.2:PORT is the host's 127.0.0.1:PORT.
TEST_F(SlirpBackendTest, TcpToTheGatewayReachesAServerOnHostLoopback) {
    HostServer server;
    start();
    arp_gateway();
    const uint16_t sport = 40000;
    const uint32_t iss = 1000;
    send(ethernet(gateway_mac_, kGuestMac, 0x0800, tcp(kGuestIp, kGatewayIp, sport, server.port, iss, 0, kTcpSyn)));

    ASSERT_TRUE(wait_readable(server.fd.get(), 5000)) << "no connection reached 127.0.0.1:" << server.port;
    sockaddr_in peer{};
    socklen_t len = sizeof peer;
    base::UniqueFd conn(accept4(server.fd.get(), reinterpret_cast<sockaddr*>(&peer), &len, SOCK_CLOEXEC));
    ASSERT_TRUE(conn.valid());
    EXPECT_EQ(ntohl(peer.sin_addr.s_addr), INADDR_LOOPBACK);

    auto synack = expect_frame([&](const Parsed& p) { return p.proto == 6 && p.dport == sport; });
    ASSERT_TRUE(synack);
    EXPECT_EQ(synack->flags & (kTcpSyn | kTcpAck), kTcpSyn | kTcpAck);
    EXPECT_EQ(synack->ack, iss + 1);
    EXPECT_EQ(synack->ip_src, kGatewayIp);
    EXPECT_EQ(synack->sport, server.port);
    uint32_t their = synack->seq + 1;

    // Guest -> host data.
    Bytes hello{'h', 'e', 'l', 'l', 'o'};
    send(ethernet(gateway_mac_, kGuestMac, 0x0800,
                  tcp(kGuestIp, kGatewayIp, sport, server.port, iss + 1, their, kTcpAck | kTcpPsh, hello)));
    char buf[16] = {};
    ASSERT_TRUE(wait_readable(conn.get(), 5000));
    ASSERT_EQ(read(conn.get(), buf, sizeof buf), 5);
    EXPECT_EQ(std::string(buf, 5), "hello");

    // Host -> guest data.
    ASSERT_EQ(write(conn.get(), "world", 5), 5);
    auto data = expect_frame([&](const Parsed& p) { return p.proto == 6 && p.dport == sport && !p.data.empty(); });
    ASSERT_TRUE(data);
    EXPECT_EQ(std::string(data->data.begin(), data->data.end()), "world");
    EXPECT_EQ(data->seq, their);
}

// A bulk transfer host -> guest through libslirp (as an HTTP download is):
// every byte arrives in order while the guest ACKs as it goes.
TEST_F(SlirpBackendTest, BulkDataFromHostLoopbackArrivesInOrder) {
    HostServer server;
    start();
    arp_gateway();
    const uint16_t sport = 40020;
    send(ethernet(gateway_mac_, kGuestMac, 0x0800, tcp(kGuestIp, kGatewayIp, sport, server.port, 1, 0, kTcpSyn)));
    ASSERT_TRUE(wait_readable(server.fd.get(), 5000));
    base::UniqueFd conn(accept4(server.fd.get(), nullptr, nullptr, SOCK_CLOEXEC));
    auto synack = expect_frame([&](const Parsed& p) { return p.proto == 6 && p.dport == sport; });
    ASSERT_TRUE(synack);
    uint32_t next = synack->seq + 1;
    send(ethernet(gateway_mac_, kGuestMac, 0x0800, tcp(kGuestIp, kGatewayIp, sport, server.port, 2, next, kTcpAck)));

    const size_t total = 1 << 20;
    std::thread writer([&] {
        std::string blob(total, '\0');
        for (size_t i = 0; i < total; ++i) blob[i] = static_cast<char>(i * 7 + 3);
        size_t done = 0;
        while (done < total) {
            ssize_t n = write(conn.get(), blob.data() + done, total - done);
            if (n <= 0) break;
            done += static_cast<size_t>(n);
        }
    });
    size_t received = 0;
    bool order_ok = true;
    while (received < total) {
        auto d = expect_frame([&](const Parsed& p) { return p.proto == 6 && p.dport == sport && !p.data.empty(); });
        if (!d) break;
        if (d->seq != next) continue;  // a retransmission of what we have
        for (size_t i = 0; i < d->data.size(); ++i)
            order_ok &= d->data[i] == static_cast<uint8_t>((received + i) * 7 + 3);
        received += d->data.size();
        next += d->data.size();
        send(
            ethernet(gateway_mac_, kGuestMac, 0x0800, tcp(kGuestIp, kGatewayIp, sport, server.port, 2, next, kTcpAck)));
    }
    writer.join();
    EXPECT_EQ(received, total);
    EXPECT_TRUE(order_ok);
}

TEST_F(SlirpBackendTest, TrafficToAnyOtherAddressIsDroppedBeforeLibslirp) {
    start();
    arp_gateway();
    auto before = backend_->slirp_stats();
    auto before_tx = backend_->stats();
    // 10.0.2.3 is the DNS alias (DNS is off); 10.0.2.77 is another address of
    // the user network; 192.0.2.1 is TEST-NET-1 (RFC 5737), never routed.
    for (uint32_t dst : {0x0a000203u, 0x0a00024du, 0xc0000201u}) {
        send(ethernet(gateway_mac_, kGuestMac, 0x0800, tcp(kGuestIp, dst, 40001, 80, 1, 0, kTcpSyn)));
        send(ethernet(gateway_mac_, kGuestMac, 0x0800, udp(kGuestIp, dst, 40002, 53, {0, 1, 2})));
        send(ethernet(gateway_mac_, kGuestMac, 0x0800, icmp_echo(kGuestIp, dst, 1, 1)));
    }
    // IPv6 and a VLAN-tagged frame.
    send(ethernet(kBroadcast, kGuestMac, 0x86dd, Bytes(60, 0)));
    send(ethernet(kBroadcast, kGuestMac, 0x8100, Bytes(60, 0)));
    auto after = backend_->slirp_stats();
    EXPECT_EQ(backend_->stats().tx_frames, before_tx.tx_frames);
    EXPECT_EQ(backend_->stats().tx_dropped - before_tx.tx_dropped, 11u);
    EXPECT_EQ(after.tx_dropped_policy - before.tx_dropped_policy, 11u);
    EXPECT_FALSE(expect_frame([](const Parsed&) { return true; }, 300ms)) << "libslirp answered a dropped frame";
}

TEST_F(SlirpBackendTest, HostForwardReachesTheGuest) {
    uint16_t host_port = free_loopback_port();
    SlirpBackendOptions opts;
    opts.hostfwd.push_back(*parse_hostfwd("tcp:127.0.0.1:" + std::to_string(host_port) + "-:2222"));
    start(opts);
    arp_gateway();

    base::UniqueFd c(socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0));
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    a.sin_port = htons(host_port);
    int r = connect(c.get(), reinterpret_cast<sockaddr*>(&a), sizeof a);
    ASSERT_TRUE(r == 0 || errno == EINPROGRESS) << strerror(errno);

    auto syn = expect_frame([](const Parsed& p) { return p.proto == 6 && (p.flags & kTcpSyn); });
    ASSERT_TRUE(syn) << "no SYN reached the guest";
    EXPECT_EQ(syn->ip_dst, kGuestIp);
    EXPECT_EQ(syn->dport, 2222);
    EXPECT_EQ(syn->ip_src, kGatewayIp);
    EXPECT_EQ(syn->dst, kGuestMac);

    // The guest accepts; the host sees the connection established and data flow.
    const uint32_t iss = 5000;
    send(ethernet(gateway_mac_, kGuestMac, 0x0800,
                  tcp(kGuestIp, syn->ip_src, 2222, syn->sport, iss, syn->seq + 1, kTcpSyn | kTcpAck)));
    send(ethernet(gateway_mac_, kGuestMac, 0x0800,
                  tcp(kGuestIp, syn->ip_src, 2222, syn->sport, iss + 1, syn->seq + 1, kTcpAck | kTcpPsh,
                      Bytes{'g', 'u', 'e', 's', 't'})));
    ASSERT_TRUE(wait_readable(c.get(), 5000));
    char buf[8] = {};
    ASSERT_EQ(read(c.get(), buf, sizeof buf), 5);
    EXPECT_EQ(std::string(buf, 5), "guest");
}

TEST_F(SlirpBackendTest, HostForwardOnAPortInUseIsAClearError) {
    HostServer busy;
    SlirpBackendOptions opts;
    opts.hostfwd.push_back(*parse_hostfwd("tcp:127.0.0.1:" + std::to_string(busy.port) + "-:22"));
    auto b = SlirpBackend::create(opts);
    ASSERT_FALSE(b);
    const auto& msg = b.error().message();
    EXPECT_NE(msg.find("cannot listen on 127.0.0.1:" + std::to_string(busy.port)), std::string::npos) << msg;
    EXPECT_NE(msg.find("Address already in use"), std::string::npos) << msg;
}

TEST_F(SlirpBackendTest, BadForwardsAreRefusedWithAClearError) {
    struct Case {
        HostForward fwd;
        const char* says;
    } cases[] = {
        {{HostFwdProto::Tcp, "0.0.0.0", 8080, "", 80}, "not loopback"},
        {{HostFwdProto::Tcp, "192.168.1.1", 8080, "", 80}, "not loopback"},
        {{HostFwdProto::Tcp, "127.0.0.1", 8080, "10.0.3.15", 80}, "not a guest address"},
        {{HostFwdProto::Tcp, "127.0.0.1", 8080, "10.0.2.2", 80}, "not a guest address"},
        {{HostFwdProto::Udp, "127.0.0.1", 8080, "10.0.2.255", 80}, "not a guest address"},
        {{HostFwdProto::Tcp, "127.0.0.1", 8080, "ten", 80}, "not an IPv4 address"},
    };
    for (const auto& c : cases) {
        SlirpBackendOptions opts;
        opts.hostfwd.push_back(c.fwd);
        auto b = SlirpBackend::create(opts);
        ASSERT_FALSE(b) << format_hostfwd(c.fwd);
        EXPECT_NE(b.error().message().find(c.says), std::string::npos) << b.error().message();
        EXPECT_NE(b.error().message().find("hostfwd"), std::string::npos) << b.error().message();
    }
}

TEST_F(SlirpBackendTest, AFrameLargerThanTheBuffersIsReportedTruncated) {
    start();
    arp_gateway();
    set_accept(false);
    send(ethernet(gateway_mac_, kGuestMac, 0x0800, icmp_echo(kGuestIp, kGatewayIp, 3, 3, Bytes(100, 7))));
    ASSERT_EQ(backend_->slirp_stats().rx_queued, 1u);
    auto size = backend_->peek_frame_size();
    ASSERT_TRUE(size);
    EXPECT_EQ(*size, 14u + 20 + 8 + 100);
    uint8_t small[20];
    iovec iov{small, sizeof small};
    auto n = backend_->receive({&iov, 1});
    ASSERT_TRUE(n);
    EXPECT_EQ(*n, *size);
    EXPECT_EQ(backend_->stats().rx_dropped, 1u);
    EXPECT_FALSE(backend_->peek_frame_size());
    auto none = backend_->receive({&iov, 1});
    ASSERT_TRUE(none);
    EXPECT_EQ(*none, 0u);
}

// With no guest buffers, frames wait in a bounded queue; the overflow is
// dropped and counted; rx_ready() delivers the rest in order.
TEST_F(SlirpBackendTest, ReceiveQueueIsBoundedAndKeepsOrder) {
    SlirpBackendOptions opts;
    opts.rx_queue_frames = 8;
    opts.rx_pause_frames = 4;
    start(opts);
    arp_gateway();
    set_accept(false);
    for (uint16_t seq = 0; seq < 20; ++seq)
        send(ethernet(gateway_mac_, kGuestMac, 0x0800, icmp_echo(kGuestIp, kGatewayIp, 9, seq)));
    auto st = backend_->slirp_stats();
    EXPECT_EQ(st.rx_queued, 8u);
    EXPECT_EQ(st.rx_dropped_full, 12u);
    EXPECT_GE(st.rx_pauses, 1u);

    set_accept(true);
    for (uint16_t seq = 0; seq < 8; ++seq) {
        auto p = expect_frame([](const Parsed& p) { return p.proto == 1; });
        ASSERT_TRUE(p) << "reply " << seq;
        EXPECT_EQ(p->icmp_seq, seq);
    }
    EXPECT_EQ(backend_->slirp_stats().rx_queued, 0u);
}

TEST_F(SlirpBackendTest, HostSocketsPauseWhileTheGuestQueueIsFullAndResume) {
    HostServer server;
    SlirpBackendOptions opts;
    opts.rx_pause_frames = 1;  // the first frame the guest cannot take pauses the host sockets
    start(opts);
    arp_gateway();
    const uint16_t sport = 40010;
    send(ethernet(gateway_mac_, kGuestMac, 0x0800, tcp(kGuestIp, kGatewayIp, sport, server.port, 1, 0, kTcpSyn)));
    ASSERT_TRUE(wait_readable(server.fd.get(), 5000));
    base::UniqueFd conn(accept4(server.fd.get(), nullptr, nullptr, SOCK_CLOEXEC));
    auto synack = expect_frame([&](const Parsed& p) { return p.proto == 6 && p.dport == sport; });
    ASSERT_TRUE(synack);
    send(ethernet(gateway_mac_, kGuestMac, 0x0800,
                  tcp(kGuestIp, kGatewayIp, sport, server.port, 2, synack->seq + 1, kTcpAck)));

    set_accept(false);                                           // the guest runs out of receive buffers
    uint64_t pauses_before = backend_->slirp_stats().rx_pauses;  // every frame so far paused briefly
    std::string blob(64 * 1024, 'x');
    ASSERT_EQ(write(conn.get(), blob.data(), blob.size()), static_cast<ssize_t>(blob.size()));
    for (int i = 0; i < 250 && backend_->slirp_stats().rx_queued == 0; ++i) std::this_thread::sleep_for(20ms);
    auto st = backend_->slirp_stats();
    EXPECT_GT(st.rx_pauses, pauses_before);
    EXPECT_GE(st.rx_queued, 1u);
    EXPECT_EQ(st.rx_dropped_full, 0u);

    // Buffers again: the queued segment arrives, and after the guest's ACK
    // more data follows, so the host sockets are watched again.
    set_accept(true);
    uint32_t next = synack->seq + 1;
    size_t received = 0;
    for (int segment = 0; segment < 3; ++segment) {
        auto data = expect_frame([&](const Parsed& p) { return p.proto == 6 && p.dport == sport && !p.data.empty(); });
        ASSERT_TRUE(data) << "segment " << segment << " did not arrive after rx_ready";
        EXPECT_EQ(data->seq, next);
        next += data->data.size();
        received += data->data.size();
        send(
            ethernet(gateway_mac_, kGuestMac, 0x0800, tcp(kGuestIp, kGatewayIp, sport, server.port, 2, next, kTcpAck)));
    }
    EXPECT_GT(received, 0u);
}

TEST_F(SlirpBackendTest, DestroyingItClosesTheForwardedPort) {
    uint16_t host_port = free_loopback_port();
    SlirpBackendOptions opts;
    opts.hostfwd.push_back(*parse_hostfwd("tcp::" + std::to_string(host_port) + "-:80"));
    start(opts);
    loop_->stop();  // detach() wants the loop thread or a stopped loop
    backend_.reset();
    base::UniqueFd s(socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0));
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    a.sin_port = htons(host_port);
    EXPECT_EQ(bind(s.get(), reinterpret_cast<sockaddr*>(&a), sizeof a), 0) << strerror(errno);
}

}  // namespace
}  // namespace kvmkit::net
