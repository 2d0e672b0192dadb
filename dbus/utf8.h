// D-Bus strings must be valid UTF-8 (sd-bus refuses to send anything else),
// while paths and command names from the kernel are arbitrary bytes.
#pragma once

#include <string>
#include <string_view>

namespace bpfwarden::dbus {

bool is_valid_utf8(std::string_view text);

// `text` unchanged when it is valid UTF-8; otherwise the reversible escaping
// of sanitize_field() (event.h), which always is.
std::string to_bus_string(std::string_view text);

}  // namespace bpfwarden::dbus
