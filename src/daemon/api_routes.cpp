#include "daemon/api_routes.hpp"

#include <unistd.h>

#include <functional>
#include <thread>

namespace kvmkit::daemon {

using http::Json;
using http::Response;

namespace {

Response to_response(const Reply& r) {
    if (r.status == 200 && r.body.empty()) return Response::json(200, Json::object());
    return Response::json(r.status, r.body);
}

int hex_value(char c) {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
}

// The "name" of a PUT body ({"name": "web1", ...}); throws json errors (-> 400).
std::string body_name(const http::Request& req) {
    if (!req.json.is_object() || !req.json.contains("name") || !req.json["name"].is_string())
        throw std::invalid_argument("body must be a JSON object with a string \"name\"");
    return req.json["name"].get<std::string>();
}

bool body_bool(const http::Request& req, const char* key) {
    if (!req.json.is_object() || !req.json.contains(key)) return false;
    if (!req.json[key].is_boolean()) throw std::invalid_argument(std::string("\"") + key + "\" must be true or false");
    return req.json[key].get<bool>();
}

// Runs `fn` on a thread of its own and answers with its reply: operations
// wait for VMMs and must not stall the server's loop (or other clients).
void off_loop(http::Responder responder, std::function<Reply()> fn) {
    std::thread([responder, fn = std::move(fn)] {
        Reply r;
        try {
            r = fn();
        } catch (const std::exception& e) {
            r = Reply::error(400, e.what());
        }
        responder.respond(to_response(r));
    }).detach();
}

using Op = Reply (Daemon::*)(const std::string&);

}  // namespace

std::string query_param(const std::string& query, const std::string& key) {
    size_t pos = 0;
    while (pos <= query.size()) {
        size_t amp = query.find('&', pos);
        std::string part = query.substr(pos, amp == std::string::npos ? std::string::npos : amp - pos);
        auto eq = part.find('=');
        if (part.substr(0, eq) == key) {
            std::string raw = eq == std::string::npos ? "" : part.substr(eq + 1), out;
            for (size_t i = 0; i < raw.size(); ++i) {
                if (raw[i] == '+') {
                    out += ' ';
                } else if (raw[i] == '%' && i + 2 < raw.size() + 0 && hex_value(raw[i + 1]) >= 0 &&
                           hex_value(raw[i + 2]) >= 0) {
                    out += static_cast<char>(hex_value(raw[i + 1]) * 16 + hex_value(raw[i + 2]));
                    i += 2;
                } else {
                    out += raw[i];
                }
            }
            return out;
        }
        if (amp == std::string::npos) break;
        pos = amp + 1;
    }
    return "";
}

http::Router make_router(Daemon& d, bool read_only) {
    http::Router router;
    const std::string v1 = "/api/v1/";

    // Queries: both sockets.
    router.add("GET", v1 + "version",
               [&d](const http::Request&, const http::Context&) { return to_response(d.version()); });
    router.add_async("GET", v1 + "domains", [&d](const http::Request&, const http::Context&, http::Responder r) {
        off_loop(r, [&d] { return d.list(); });
    });
    router.add_async("GET", v1 + "domain.info",
                     [&d](const http::Request& req, const http::Context&, http::Responder r) {
                         off_loop(r, [&d, name = query_param(req.query, "name")] { return d.info(name); });
                     });
    router.add_async("GET", v1 + "domain.config",
                     [&d](const http::Request& req, const http::Context&, http::Responder r) {
                         off_loop(r, [&d, name = query_param(req.query, "name")] { return d.config(name); });
                     });
    router.add_async("GET", v1 + "events", [&d](const http::Request& req, const http::Context&, http::Responder r) {
        std::string after = query_param(req.query, "after"), timeout = query_param(req.query, "timeout");
        off_loop(r, [&d, after, timeout] {
            std::optional<uint64_t> a;
            if (!after.empty()) a = std::stoull(after);
            long secs = timeout.empty() ? 30 : std::stol(timeout);
            if (secs < 0 || secs > 3600) return Reply::error(400, "timeout: use 0 to 3600 seconds");
            return d.events(a, std::chrono::seconds(secs));
        });
    });

    // Changes: the read-write socket only. It is 0600 root, so only root gets
    // here; the peer check is a second line should its mode be widened.
    auto change = [&d, read_only](std::function<Reply(const http::Request&)> fn) -> http::AsyncHandler {
        return [&d, read_only, fn](const http::Request& req, const http::Context& ctx, http::Responder r) {
            (void)d;
            if (read_only) {
                r.respond(Response::error(
                    403, "read-only connection: " + req.path.substr(8) + " needs the read-write socket (root)"));
                return;
            }
            if (ctx.peer.uid != 0 && ctx.peer.uid != ::geteuid()) {
                r.respond(Response::error(
                    403, "permission denied: uid " + std::to_string(ctx.peer.uid) + " may not change VMs"));
                return;
            }
            off_loop(r, [fn, req] { return fn(req); });
        };
    };
    router.add_async("PUT", v1 + "domain.define",
                     change([&d](const http::Request& req) { return d.define(req.body); }));
    router.add_async("PUT", v1 + "domain.undefine", change([&d](const http::Request& req) {
                         return d.undefine(body_name(req), body_bool(req, "force"));
                     }));
    router.add_async("PUT", v1 + "domain.autostart", change([&d](const http::Request& req) {
                         if (!req.json.is_object() || !req.json.contains("autostart"))
                             throw std::invalid_argument("body needs \"autostart\": true or false");
                         return d.set_autostart(body_name(req), body_bool(req, "autostart"));
                     }));
    const std::pair<const char*, Op> ops[] = {
        {"start", &Daemon::start},   {"shutdown", &Daemon::shutdown}, {"destroy", &Daemon::destroy},
        {"reboot", &Daemon::reboot}, {"reset", &Daemon::reset},       {"suspend", &Daemon::suspend},
        {"resume", &Daemon::resume},
    };
    for (const auto& [verb, op] : ops)
        router.add_async("PUT", v1 + "domain." + verb,
                         change([&d, op = op](const http::Request& req) { return (d.*op)(body_name(req)); }));
    return router;
}

}  // namespace kvmkit::daemon
