// UserNetwork with the real libslirp on a real event loop: the test plays the
// guest (it writes Ethernet frames and reads the ones libslirp sends back)
// and the host side (sockets on 127.0.0.1). No KVM, no traffic off loopback.
#include "net/slirp/user_network.hpp"

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
#include <mutex>

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

class UserNetworkTest : public ::testing::Test {
protected:
    void SetUp() override {
        auto l = event::EventLoop::create();
        ASSERT_TRUE(l) << l.error().message();
        loop_ = std::move(*l);
        loop_->start();
    }
    void TearDown() override {
        net_.reset();
        loop_->stop();
    }

    void start(UserNetworkOptions opts = {}) {
        auto n = UserNetwork::create(*loop_, std::move(opts), [this](std::span<const uint8_t> f) {
            std::lock_guard lock(mutex_);
            if (!accept_) return false;
            frames_.emplace_back(f.begin(), f.end());
            cv_.notify_all();
            return true;
        });
        ASSERT_TRUE(n) << n.error().message();
        net_ = std::move(*n);
    }

    void send(const Bytes& frame) { net_->send(frame); }

    // The next frame libslirp sends that `match` accepts (others are skipped).
    template <typename Match>
    std::optional<Parsed> expect_frame(Match&& match, std::chrono::milliseconds timeout = 5s) {
        std::unique_lock lock(mutex_);
        auto deadline = std::chrono::steady_clock::now() + timeout;
        for (;;) {
            while (!frames_.empty()) {
                auto f = std::move(frames_.front());
                frames_.pop_front();
                auto p = parse(f);
                if (p && match(*p)) return p;
            }
            if (cv_.wait_until(lock, deadline) == std::cv_status::timeout && frames_.empty()) return std::nullopt;
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
        std::lock_guard lock(mutex_);
        accept_ = a;
    }

    std::unique_ptr<event::EventLoop> loop_;
    std::unique_ptr<UserNetwork> net_;
    std::mutex mutex_;
    std::condition_variable cv_;
    std::deque<Bytes> frames_;
    bool accept_ = true;
    Mac gateway_mac_{};
};

TEST_F(UserNetworkTest, AnswersArpForTheGateway) {
    start();
    send(arp_request(kGuestIp, kGatewayIp));
    auto p = expect_frame([](const Parsed& p) { return p.type == 0x0806; });
    ASSERT_TRUE(p);
    EXPECT_EQ(p->arp_op, 2);
    EXPECT_EQ(p->arp_sender_ip, kGatewayIp);
    EXPECT_EQ(p->arp_target_ip, kGuestIp);
    EXPECT_EQ(p->dst, kGuestMac);
    EXPECT_EQ(net_->stats().tx_frames, 1u);
}

TEST_F(UserNetworkTest, DhcpDiscoverGetsAnOfferFor10_0_2_15) {
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

TEST_F(UserNetworkTest, PingToTheGatewayIsAnswered) {
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
TEST_F(UserNetworkTest, TcpToTheGatewayReachesAServerOnHostLoopback) {
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

TEST_F(UserNetworkTest, TrafficToAnyOtherAddressIsDroppedBeforeLibslirp) {
    start();
    arp_gateway();
    auto before = net_->stats();
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
    auto after = net_->stats();
    EXPECT_EQ(after.tx_dropped_policy - before.tx_dropped_policy, 11u);
    EXPECT_EQ(after.tx_frames, before.tx_frames);
    EXPECT_FALSE(expect_frame([](const Parsed&) { return true; }, 300ms)) << "libslirp answered a dropped frame";
}

TEST_F(UserNetworkTest, HostForwardReachesTheGuest) {
    uint16_t host_port = free_loopback_port();
    UserNetworkOptions opts;
    opts.forwards.push_back(*parse_host_forward("tcp:127.0.0.1:" + std::to_string(host_port) + "-:2222"));
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

TEST_F(UserNetworkTest, HostForwardOnAPortInUseIsAClearError) {
    HostServer busy;
    UserNetworkOptions opts;
    opts.forwards.push_back(*parse_host_forward("tcp:127.0.0.1:" + std::to_string(busy.port) + "-:22"));
    auto n = UserNetwork::create(*loop_, opts, [](std::span<const uint8_t>) { return true; });
    ASSERT_FALSE(n);
    const auto& msg = n.error().message();
    EXPECT_NE(msg.find("127.0.0.1:" + std::to_string(busy.port)), std::string::npos) << msg;
    EXPECT_NE(msg.find("Address already in use"), std::string::npos) << msg;
}

TEST_F(UserNetworkTest, NonLoopbackHostForwardIsRefused) {
    UserNetworkOptions opts;
    HostForward f;
    f.host_addr = 0;  // 0.0.0.0: every interface
    f.host_port = 8080;
    f.guest_port = 80;
    opts.forwards.push_back(f);
    auto n = UserNetwork::create(*loop_, opts, [](std::span<const uint8_t>) { return true; });
    ASSERT_FALSE(n);
    EXPECT_NE(n.error().message().find("not a loopback address"), std::string::npos) << n.error().message();
}

// With no guest buffers, frames wait in a bounded queue; the overflow is
// dropped and counted; rx_ready() delivers the rest in order.
TEST_F(UserNetworkTest, ReceiveQueueIsBoundedAndKeepsOrder) {
    UserNetworkOptions opts;
    opts.rx_queue_frames = 8;
    opts.rx_pause_frames = 4;
    start(opts);
    arp_gateway();
    set_accept(false);
    for (uint16_t seq = 0; seq < 20; ++seq)
        send(ethernet(gateway_mac_, kGuestMac, 0x0800, icmp_echo(kGuestIp, kGatewayIp, 9, seq)));
    auto st = net_->stats();
    EXPECT_EQ(st.rx_queued, 8u);
    EXPECT_EQ(st.rx_dropped_full, 12u);
    EXPECT_GE(st.rx_pauses, 1u);

    set_accept(true);
    net_->rx_ready();
    for (uint16_t seq = 0; seq < 8; ++seq) {
        auto p = expect_frame([](const Parsed& p) { return p.proto == 1; });
        ASSERT_TRUE(p) << "reply " << seq;
        EXPECT_EQ(p->icmp_seq, seq);
    }
    EXPECT_EQ(net_->stats().rx_queued, 0u);
}

TEST_F(UserNetworkTest, HostSocketsPauseWhileTheGuestQueueIsFullAndResume) {
    HostServer server;
    UserNetworkOptions opts;
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

    set_accept(false);                                 // the guest runs out of receive buffers
    uint64_t pauses_before = net_->stats().rx_pauses;  // every frame so far paused briefly
    std::string blob(64 * 1024, 'x');
    ASSERT_EQ(write(conn.get(), blob.data(), blob.size()), static_cast<ssize_t>(blob.size()));
    for (int i = 0; i < 250 && net_->stats().rx_queued == 0; ++i) std::this_thread::sleep_for(20ms);
    auto st = net_->stats();
    EXPECT_GT(st.rx_pauses, pauses_before);
    EXPECT_GE(st.rx_queued, 1u);
    EXPECT_EQ(st.rx_dropped_full, 0u);

    // Buffers again: the queued segment arrives, and after the guest's ACK
    // more data follows, so the host sockets are watched again.
    set_accept(true);
    net_->rx_ready();
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

TEST_F(UserNetworkTest, DestroyingItClosesTheForwardedPort) {
    uint16_t host_port = free_loopback_port();
    UserNetworkOptions opts;
    opts.forwards.push_back(*parse_host_forward("tcp::" + std::to_string(host_port) + "-:80"));
    start(opts);
    net_.reset();
    HostServer again;  // binding the same port must work now
    base::UniqueFd s(socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0));
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    a.sin_port = htons(host_port);
    EXPECT_EQ(bind(s.get(), reinterpret_cast<sockaddr*>(&a), sizeof a), 0) << strerror(errno);
}

}  // namespace
}  // namespace kvmkit::net
