#include "ipckit/error.hpp"

namespace ipckit {
namespace {

std::string describe(std::string_view call, std::string_view object) {
    std::string text(call);
    text += '(';
    text += object;
    text += ')';
    return text;
}

}  // namespace

Error::Error(std::error_code code, std::string_view call, std::string_view object)
    : std::system_error(code, describe(call, object)), call_(call), object_(object) {}

Error::Error(std::error_code code, std::string_view message)
    : std::system_error(code, std::string(message)) {}

void throw_errno(std::string_view call, std::string_view object, int err) {
    throw Error(std::error_code(err, std::system_category()), call, object);
}

void throw_error(std::errc code, std::string_view message) {
    throw Error(std::make_error_code(code), message);
}

}  // namespace ipckit
