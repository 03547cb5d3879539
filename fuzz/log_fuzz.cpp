// libFuzzer program for the log target; the target itself is in log_target.cpp, shared with
// tests/faults/fuzz_regression_test.cpp. Built by scripts/fuzz.sh (clang, -fsanitize=fuzzer).
#include "fuzz_targets.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    return ipckit::fuzz::fuzz_log(data, size);
}
