#include "http/unix_socket.hpp"

#include <fcntl.h>
#include <grp.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <cerrno>
#include <charconv>
#include <cstring>
#include <vector>

namespace kvmkit::http {

namespace {

base::Result<sockaddr_un> make_address(const std::string& path) {
    sockaddr_un addr{};
    addr.sun_family = AF_UNIX;
    if (path.empty()) return base::fail("socket path is empty");
    if (path.size() >= sizeof(addr.sun_path))
        return base::fail("socket path '" + path + "' is too long (" + std::to_string(path.size()) + " bytes, limit " +
                          std::to_string(sizeof(addr.sun_path) - 1) + ")");
    std::memcpy(addr.sun_path, path.data(), path.size());
    return addr;
}

// Removes `path` if it is a socket nobody listens on any more.
base::Result<void> remove_stale_socket(const std::string& path, const sockaddr_un& addr) {
    struct stat st {};
    if (lstat(path.c_str(), &st) < 0) {
        if (errno == ENOENT) return base::ok();
        return base::fail_errno("stat '" + path + "'");
    }
    if (!S_ISSOCK(st.st_mode)) return base::fail("'" + path + "' exists and is not a socket; not replacing it");
    int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0) return base::fail_errno("socket");
    base::UniqueFd probe(fd);
    if (connect(fd, reinterpret_cast<const sockaddr*>(&addr), sizeof(addr)) == 0)
        return base::fail("socket '" + path + "' is in use by a running process");
    if (errno != ECONNREFUSED) return base::fail_errno("probe '" + path + "'");
    if (unlink(path.c_str()) < 0 && errno != ENOENT) return base::fail_errno("remove stale socket '" + path + "'");
    return base::ok();
}

}  // namespace

base::Result<base::UniqueFd> listen_unix(const std::string& path, const ListenOptions& options) {
    sockaddr_un addr = TRY(make_address(path));
    TRY(remove_stale_socket(path, addr));
    int raw = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (raw < 0) return base::fail_errno("socket");
    base::UniqueFd fd(raw);
    if (bind(raw, reinterpret_cast<const sockaddr*>(&addr), sizeof(addr)) < 0)
        return base::fail_errno("bind '" + path + "'");
    // Until listen(), connecting fails with ECONNREFUSED: tighten first.
    auto undo = [&](base::Error e) {
        unlink(path.c_str());
        return base::unexpected(std::move(e));
    };
    if (chmod(path.c_str(), options.mode) < 0) return undo(base::Error::from_errno("chmod '" + path + "'"));
    if (options.group && chown(path.c_str(), uid_t(-1), *options.group) < 0)
        return undo(base::Error::from_errno("chown '" + path + "' to group " + std::to_string(*options.group)));
    if (listen(raw, options.backlog) < 0) return undo(base::Error::from_errno("listen '" + path + "'"));
    return fd;
}

base::Result<base::UniqueFd> connect_unix(const std::string& path, std::chrono::milliseconds timeout,
                                          bool nonblocking) {
    sockaddr_un addr = TRY(make_address(path));
    // Non-blocking, so a full backlog gives EAGAIN instead of hanging forever.
    int raw = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
    if (raw < 0) return base::fail_errno("socket");
    base::UniqueFd fd(raw);
    auto deadline = std::chrono::steady_clock::now() + timeout;
    for (;;) {
        if (connect(raw, reinterpret_cast<const sockaddr*>(&addr), sizeof(addr)) == 0) break;
        if (errno == EINTR) continue;
        if (errno != EAGAIN) return base::fail_errno("connect '" + path + "'");
        if (std::chrono::steady_clock::now() >= deadline)
            return base::fail("connect '" + path + "': timed out (the server does not accept connections)");
        usleep(10 * 1000);
    }
    if (!nonblocking && fcntl(raw, F_SETFL, fcntl(raw, F_GETFL) & ~O_NONBLOCK) < 0) return base::fail_errno("fcntl");
    return fd;
}

base::Result<gid_t> group_id(const std::string& name) {
    gid_t gid = 0;
    auto [end, ec] = std::from_chars(name.data(), name.data() + name.size(), gid);
    if (!name.empty() && ec == std::errc() && end == name.data() + name.size()) return gid;
    std::vector<char> buf(16384);
    group g{};
    group* out = nullptr;
    int err = getgrnam_r(name.c_str(), &g, buf.data(), buf.size(), &out);
    if (err != 0) return base::fail_errno("look up group '" + name + "'", err);
    if (!out) return base::fail("no such group '" + name + "'");
    return out->gr_gid;
}

}  // namespace kvmkit::http
