// Creates the backend a NetOptions asks for. vhost is not decided here: a
// TAP backend is created either way and the virtio-net device hands its fd
// to vhost-net when vhost=on and /dev/vhost-net can be used.
#pragma once

#include <memory>

#include "base/result.hpp"
#include "net/backend.hpp"
#include "net/net_options.hpp"

namespace kvmkit::net {

base::Result<std::unique_ptr<Backend>> create_backend(const NetOptions& opts);

}  // namespace kvmkit::net
