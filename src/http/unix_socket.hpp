// UNIX stream sockets for the control APIs: listening with a chosen mode and
// group, stale-socket cleanup, and connecting.
#pragma once

#include <sys/types.h>

#include <chrono>
#include <optional>
#include <string>

#include "base/result.hpp"
#include "base/unique_fd.hpp"

namespace kvmkit::http {

struct ListenOptions {
    mode_t mode = 0600;          // permission bits of the socket file
    std::optional<gid_t> group;  // chown to this group (with mode 0660, a read-only group)
    int backlog = 32;
};

// Creates a listening, non-blocking, close-on-exec socket at `path`.
// A socket file left by a dead process (connect says ECONNREFUSED) is
// removed; a live one ("in use") or a non-socket file at `path` is an error.
// The mode and group are set before listen(), so nobody can connect through
// wider permissions in between.
base::Result<base::UniqueFd> listen_unix(const std::string& path, const ListenOptions& options = {});

// Connects (close-on-exec). A listener whose backlog is full makes connect
// retry until `timeout`. The returned fd is blocking unless `nonblocking`.
// Errors name the path: "connect '/run/x.sock': Permission denied".
base::Result<base::UniqueFd> connect_unix(const std::string& path,
                                          std::chrono::milliseconds timeout = std::chrono::seconds(5),
                                          bool nonblocking = false);

// Looks up a group by name ("kvmkit") or number ("1000").
base::Result<gid_t> group_id(const std::string& name);

}  // namespace kvmkit::http
