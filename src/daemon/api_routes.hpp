// kvmkitd's HTTP/JSON API (docs/management.md lists every route):
//
//   GET /api/v1/version
//   GET /api/v1/domains                        list, every defined VM
//   GET /api/v1/domain.info?name=N             state, reason, pid, autostart, sockets, ...
//   GET /api/v1/domain.config?name=N           the definition (docs/vm-config.md)
//   GET /api/v1/events?after=SEQ&timeout=SECS  long poll: events after SEQ
//   PUT /api/v1/domain.define                  body: the VM document
//   PUT /api/v1/domain.undefine                {"name", "force"}
//   PUT /api/v1/domain.{start,shutdown,destroy,reboot,reset,suspend,resume}  {"name"}
//   PUT /api/v1/domain.autostart               {"name", "autostart": bool}
//
// The read-only socket gets the same GET routes; its PUT routes answer 403.
// Handlers that may wait (start waits for the VMM, destroy for its exit, a
// long poll for an event) run on a thread of their own, never on the
// server's loop thread.
#pragma once

#include "daemon/daemon.hpp"
#include "http/server.hpp"

namespace kvmkit::daemon {

http::Router make_router(Daemon& daemon, bool read_only);

// Decoded value of `key` in a query string ("name=a&x=1"), or "" when absent.
std::string query_param(const std::string& query, const std::string& key);

}  // namespace kvmkit::daemon
