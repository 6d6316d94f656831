// A main() for libFuzzer targets built without libFuzzer (e.g. with GCC):
// runs LLVMFuzzerTestOneInput over every file given, directories recursively,
// so the seed corpus and past crashers run in the ordinary test suite.
//   <target>_regression <file-or-dir>...
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <vector>

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size);

namespace fs = std::filesystem;

static bool run_file(const fs::path& path) {
    std::ifstream in(path, std::ios::binary);
    if (!in) {
        std::fprintf(stderr, "cannot read %s\n", path.c_str());
        return false;
    }
    std::vector<uint8_t> bytes((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    LLVMFuzzerTestOneInput(bytes.data(), bytes.size());
    return true;
}

int main(int argc, char** argv) {
    size_t runs = 0;
    for (int i = 1; i < argc; ++i) {
        fs::path arg(argv[i]);
        if (fs::is_directory(arg)) {
            for (const auto& e : fs::recursive_directory_iterator(arg)) {
                if (!e.is_regular_file()) continue;
                if (!run_file(e.path())) return 1;
                ++runs;
            }
        } else {
            if (!run_file(arg)) return 1;
            ++runs;
        }
    }
    std::printf("ran %zu inputs\n", runs);
    // An empty corpus most likely means a wrong path: fail loudly.
    return runs > 0 ? 0 : 1;
}
