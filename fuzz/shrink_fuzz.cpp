// libFuzzer program for the shrinking-region target; the target itself is in shrink_target.cpp,
// shared with tests/faults/fuzz_regression_test.cpp. Built by scripts/fuzz.sh (clang, -fsanitize=fuzzer).
#include "fuzz_targets.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    return ipckit::fuzz::fuzz_shrink(data, size);
}
