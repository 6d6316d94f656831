// HTTP/1.1 server on a listening UNIX socket, driven by an event::EventLoop.
//
// Non-blocking throughout: a slow or hostile client never blocks the loop or
// other clients. Malformed requests get a 4xx/5xx with {"error": "..."} and
// the connection is closed; they never stop the process (writes use
// MSG_NOSIGNAL, so a vanished client cannot raise SIGPIPE either).
// Keep-alive: connections stay open for further requests unless the client
// sends "Connection: close" or speaks HTTP/1.0.
//
// Threading: handlers run on the loop thread. Destroy a Server on its loop
// thread or after the loop has stopped (ServerThread does the latter).
#pragma once

#include <sys/types.h>

#include <functional>
#include <map>
#include <memory>
#include <string>
#include <unordered_map>

#include "base/result.hpp"
#include "base/unique_fd.hpp"
#include "event/event_loop.hpp"
#include "http/message.hpp"
#include "http/parser.hpp"

namespace kvmkit::http {

class Connection;

// Answers one request later, from any thread (e.g. after a VM operation
// completes). Copyable; the first respond() wins, later ones are ignored.
// If the client has gone away meanwhile, the response is dropped.
class Responder {
public:
    void respond(Response response) const;

    // Streaming: sends a head without Content-Length (the body runs until the
    // connection closes), then any number of writes, then end(). For event
    // feeds such as newline-delimited JSON.
    void begin_stream(int status, const std::string& content_type = "application/x-ndjson") const;
    void write(std::string data) const;
    void end() const;

    // False once the client has disconnected or the server has gone.
    bool connected() const;

    struct LoopRef;  // the server's loop while the server lives

private:
    friend class Connection;
    template <typename Fn>
    void run_on_loop(Fn fn) const;
    std::weak_ptr<Connection> connection_;
    std::shared_ptr<LoopRef> loop_;
    uint64_t sequence_ = 0;  // which request on the connection this answers
};

// Peer identity from SO_PEERCRED (taken when the connection is accepted).
struct Peer {
    pid_t pid = 0;
    uid_t uid = uid_t(-1);
    gid_t gid = gid_t(-1);
};

struct Context {
    Peer peer;
};

using Handler = std::function<Response(const Request&, const Context&)>;
using AsyncHandler = std::function<void(const Request&, const Context&, Responder)>;

// Maps (method, path) to handlers; unknown path -> 404, known path with
// another method -> 405 with an Allow header.
class Router {
public:
    Router& add(const std::string& method, const std::string& path, Handler handler);
    Router& add_async(const std::string& method, const std::string& path, AsyncHandler handler);

    // Runs the matching handler (or answers 404/405). Exceptions from a
    // handler become 400 (nlohmann::json type errors: a body of the wrong
    // shape) or 500.
    void dispatch(const Request& request, const Context& context, Responder responder) const;

private:
    std::map<std::string, std::map<std::string, AsyncHandler>> routes_;  // path -> method -> handler
};

struct ServerOptions {
    Limits limits;
    size_t max_connections = 64;  // more are answered 503 and closed
};

class Server {
public:
    static base::Result<std::unique_ptr<Server>> create(event::EventLoop& loop, base::UniqueFd listen_fd, Router router,
                                                        ServerOptions options = {});
    ~Server();
    Server(const Server&) = delete;
    Server& operator=(const Server&) = delete;

    size_t connection_count() const { return connections_.size(); }

private:
    friend class Connection;
    Server(event::EventLoop& loop, base::UniqueFd listen_fd, Router router, ServerOptions options);
    void on_accept();
    void close_connection(int fd);

    event::EventLoop& loop_;
    std::shared_ptr<Responder::LoopRef> loop_ref_;
    base::UniqueFd listen_fd_;
    Router router_;
    ServerOptions options_;
    std::unordered_map<int, std::shared_ptr<Connection>> connections_;
};

// A Server on its own EventLoop thread, for processes whose main loop must
// not wait on control requests (kvmkit-vmm) or that have none.
class ServerThread {
public:
    static base::Result<std::unique_ptr<ServerThread>> start(base::UniqueFd listen_fd, Router router,
                                                             ServerOptions options = {});
    ~ServerThread();  // stops the thread, closes all connections
    event::EventLoop& loop() { return *loop_; }

private:
    ServerThread() = default;
    std::unique_ptr<event::EventLoop> loop_;
    std::unique_ptr<Server> server_;
};

}  // namespace kvmkit::http
