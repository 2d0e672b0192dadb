// Fuzz target for parse_policy_bundle(): a signed policy bundle arrives with
// the configuration management's files, and its parser must be safe on any
// bytes even though the signature is checked first.
//
// Beyond "no crash, no sanitizer report", every input checks the format's
// promises (docs/POLICY.md, "Signed policy bundles"):
//   - a refused input yields EINVAL "<source>:..." in printable ASCII;
//   - an accepted input passes validate_policy_bundle(), is already canonical
//     (serialize(parse(x)) == x byte for byte), and parses back equal.
#include <cerrno>
#include <cstddef>
#include <cstdint>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "fuzz_driver.h"
#include "policy/policy_bundle.h"

namespace {

using bpfwarden::fuzz::broken_promise;

std::span<const unsigned char> bytes_of(std::string_view text) {
    return {reinterpret_cast<const unsigned char*>(text.data()), text.size()};
}

using namespace std::string_view_literals;

const std::vector<std::string> kTokens = {
    "bpfwarden-policy-bundle",
    "version",
    "created",
    "file",
    "1",
    "2",
    "0",
    "01",
    "16777216",
    "16777217",
    "9223372036854775807",
    "9223372036854775808",
    "2026-12-03T06:00:00Z",
    "2024-02-29T23:59:59Z",
    "2026-02-30T00:00:00Z",
    "00-default.toml",
    "50-web.toml",
    ".hidden.toml",
    "../x.toml",
    "notes.txt",
    "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
    "E3B0C44298FC1C149AFBF4C8996FB92427AE41E4649B934CA495991B7852B855",
    std::string(64, 'a'),
    std::string(65, 'a'),
    "",
    " ",
    "\n",
    "\r\n",
    "\t",
    std::string(1, '\0'),
    "\xc3\xa9",
};

const std::vector<std::string> kNumbers = {
    "0",
    "1",
    "01",
    "00",
    "16777215",
    "16777216",
    "16777217",
    "9223372036854775807",
    "9223372036854775808",
    "18446744073709551616",
};

constexpr std::string_view kSpecialBytes = " \n\r\t.-_:TZ09afAF/'\x7f\x80\xff\0"sv;

bool accepts(std::string_view input) { return bpfwarden::parse_policy_bundle(bytes_of(input), "pool").has_value(); }

}  // namespace

const bpfwarden::fuzz::Target& bpfwarden::fuzz::fuzz_target() {
    static const Target target{"policy_bundle_fuzz",
                               kTokens,
                               kNumbers,
                               kSpecialBytes,
                               "bpfwarden-policy-bundle 1\nversion 1\ncreated 2026-12-03T06:00:00Z\n",
                               accepts};
    return target;
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
    using namespace bpfwarden;
    const std::string_view input(reinterpret_cast<const char*>(data), size);

    auto parsed = parse_policy_bundle(bytes_of(input), "fuzz");
    if (!parsed) {
        const Error& error = parsed.error();
        if (error.errnum() != EINVAL)
            broken_promise("errors are EINVAL", error.message());
        if (!error.context().starts_with("fuzz:"))
            broken_promise("errors start with the source name", error.context());
        if (!fuzz::printable_ascii(error.context()))
            broken_promise("errors are printable ASCII", error.context());
        return 0;
    }
    if (auto valid = validate_policy_bundle(*parsed); !valid)
        broken_promise("a parsed bundle validates", valid.error().context());
    const std::string text = serialize_policy_bundle(*parsed);
    if (text != input)
        broken_promise("an accepted bundle is canonical (serialize(parse(x)) == x)");
    auto again = parse_policy_bundle(bytes_of(text), "fuzz-serialized");
    if (!again)
        broken_promise("a serialized bundle parses", again.error().context());
    if (!(*again == *parsed))
        broken_promise("parse(serialize(b)) == b");
    return 0;
}
