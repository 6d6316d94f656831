#include "net/backend_factory.hpp"

#include "net/tap_backend.hpp"

namespace kvmkit::net {

base::Result<std::unique_ptr<Backend>> create_backend(const NetOptions& opts) {
    switch (opts.backend) {
        case NetBackendKind::Tap: {
            auto tap = TRY(TapBackend::open(opts.ifname));
            return std::unique_ptr<Backend>(std::move(tap));
        }
        case NetBackendKind::User:
            return base::fail("--net user: the user-mode (libslirp) backend is not implemented yet");
    }
    return base::fail("unknown network backend");
}

}  // namespace kvmkit::net
