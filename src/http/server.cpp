#include "http/server.hpp"

#include <sys/epoll.h>
#include <sys/socket.h>

#include <cerrno>
#include <cstring>
#include <deque>
#include <mutex>

#include "base/log.hpp"

namespace kvmkit::http {

struct Responder::LoopRef {
    std::mutex mutex;
    event::EventLoop* loop = nullptr;  // null once the server is destroyed
};

// One client connection. Lives in Server::connections_; Responders and the
// loop callback hold weak references, so a late answer to a client that left
// is simply dropped.
class Connection : public std::enable_shared_from_this<Connection> {
public:
    Connection(Server& server, base::UniqueFd fd, Peer peer)
        : server_(server), fd_(std::move(fd)), peer_(peer), parser_(server.options_.limits) {}

    int fd() const { return fd_.get(); }
    bool closed() const { return closed_; }

    void on_event(uint32_t events) {
        auto self = shared_from_this();
        if (events & (EPOLLIN | EPOLLRDHUP | EPOLLHUP | EPOLLERR)) read_available();
        pump();
    }

    void deliver(uint64_t sequence, Response response) {
        if (closed_ || !busy_ || streaming_ || sequence != sequence_) return;
        busy_ = false;
        bool close = !keep_alive_;
        if (close) close_after_ = true;
        queue(serialize(response, close), std::move(response.on_sent));
        if (!in_pump_) pump();
    }

    void begin_stream(uint64_t sequence, int status, const std::string& content_type) {
        if (closed_ || !busy_ || streaming_ || sequence != sequence_) return;
        streaming_ = true;
        queue("HTTP/1.1 " + std::to_string(status) + " " + reason_phrase(status) + "\r\nContent-Type: " + content_type +
                  "\r\nConnection: close\r\n\r\n",
              nullptr);
        if (!in_pump_) pump();
    }

    void stream_write(uint64_t sequence, std::string data) {
        if (closed_ || !streaming_ || sequence != sequence_) return;
        queue(std::move(data), nullptr);
        if (!in_pump_) pump();
    }

    void stream_end(uint64_t sequence) {
        if (closed_ || !streaming_ || sequence != sequence_) return;
        streaming_ = false;
        busy_ = false;
        close_after_ = true;
        if (!in_pump_) pump();
    }

    void mark_closed() {
        closed_ = true;
        fd_.reset();
    }

private:
    struct Pending {
        std::string bytes;
        size_t offset = 0;
        std::function<void()> on_sent;
    };

    void read_available() {
        char buf[4096];
        for (;;) {
            ssize_t n = recv(fd_.get(), buf, sizeof(buf), MSG_DONTWAIT);
            if (n > 0) {
                // After an error or a final response, input is drained and dropped.
                if (close_after_) continue;
                parser_.feed(std::string_view(buf, size_t(n)));
                const Limits& l = server_.options_.limits;
                if (parser_.buffered() > l.max_head_bytes + l.max_body_bytes) {
                    // Pipelined requests piling up behind a slow handler.
                    reset_ = true;
                    return;
                }
                continue;
            }
            if (n == 0) {
                peer_eof_ = true;
                return;
            }
            if (errno == EINTR) continue;
            if (errno != EAGAIN && errno != EWOULDBLOCK) reset_ = true;
            return;
        }
    }

    // Parses and dispatches buffered requests, writes output, closes when done.
    void pump() {
        if (closed_) return;
        auto self = shared_from_this();
        in_pump_ = true;
        while (!reset_ && !busy_ && !close_after_) {
            if (parser_.take_continue_request()) queue("HTTP/1.1 100 Continue\r\n\r\n", nullptr);
            auto state = parser_.parse();
            if (state == RequestParser::State::Complete) {
                Request request = parser_.take();
                std::string connection = to_lower(request.header("connection"));
                keep_alive_ = request.minor_version >= 1 ? connection != "close" : connection == "keep-alive";
                busy_ = true;
                ++sequence_;
                Responder responder;
                responder.connection_ = weak_from_this();
                responder.loop_ = server_.loop_ref_;
                responder.sequence_ = sequence_;
                server_.router_.dispatch(request, Context{peer_}, responder);
                continue;
            }
            if (state == RequestParser::State::Error) {
                LOG_DEBUG("http: bad request from pid %d: %s", int(peer_.pid), parser_.error_message().c_str());
                queue(serialize(Response::error(parser_.error_status(), parser_.error_message()), true), nullptr);
                close_after_ = true;
                break;
            }
            if (peer_eof_) close_after_ = true;  // nothing more can arrive
            break;
        }
        in_pump_ = false;
        if (!reset_) flush();
        if (closed_) return;
        bool done = reset_ || (peer_eof_ && streaming_) || (out_.empty() && close_after_);
        if (done) server_.close_connection(fd_.get());
    }

    void queue(std::string bytes, std::function<void()> on_sent) {
        out_.push_back(Pending{std::move(bytes), 0, std::move(on_sent)});
    }

    void flush() {
        while (!out_.empty() && !closed_) {
            Pending& p = out_.front();
            if (p.offset < p.bytes.size()) {
                ssize_t n =
                    send(fd_.get(), p.bytes.data() + p.offset, p.bytes.size() - p.offset, MSG_NOSIGNAL | MSG_DONTWAIT);
                if (n < 0) {
                    if (errno == EINTR) continue;
                    if (errno != EAGAIN && errno != EWOULDBLOCK) reset_ = true;  // EPIPE, ECONNRESET
                    return;                                                      // EPOLLOUT (edge) resumes us
                }
                p.offset += size_t(n);
                if (p.offset < p.bytes.size()) continue;
            }
            auto on_sent = std::move(p.on_sent);
            out_.pop_front();
            if (on_sent) on_sent();
        }
    }

    Server& server_;
    base::UniqueFd fd_;
    Peer peer_;
    RequestParser parser_;
    std::deque<Pending> out_;
    uint64_t sequence_ = 0;
    bool busy_ = false;       // a handler has not answered yet
    bool streaming_ = false;  // a streamed body is being written
    bool keep_alive_ = true;
    bool close_after_ = false;  // close once the output has drained
    bool peer_eof_ = false;
    bool reset_ = false;  // unusable: close at once, drop output
    bool in_pump_ = false;
    bool closed_ = false;
};

// ---- Responder ----

template <typename Fn>
void Responder::run_on_loop(Fn fn) const {
    if (!loop_) return;
    std::unique_lock lock(loop_->mutex);
    if (!loop_->loop) return;
    if (loop_->loop->on_loop_thread()) {
        // The server is only destroyed on this thread: safe without the lock,
        // which must not be held here (fn may dispatch the next request).
        lock.unlock();
        if (auto c = connection_.lock()) fn(*c);
        return;
    }
    loop_->loop->post([weak = connection_, fn]() mutable {
        if (auto c = weak.lock()) fn(*c);
    });
}

void Responder::respond(Response response) const {
    uint64_t seq = sequence_;
    run_on_loop([seq, response = std::move(response)](Connection& c) mutable { c.deliver(seq, std::move(response)); });
}

void Responder::begin_stream(int status, const std::string& content_type) const {
    uint64_t seq = sequence_;
    run_on_loop([seq, status, content_type](Connection& c) { c.begin_stream(seq, status, content_type); });
}

void Responder::write(std::string data) const {
    uint64_t seq = sequence_;
    run_on_loop([seq, data = std::move(data)](Connection& c) mutable { c.stream_write(seq, std::move(data)); });
}

void Responder::end() const {
    uint64_t seq = sequence_;
    run_on_loop([seq](Connection& c) { c.stream_end(seq); });
}

bool Responder::connected() const {
    auto c = connection_.lock();
    if (!c || !loop_) return false;
    std::lock_guard lock(loop_->mutex);
    return loop_->loop != nullptr && !c->closed();
}

// ---- Router ----

Router& Router::add(const std::string& method, const std::string& path, Handler handler) {
    return add_async(method, path, [handler = std::move(handler)](const Request& r, const Context& c, Responder resp) {
        resp.respond(handler(r, c));
    });
}

Router& Router::add_async(const std::string& method, const std::string& path, AsyncHandler handler) {
    routes_[path][method] = std::move(handler);
    return *this;
}

void Router::dispatch(const Request& request, const Context& context, Responder responder) const {
    auto path = routes_.find(request.path);
    if (path == routes_.end()) {
        responder.respond(Response::error(404, "no such endpoint: " + request.path));
        return;
    }
    auto handler = path->second.find(request.method);
    if (handler == path->second.end()) {
        std::string allow;
        for (const auto& [method, _] : path->second) allow += (allow.empty() ? "" : ", ") + method;
        Response r = Response::error(405, request.path + " does not accept " + request.method + " (use " + allow + ")");
        r.headers["Allow"] = allow;
        responder.respond(std::move(r));
        return;
    }
    try {
        handler->second(request, context, responder);
    } catch (const nlohmann::json::exception& e) {
        responder.respond(Response::error(400, std::string("bad request body: ") + e.what()));
    } catch (const std::exception& e) {
        LOG_ERROR("http: handler for %s %s failed: %s", request.method.c_str(), request.path.c_str(), e.what());
        responder.respond(Response::error(500, std::string("internal error: ") + e.what()));
    }
}

// ---- Server ----

Server::Server(event::EventLoop& loop, base::UniqueFd listen_fd, Router router, ServerOptions options)
    : loop_(loop),
      loop_ref_(std::make_shared<Responder::LoopRef>()),
      listen_fd_(std::move(listen_fd)),
      router_(std::move(router)),
      options_(options) {
    loop_ref_->loop = &loop;
}

base::Result<std::unique_ptr<Server>> Server::create(event::EventLoop& loop, base::UniqueFd listen_fd, Router router,
                                                     ServerOptions options) {
    if (!listen_fd.valid()) return base::fail("http server: no listening socket");
    std::unique_ptr<Server> server(new Server(loop, std::move(listen_fd), std::move(router), options));
    Server* s = server.get();
    TRY_CTX(loop.add(s->listen_fd_.get(), [s](uint32_t) { s->on_accept(); }), "http server");
    return server;
}

Server::~Server() {
    {
        std::lock_guard lock(loop_ref_->mutex);
        loop_ref_->loop = nullptr;
    }
    (void)loop_.remove(listen_fd_.get());
    for (auto& [fd, c] : connections_) {
        (void)loop_.remove(fd);
        c->mark_closed();
    }
    connections_.clear();
}

void Server::on_accept() {
    static base::RateLimiter limiter;
    for (;;) {
        int fd = accept4(listen_fd_.get(), nullptr, nullptr, SOCK_NONBLOCK | SOCK_CLOEXEC);
        if (fd < 0) {
            if (errno == EINTR || errno == ECONNABORTED) continue;
            if (errno != EAGAIN && errno != EWOULDBLOCK && limiter.allow())
                LOG_WARN("http: accept: %s", strerror(errno));
            return;
        }
        base::UniqueFd conn(fd);
        if (connections_.size() >= options_.max_connections) {
            std::string busy = serialize(Response::error(503, "too many connections"), true);
            (void)send(fd, busy.data(), busy.size(), MSG_NOSIGNAL | MSG_DONTWAIT);
            continue;
        }
        Peer peer;
        ucred cred{};
        socklen_t len = sizeof(cred);
        if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cred, &len) == 0) peer = Peer{cred.pid, cred.uid, cred.gid};
        auto c = std::make_shared<Connection>(*this, std::move(conn), peer);
        std::weak_ptr<Connection> weak = c;
        auto added = loop_.add(
            fd,
            [weak](uint32_t events) {
                if (auto c = weak.lock()) c->on_event(events);
            },
            EPOLLIN | EPOLLOUT | EPOLLRDHUP | EPOLLET);
        if (!added) {
            if (limiter.allow()) LOG_WARN("http: %s", added.error().message().c_str());
            continue;
        }
        connections_.emplace(fd, std::move(c));
    }
}

void Server::close_connection(int fd) {
    auto it = connections_.find(fd);
    if (it == connections_.end()) return;
    (void)loop_.remove(fd);
    it->second->mark_closed();
    connections_.erase(it);
}

// ---- ServerThread ----

base::Result<std::unique_ptr<ServerThread>> ServerThread::start(base::UniqueFd listen_fd, Router router,
                                                                ServerOptions options) {
    std::unique_ptr<ServerThread> t(new ServerThread());
    t->loop_ = TRY(event::EventLoop::create());
    t->server_ = TRY(Server::create(*t->loop_, std::move(listen_fd), std::move(router), options));
    t->loop_->start();
    return t;
}

ServerThread::~ServerThread() {
    if (loop_) loop_->stop();
    server_.reset();
    loop_.reset();
}

}  // namespace kvmkit::http
