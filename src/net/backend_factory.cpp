#include "net/backend_factory.hpp"

#include "net/slirp_backend.hpp"
#include "net/tap_backend.hpp"

namespace kvmkit::net {

base::Result<std::unique_ptr<Backend>> create_backend(const NetOptions& opts) {
    switch (opts.backend) {
        case NetBackendKind::Tap: {
            auto tap = TRY(TapBackend::open(opts.ifname));
            return std::unique_ptr<Backend>(std::move(tap));
        }
        case NetBackendKind::User: {
            SlirpBackendOptions o;
            o.hostfwd = opts.hostfwd;
            auto user = TRY(SlirpBackend::create(std::move(o)));
            return std::unique_ptr<Backend>(std::move(user));
        }
    }
    return base::fail("unknown network backend");
}

}  // namespace kvmkit::net
