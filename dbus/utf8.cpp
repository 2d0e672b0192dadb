#include "utf8.h"

#include <cstdint>

#include "support/event.h"

namespace bpfwarden::dbus {

bool is_valid_utf8(std::string_view text) {
    size_t i = 0;
    while (i < text.size()) {
        auto byte = static_cast<uint8_t>(text[i]);
        size_t length = 0;
        uint32_t code = 0, min = 0;
        if (byte < 0x80) {
            ++i;
            continue;
        } else if ((byte & 0xE0) == 0xC0) {
            length = 2, code = byte & 0x1F, min = 0x80;
        } else if ((byte & 0xF0) == 0xE0) {
            length = 3, code = byte & 0x0F, min = 0x800;
        } else if ((byte & 0xF8) == 0xF0) {
            length = 4, code = byte & 0x07, min = 0x10000;
        } else {
            return false;
        }
        if (i + length > text.size())
            return false;
        for (size_t k = 1; k < length; ++k) {
            auto next = static_cast<uint8_t>(text[i + k]);
            if ((next & 0xC0) != 0x80)
                return false;
            code = (code << 6) | (next & 0x3F);
        }
        if (code < min || code > 0x10FFFF || (code >= 0xD800 && code <= 0xDFFF))
            return false;
        i += length;
    }
    return true;
}

std::string to_bus_string(std::string_view text) {
    if (is_valid_utf8(text))
        return std::string(text);
    // Every byte escapes to at most 4: nothing is cut.
    return sanitize_field(text, text.size() * 4 + 3);
}

}  // namespace bpfwarden::dbus
