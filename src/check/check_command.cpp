#include "check/check_command.hpp"

#include "check/checks.hpp"
#include "check/probe.hpp"
#include "check/report.hpp"

namespace kvmkit::check {

int run_check_command(bool json, std::ostream& out) {
    auto results = evaluate_host(probe_host());
    if (json)
        write_json(results, out);
    else
        write_text(results, out);
    out.flush();
    return exit_code(results);
}

}  // namespace kvmkit::check
