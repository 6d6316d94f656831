#include "http/server.hpp"

#include <gtest/gtest.h>
#include <sys/socket.h>
#include <sys/un.h>

#include <atomic>
#include <future>
#include <thread>

#include "http/client.hpp"
#include "http/unix_socket.hpp"
#include "test_socket.hpp"

namespace kvmkit::http {
namespace {

using namespace std::chrono_literals;

// A server with a few routes on its own thread, on a real UNIX socket.
class ServerTest : public ::testing::Test {
protected:
    void SetUp() override { start(ServerOptions{}); }

    void start(ServerOptions options) {
        server_.reset();
        Router router;
        router.add("GET", "/ping", [](const Request&, const Context& ctx) {
            return Response::json(200, Json{{"pong", true}, {"peer_pid", ctx.peer.pid}});
        });
        router.add("PUT", "/echo", [](const Request& r, const Context&) {
            return Response::json(200, Json{{"got", r.json}, {"query", r.query}});
        });
        router.add("PUT", "/typed", [](const Request& r, const Context&) {
            int n = r.json.at("n").get<int>();  // throws on a wrong shape
            return Response::json(200, Json{{"n", n + 1}});
        });
        router.add("GET", "/typed", [](const Request&, const Context&) { return Response::no_content(); });
        router.add("PUT", "/sent", [this](const Request&, const Context&) {
            Response r = Response::no_content();
            r.on_sent = [this] { sent_ = true; };
            return r;
        });
        router.add_async("PUT", "/later", [](const Request&, const Context&, Responder resp) {
            std::thread([resp] {
                std::this_thread::sleep_for(50ms);
                resp.respond(Response::json(200, Json{{"late", true}}));
                resp.respond(Response::json(500, Json{{"late", "twice"}}));  // ignored
            }).detach();
        });
        router.add_async("GET", "/events", [](const Request&, const Context&, Responder resp) {
            std::thread([resp] {
                resp.begin_stream(200);
                for (int i = 0; i < 3; ++i) resp.write(Json{{"event", i}}.dump() + "\n");
                resp.end();
            }).detach();
        });
        auto fd = listen_unix(path_);
        ASSERT_TRUE(fd) << fd.error().message();
        auto s = ServerThread::start(std::move(*fd), std::move(router), options);
        ASSERT_TRUE(s) << s.error().message();
        server_ = std::move(*s);
    }

    // Connected raw socket for byte-level tests.
    int raw_connect() {
        auto fd = connect_unix(path_);
        EXPECT_TRUE(fd);
        return fd->release();
    }

    std::string read_until_close(int fd) {
        std::string out;
        char buf[4096];
        timeval tv{5, 0};
        setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
        for (;;) {
            ssize_t n = recv(fd, buf, sizeof(buf), 0);
            if (n <= 0) break;
            out.append(buf, size_t(n));
        }
        return out;
    }

    testing::TempDir dir_;
    std::string path_ = dir_.file("api.sock");
    std::unique_ptr<ServerThread> server_;
    std::atomic<bool> sent_{false};
};

TEST_F(ServerTest, GetReturnsJson) {
    auto r = request(path_, "GET", "/ping");
    ASSERT_TRUE(r) << r.error().message();
    EXPECT_EQ(r->status, 200);
    EXPECT_EQ(r->json["pong"], true);
    EXPECT_EQ(r->json["peer_pid"], getpid());  // SO_PEERCRED
    EXPECT_EQ(r->headers["content-type"], "application/json");
}

TEST_F(ServerTest, PutEchoesBodyAndQuery) {
    auto r = request(path_, "PUT", "/echo?x=1", Json{{"a", 1}});
    ASSERT_TRUE(r) << r.error().message();
    EXPECT_EQ(r->json["got"]["a"], 1);
    EXPECT_EQ(r->json["query"], "x=1");
}

TEST_F(ServerTest, UnknownPathIs404AndWrongMethodIs405) {
    auto r = request(path_, "GET", "/nope");
    ASSERT_TRUE(r);
    EXPECT_EQ(r->status, 404);
    EXPECT_NE(r->error_message().find("/nope"), std::string::npos);
    r = request(path_, "DELETE", "/typed");
    ASSERT_TRUE(r);
    EXPECT_EQ(r->status, 405);
    EXPECT_EQ(r->headers["allow"], "GET, PUT");
    EXPECT_TRUE(r->json.contains("error"));
}

TEST_F(ServerTest, BodyOfTheWrongShapeIs400) {
    auto r = request(path_, "PUT", "/typed", Json{{"n", "seven"}});
    ASSERT_TRUE(r);
    EXPECT_EQ(r->status, 400);
    EXPECT_NE(r->error_message().find("bad request body"), std::string::npos);
    r = request(path_, "PUT", "/typed", Json{{"n", 7}});
    ASSERT_TRUE(r);
    EXPECT_EQ(r->json["n"], 8);
}

TEST_F(ServerTest, GarbageGets400JsonAndTheServerGoesOn) {
    auto out = exchange_raw(path_, std::string("\x16\x03\x01\x02\x00garbage\r\n\r\n", 16));
    ASSERT_TRUE(out) << out.error().message();
    EXPECT_EQ(out->rfind("HTTP/1.1 400 Bad Request\r\n", 0), 0u) << *out;
    EXPECT_NE(out->find("{\"error\":"), std::string::npos);
    EXPECT_NE(out->find("Connection: close"), std::string::npos);
    auto r = request(path_, "GET", "/ping");
    ASSERT_TRUE(r);
    EXPECT_EQ(r->status, 200);
}

TEST_F(ServerTest, HugeHeadersGet431) {
    std::string big = "GET /ping HTTP/1.1\r\nX: " + std::string(100 * 1024, 'a') + "\r\n\r\n";
    auto out = exchange_raw(path_, big);
    ASSERT_TRUE(out) << out.error().message();
    EXPECT_EQ(out->rfind("HTTP/1.1 431 ", 0), 0u) << out->substr(0, 100);
    EXPECT_TRUE(request(path_, "GET", "/ping"));
}

TEST_F(ServerTest, HugeBodyGets413WithoutReadingIt) {
    auto out = exchange_raw(path_, "PUT /echo HTTP/1.1\r\nContent-Length: 100000000\r\n\r\n{");
    ASSERT_TRUE(out);
    EXPECT_EQ(out->rfind("HTTP/1.1 413 ", 0), 0u) << *out;
}

TEST_F(ServerTest, BadJsonGets400) {
    auto out = exchange_raw(path_, "PUT /echo HTTP/1.1\r\nContent-Length: 3\r\n\r\n{x}");
    ASSERT_TRUE(out);
    EXPECT_EQ(out->rfind("HTTP/1.1 400 ", 0), 0u) << *out;
    EXPECT_NE(out->find("not valid JSON"), std::string::npos);
}

TEST_F(ServerTest, RequestSplitAcrossManyWritesIsAssembled) {
    int fd = raw_connect();
    const std::string text = "PUT /echo HTTP/1.1\r\nContent-Length: 9\r\nConnection: close\r\n\r\n{\"a\":[1]}";
    for (char c : text) {
        ASSERT_EQ(send(fd, &c, 1, MSG_NOSIGNAL), 1);
        std::this_thread::sleep_for(1ms);
    }
    std::string out = read_until_close(fd);
    close(fd);
    EXPECT_EQ(out.rfind("HTTP/1.1 200 OK\r\n", 0), 0u) << out;
    EXPECT_NE(out.find("{\"got\":{\"a\":[1]},\"query\":\"\"}"), std::string::npos) << out;
}

TEST_F(ServerTest, KeepAliveServesSeveralRequestsOnOneConnection) {
    int fd = raw_connect();
    std::string two = "GET /ping HTTP/1.1\r\n\r\nGET /ping HTTP/1.1\r\nConnection: close\r\n\r\n";
    ASSERT_EQ(send(fd, two.data(), two.size(), MSG_NOSIGNAL), ssize_t(two.size()));
    std::string out = read_until_close(fd);  // returns because the second asks to close
    close(fd);
    size_t first = out.find("HTTP/1.1 200 OK");
    ASSERT_NE(first, std::string::npos);
    EXPECT_NE(out.find("HTTP/1.1 200 OK", first + 1), std::string::npos) << out;
}

TEST_F(ServerTest, Http10ClosesAfterTheResponse) {
    auto out = exchange_raw(path_, "GET /ping HTTP/1.0\r\n\r\n", 5s);
    ASSERT_TRUE(out);
    EXPECT_NE(out->find("\"pong\":true"), std::string::npos);
}

TEST_F(ServerTest, ExpectContinueGets100First) {
    int fd = raw_connect();
    std::string head = "PUT /echo HTTP/1.1\r\nExpect: 100-continue\r\nContent-Length: 2\r\nConnection: close\r\n\r\n";
    ASSERT_EQ(send(fd, head.data(), head.size(), MSG_NOSIGNAL), ssize_t(head.size()));
    char buf[64] = {};
    timeval tv{5, 0};
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
    ssize_t n = recv(fd, buf, sizeof(buf) - 1, 0);
    ASSERT_GT(n, 0);
    EXPECT_EQ(std::string(buf, size_t(n)), "HTTP/1.1 100 Continue\r\n\r\n");
    ASSERT_EQ(send(fd, "{}", 2, MSG_NOSIGNAL), 2);
    std::string out = read_until_close(fd);
    close(fd);
    EXPECT_EQ(out.rfind("HTTP/1.1 200 OK", 0), 0u) << out;
}

TEST_F(ServerTest, ClientVanishingMidRequestIsHarmless) {
    for (int i = 0; i < 20; ++i) {
        int fd = raw_connect();
        std::string part = "PUT /echo HTTP/1.1\r\nContent-Length: 100\r\n\r\n{";
        (void)send(fd, part.data(), part.size(), MSG_NOSIGNAL);
        close(fd);
    }
    auto r = request(path_, "GET", "/ping");
    ASSERT_TRUE(r);
    EXPECT_EQ(r->status, 200);
}

TEST_F(ServerTest, AsyncResponderAnswersFromAnotherThreadOnce) {
    auto r = request(path_, "PUT", "/later");
    ASSERT_TRUE(r) << r.error().message();
    EXPECT_EQ(r->status, 200);
    EXPECT_EQ(r->json["late"], true);
}

TEST_F(ServerTest, OnSentRunsAfterTheResponse) {
    auto r = request(path_, "PUT", "/sent");
    ASSERT_TRUE(r);
    EXPECT_EQ(r->status, 204);
    for (int i = 0; i < 500 && !sent_; ++i) std::this_thread::sleep_for(2ms);
    EXPECT_TRUE(sent_);
}

TEST_F(ServerTest, StreamDeliversLines) {
    std::vector<std::string> lines;
    auto r = stream(
        path_, "GET", "/events", std::nullopt,
        [&](const std::string& l) {
            lines.push_back(l);
            return true;
        },
        5s);
    ASSERT_TRUE(r) << r.error().message();
    EXPECT_EQ(r->status, 200);
    ASSERT_EQ(lines.size(), 3u);
    EXPECT_EQ(lines[2], "{\"event\":2}");
}

TEST_F(ServerTest, ClientTimesOutOnASilentServer) {
    // A listener nobody serves: connect succeeds (backlog), no answer comes.
    std::string silent = dir_.file("silent.sock");
    auto fd = listen_unix(silent);
    ASSERT_TRUE(fd);
    auto r = request(silent, "GET", "/ping", std::nullopt, 200ms);
    ASSERT_FALSE(r);
    EXPECT_NE(r.error().message().find("timed out"), std::string::npos) << r.error().message();
}

TEST_F(ServerTest, TooManyConnectionsGet503) {
    ServerOptions options;
    options.max_connections = 2;
    start(options);
    // Two kept-alive connections, each proven accepted by an answered request.
    int a = raw_connect(), b = raw_connect();
    for (int fd : {a, b}) {
        std::string ping = "GET /ping HTTP/1.1\r\n\r\n";
        ASSERT_EQ(send(fd, ping.data(), ping.size(), MSG_NOSIGNAL), ssize_t(ping.size()));
        std::string got;
        char buf[512];
        while (got.find("}") == std::string::npos) {
            ssize_t n = recv(fd, buf, sizeof(buf), 0);
            ASSERT_GT(n, 0);
            got.append(buf, size_t(n));
        }
    }
    auto out = exchange_raw(path_, "GET /ping HTTP/1.1\r\n\r\n");
    close(a);
    close(b);
    ASSERT_TRUE(out) << out.error().message();
    EXPECT_EQ(out->rfind("HTTP/1.1 503 ", 0), 0u) << *out;
}

TEST(Client, MissingSocketIsAClearError) {
    auto r = request("/nonexistent/kvmkit.sock", "GET", "/ping");
    ASSERT_FALSE(r);
    EXPECT_EQ(r.error().message(), "connect '/nonexistent/kvmkit.sock': No such file or directory");
}

}  // namespace
}  // namespace kvmkit::http
