#include "vmm/control_api.hpp"

namespace kvmkit::vmm {

namespace {

http::Response answer(const ControlResult& r) {
    if (r.status == 204) return http::Response::no_content();
    return http::Response::error(r.status, r.error);
}

// Action endpoints take no body, but tools (Cloud Hypervisor's ch-remote,
// curl -d '{}') may send an empty JSON object: accept {} and nothing else.
bool body_acceptable(const http::Request& req) {
    return req.json.is_null() || req.json == http::Json::object();
}

http::Response bad_body(const http::Request& req) {
    return http::Response::error(400, req.path + " takes no request body");
}

}  // namespace

http::Router make_control_router(ControlTarget& t) {
    http::Router r;
    const std::string v1 = "/api/v1/";
    r.add("GET", v1 + "vmm.ping",
          [&t](const http::Request&, const http::Context&) { return http::Response::json(200, t.ping()); });
    r.add("GET", v1 + "vm.info",
          [&t](const http::Request&, const http::Context&) { return http::Response::json(200, t.info()); });
    r.add("GET", v1 + "vm.counters",
          [&t](const http::Request&, const http::Context&) { return http::Response::json(200, t.counters()); });
    auto action = [&r, &v1](const std::string& name, std::function<ControlResult()> fn) {
        r.add("PUT", v1 + name, [fn](const http::Request& req, const http::Context&) {
            if (!body_acceptable(req)) return bad_body(req);
            return answer(fn());
        });
    };
    action("vm.pause", [&t] { return t.pause(); });
    action("vm.resume", [&t] { return t.resume(); });
    action("vm.power-button", [&t] { return t.power_button(); });
    action("vm.reboot", [&t] { return t.reboot(); });
    for (bool vmm : {false, true}) {
        r.add_async("PUT", v1 + (vmm ? "vmm.shutdown" : "vm.shutdown"),
                    [&t, vmm](const http::Request& req, const http::Context&, http::Responder resp) {
                        if (!body_acceptable(req)) return resp.respond(bad_body(req));
                        t.shutdown(vmm, [&t, resp](ControlResult result) {
                            http::Response response = answer(result);
                            response.on_sent = [&t] { t.shutdown_answered(); };
                            resp.respond(std::move(response));
                        });
                    });
    }
    return r;
}

}  // namespace kvmkit::vmm
