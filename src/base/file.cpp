#include "base/file.hpp"

#include <fcntl.h>
#include <limits.h>
#include <sys/stat.h>
#include <unistd.h>

#include "base/unique_fd.hpp"

namespace kvmkit::base {

Result<std::vector<uint8_t>> read_file(const std::string& path, size_t limit) {
    UniqueFd fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC));
    if (!fd) return fail_errno("open '" + path + "'");
    struct stat st {};
    if (::fstat(fd.get(), &st) < 0) return fail_errno("stat '" + path + "'");
    if (S_ISDIR(st.st_mode)) return fail("'" + path + "' is a directory");
    std::vector<uint8_t> data;
    if (S_ISREG(st.st_mode)) {
        if (static_cast<uint64_t>(st.st_size) > limit)
            return fail("'" + path + "' is too large (" + std::to_string(st.st_size) + " bytes)");
        data.reserve(st.st_size);
    }
    uint8_t buf[65536];
    for (;;) {
        ssize_t n = ::read(fd.get(), buf, sizeof buf);
        if (n < 0) {
            if (errno == EINTR) continue;
            return fail_errno("read '" + path + "'");
        }
        if (n == 0) break;
        if (data.size() + n > limit) return fail("'" + path + "' is too large");
        data.insert(data.end(), buf, buf + n);
    }
    return data;
}

Result<std::string> read_text_file(const std::string& path, size_t limit) {
    auto bytes = TRY(read_file(path, limit));
    return std::string(bytes.begin(), bytes.end());
}

Result<void> write_file_atomic(const std::string& path, const std::string& contents, unsigned mode) {
    auto slash = path.rfind('/');
    std::string dir = slash == std::string::npos ? "." : (slash == 0 ? "/" : path.substr(0, slash));
    std::string tmp = path + ".tmp." + std::to_string(::getpid());
    {
        UniqueFd fd(::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, mode));
        if (!fd) return fail_errno("create '" + tmp + "'");
        size_t done = 0;
        while (done < contents.size()) {
            ssize_t n = ::write(fd.get(), contents.data() + done, contents.size() - done);
            if (n < 0 && errno == EINTR) continue;
            if (n < 0) {
                int e = errno;
                ::unlink(tmp.c_str());
                return fail_errno("write '" + tmp + "'", e);
            }
            done += n;
        }
        if (::fchmod(fd.get(), mode) < 0 || ::fsync(fd.get()) < 0) {
            int e = errno;
            ::unlink(tmp.c_str());
            return fail_errno("fsync '" + tmp + "'", e);
        }
    }
    if (::rename(tmp.c_str(), path.c_str()) < 0) {
        int e = errno;
        ::unlink(tmp.c_str());
        return fail_errno("rename '" + tmp + "' to '" + path + "'", e);
    }
    // The rename is durable only once the directory entry is on disk.
    UniqueFd d(::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
    if (!d || ::fsync(d.get()) < 0) return fail_errno("fsync directory '" + dir + "'");
    return ok();
}

std::string sibling_executable(const std::string& name) {
    char self[PATH_MAX];
    ssize_t n = ::readlink("/proc/self/exe", self, sizeof self - 1);
    if (n > 0) {
        self[n] = 0;
        std::string dir(self);
        dir = dir.substr(0, dir.rfind('/'));
        // Next to it, or in ../bin (kvmkitd installed in sbin/, kvmkit-vmm in bin/).
        for (const std::string& p : {dir + "/" + name, dir + "/../bin/" + name})
            if (::access(p.c_str(), X_OK) == 0) return p;
    }
    return name;
}

Result<uint64_t> parse_size(const std::string& text) {
    if (text.empty()) return fail("empty size");
    size_t pos = 0;
    uint64_t value = 0;
    while (pos < text.size() && text[pos] >= '0' && text[pos] <= '9') {
        uint64_t digit = text[pos] - '0';
        if (value > (UINT64_MAX - digit) / 10) return fail("size '" + text + "' overflows");
        value = value * 10 + digit;
        ++pos;
    }
    if (pos == 0) return fail("size '" + text + "' does not start with a number");
    unsigned shift = 0;
    if (pos < text.size()) {
        switch (text[pos]) {
            case 'k': case 'K': shift = 10; break;
            case 'm': case 'M': shift = 20; break;
            case 'g': case 'G': shift = 30; break;
            case 't': case 'T': shift = 40; break;
            default: return fail("size '" + text + "' has an unknown suffix (use K, M, G or T)");
        }
        ++pos;
        if (pos < text.size() && (text[pos] == 'i' || text[pos] == 'B')) ++pos;
        if (pos < text.size() && text[pos] == 'B') ++pos;
    }
    if (pos != text.size()) return fail("size '" + text + "' has trailing characters");
    if (shift && value > (UINT64_MAX >> shift)) return fail("size '" + text + "' overflows");
    return value << shift;
}

}  // namespace kvmkit::base
