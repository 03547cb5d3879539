// Test support: messages as text, and what an ipckit::Error said.
#pragma once

#include <cstddef>
#include <functional>
#include <string>
#include <vector>

#include "ipckit/error.hpp"

namespace ipckit::test {

inline std::string text_of(const std::vector<std::byte>& message) {
    return std::string(reinterpret_cast<const char*>(message.data()), message.size());
}

// The Error's message, or "<no error>".
inline std::string what_of(const std::function<void()>& body) {
    try {
        body();
    } catch (const Error& e) {
        return e.what();
    }
    return "<no error>";
}

inline bool contains(const std::string& text, const std::string& part) {
    return text.find(part) != std::string::npos;
}

}  // namespace ipckit::test
