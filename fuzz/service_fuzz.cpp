// libFuzzer program for the service target; the target itself is in service_target.cpp, shared with
// tests/faults/fuzz_regression_test.cpp. Built by scripts/fuzz.sh (clang, -fsanitize=fuzzer).
#include "fuzz_targets.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    return ipckit::fuzz::fuzz_service(data, size);
}
