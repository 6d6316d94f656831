// A temporary directory for test sockets, removed afterwards.
#pragma once

#include <stdlib.h>
#include <unistd.h>

#include <filesystem>
#include <string>

namespace kvmkit::http::testing {

class TempDir {
public:
    TempDir() {
        char tmpl[] = "/tmp/kvmkit-http-XXXXXX";
        path_ = mkdtemp(tmpl);
    }
    ~TempDir() { std::filesystem::remove_all(path_); }
    std::string file(const std::string& name) const { return path_ + "/" + name; }

private:
    std::string path_;
};

}  // namespace kvmkit::http::testing
