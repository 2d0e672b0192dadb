// unlock: make a break-glass unlock token, or hand one to bpfwardend.
#include <sys/stat.h>

#include <chrono>
#include <cstdio>
#include <cstring>
#include <ctime>
#include <expected>
#include <filesystem>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <systemd/sd-bus.h>

#include "bus_connection.h"
#include "commands.h"
#include "names.h"
#include "support/atomic_file.h"
#include "support/command_line.h"
#include "support/file_io.h"
#include "support/text.h"
#include "trust/manifest.h"
#include "trust/unlock_token.h"

namespace bpfwarden::ctl {
namespace {

namespace fs = std::filesystem;

constexpr const char* kSynopsis =
    "--key PRIVATE_KEY --for DURATION [--output FILE [--force]]\n"
    "       bpfwardenctl unlock --token FILE|- [--json]";

constexpr const char* kDescription = R"(Lifts bpfwarden's self-protection for a bounded time, break-glass style.

With --key: makes an unlock token, signed with an image-signing private key
(the key whose public half is among the trusted keys of the hosts). The token
is five lines of text, valid for DURATION (1s..24h: 90s, 10m, 2h, or plain
seconds) and good for one unlock. It goes to standard output, or to FILE
(mode 0600; an existing file is replaced only with --force). Anyone holding
the token can unlock once until it expires: handle it like a password.

With --token: checks the token's form (not its signature: bpfwardend does
that) and sends it to bpfwardend over D-Bus (org.bpfwarden.Enforcer1.Unlock on
the system bus; DBUS_SYSTEM_BUS_ADDRESS is honoured). bpfwardend verifies it
against its trusted keys, refuses it when expired or already used, and lifts
protection until the token expires. '-' reads the token from standard input.)";

constexpr const char* kFooter = R"(Exit status: 0 success; 1 failure (a bad token, bpfwardend unreachable or
refusing it); 2 invalid arguments.)";

// How long bpfwardend may take to verify the token and answer.
constexpr uint64_t kCallTimeoutUsec = 10'000'000;

struct UnlockOptions {
    fs::path key;
    std::string duration;
    fs::path output;
    bool force = false;
    std::string token;
    bool json = false;
};

int failure(const Error& error) {
    fprintf(stderr, "bpfwardenctl unlock: %s\n", error.message().c_str());
    return 1;
}

std::string utc(uint64_t unix_seconds) { return format_rfc3339_utc(static_cast<std::time_t>(unix_seconds)); }

// "90s", "10m", "2h" or plain seconds; nullopt when it is none of those.
std::optional<std::chrono::seconds> parse_duration(std::string_view text) {
    int64_t unit = 1;
    if (text.ends_with('s') || text.ends_with('m') || text.ends_with('h')) {
        unit = text.back() == 'h' ? 3600 : text.back() == 'm' ? 60 : 1;
        text.remove_suffix(1);
    }
    // More digits than this are out of range whatever the unit.
    if (text.empty() || text.size() > 9 || text.find_first_not_of("0123456789") != std::string_view::npos)
        return std::nullopt;
    return std::chrono::seconds(std::stoll(std::string(text)) * unit);
}

// The --for check, worded like every other option's.
std::string check_duration(const std::string& text) {
    auto lifetime = parse_duration(text);
    if (!lifetime)
        return "'" + text + "' is not a duration (expected e.g. 90s, 10m, 2h, or plain seconds)";
    if (*lifetime < kMinUnlockLifetime || *lifetime > kMaxUnlockLifetime)
        return "'" + text + "' is out of range (expected 1s..24h)";
    return {};
}

// ---------------------------------------------------------------- --key

Result<void> write_token(const UnlockOptions& options, const std::string& token) {
    if (options.output.empty()) {
        fputs(token.c_str(), stdout);
        return fflush(stdout) == 0 ? Result<void>() : fail_errno("write the token to standard output");
    }
    // The message names the way out; write_file_atomically's check below
    // still refuses a file that appears meanwhile.
    struct stat st{};
    if (!options.force && lstat(options.output.c_str(), &st) == 0)
        return fail(EEXIST, "refusing to overwrite existing '" + options.output.string() +
                                "': add --force to replace it, or choose another file");
    auto refuse_existing = [](std::string_view) { return false; };
    return write_file_atomically(options.output, token, 0600,
                                 options.force ? ReplaceCheck() : ReplaceCheck(refuse_existing));
}

int make_token(const UnlockOptions& options) {
    const auto lifetime = parse_duration(options.duration);  // checked by the option's validator
    auto token =
        make_unlock_token(options.key, lifetime.value_or(std::chrono::seconds(0)), std::chrono::system_clock::now());
    if (!token)
        return failure(token.error());
    auto parsed = parse_unlock_token(*token);  // what we just wrote: for its expiry
    if (!parsed)
        return failure(parsed.error());
    if (auto written = write_token(options, *token); !written)
        return failure(written.error());
    if (!options.output.empty())
        fprintf(stderr, "wrote unlock token to %s (mode 0600)\n", options.output.c_str());
    fprintf(stderr, "token valid until %s (single use)\n", utc(parsed->expires).c_str());
    return 0;
}

// ---------------------------------------------------------------- --token

Result<std::string> read_token_text(const std::string& source) {
    if (source != "-")
        return read_config_file(source, kMaxUnlockTokenBytes, "unlock token file");
    std::string text(kMaxUnlockTokenBytes + 1, '\0');
    const size_t length = fread(text.data(), 1, text.size(), stdin);
    if (ferror(stdin))
        return fail_errno("read the unlock token from standard input");
    if (length > kMaxUnlockTokenBytes)
        return fail(EFBIG, "the unlock token on standard input is larger than " + std::to_string(kMaxUnlockTokenBytes) +
                               " bytes, which no token is");
    text.resize(length);
    return text;
}

// A failed Unlock call: the D-Bus error name ("" when none) and what to say.
struct CallFailure {
    std::string name;
    std::string message;
};

struct BusUnref {
    void operator()(sd_bus* bus) const { sd_bus_flush_close_unref(bus); }
};
struct ErrorFree {
    void operator()(sd_bus_error* error) const { sd_bus_error_free(error); }
};

CallFailure unreachable(const std::string& name, const std::string& why) {
    return {name, "cannot reach bpfwardend: " + why};
}

// `bus_open`: whether the connection survived the call. sd-bus reports its
// own transport failures as errors too (System.Error.ENOTCONN); a closed
// connection tells them from a reply of bpfwardend's.
CallFailure describe_call_error(int r, const sd_bus_error& error, bool bus_open) {
    const std::string message = error.message ? error.message : std::strerror(-r);
    if (!sd_bus_error_is_set(&error) || !bus_open)
        return unreachable(sd_bus_error_is_set(&error) ? error.name : "",
                           "the system bus connection failed: " + message);
    if (sd_bus_error_has_names(&error, SD_BUS_ERROR_SERVICE_UNKNOWN, SD_BUS_ERROR_NAME_HAS_NO_OWNER))
        return unreachable(error.name,
                           std::string(dbus::kEnforcerBusName) + " is not on the system bus (is bpfwardend running?)");
    if (sd_bus_error_has_names(&error, SD_BUS_ERROR_NO_REPLY, SD_BUS_ERROR_TIMEOUT))
        return unreachable(error.name, "no reply within " + std::to_string(kCallTimeoutUsec / 1000000) + " s");
    std::string hint;
    if (sd_bus_error_has_names(&error, SD_BUS_ERROR_UNKNOWN_METHOD))
        hint = " (this bpfwardend does not know unlock tokens yet)";
    return {error.name, "bpfwardend refused the token: " + std::string(error.name) + ": " + message + hint};
}

// org.bpfwarden.Enforcer1.Unlock(s token) -> t lifted_until_usec, on the
// system bus as `bpfwardenctl status` reaches it.
std::expected<uint64_t, CallFailure> call_unlock(const std::string& token) {
    sd_bus* raw_bus = nullptr;
    int r = sd_bus_open_system(&raw_bus);
    std::unique_ptr<sd_bus, BusUnref> bus(raw_bus);
    if (r < 0)
        return std::unexpected(unreachable("", std::string("connect to the system bus: ") + std::strerror(-r)));
    sd_bus_set_method_call_timeout(bus.get(), kCallTimeoutUsec);
    sd_bus_error error = SD_BUS_ERROR_NULL;
    std::unique_ptr<sd_bus_error, ErrorFree> error_guard(&error);
    sd_bus_message* raw_reply = nullptr;
    r = sd_bus_call_method(bus.get(), dbus::kEnforcerBusName, dbus::kEnforcerPath, dbus::kEnforcerInterface, "Unlock",
                           &error, &raw_reply, "s", token.c_str());
    dbus::BusMessage reply(raw_reply);
    if (r < 0)
        return std::unexpected(describe_call_error(r, error, sd_bus_is_open(bus.get()) > 0));
    uint64_t lifted_until_usec = 0;
    if ((r = sd_bus_message_read(reply.get(), "t", &lifted_until_usec)) <= 0)
        return std::unexpected(CallFailure{
            "", std::string("malformed reply to Unlock (expected 't'): ") + std::strerror(r < 0 ? -r : EBADMSG)});
    return lifted_until_usec;
}

int token_failure(const UnlockOptions& options, const std::string& name, const std::string& message) {
    if (options.json)
        printf("{\"error_name\":%s,\"error\":%s}\n", name.empty() ? "null" : json_quote(name).c_str(),
               json_quote(message).c_str());
    fprintf(stderr, "bpfwardenctl unlock: %s\n", message.c_str());
    return 1;
}

int send_token(const UnlockOptions& options) {
    const std::string where = options.token == "-" ? "standard input" : "'" + options.token + "'";
    auto text = read_token_text(options.token);
    if (!text)
        return token_failure(options, "", text.error().message());
    // Its form is checked here so that a garbled paste is reported as such,
    // without a round trip; the signature is bpfwardend's to check.
    if (auto parsed = parse_unlock_token(*text); !parsed)
        return token_failure(options, "", parsed.error().wrap(where).note("nothing was sent to bpfwardend").message());
    auto lifted = call_unlock(*text);
    if (!lifted)
        return token_failure(options, lifted.error().name, lifted.error().message);
    if (options.json)
        printf("{\"lifted_until_usec\":%llu}\n", static_cast<unsigned long long>(*lifted));
    else
        printf("protection lifted until %s\n", utc(*lifted / 1000000).c_str());
    return 0;
}

}  // namespace

int unlock(int argc, char** argv) {
    UnlockOptions options;
    CommandLine cli("bpfwardenctl unlock", kSynopsis, kDescription, kFooter);
    auto* key = cli.path("--key", options.key, "make a token signed with this private key (PEM)", "FILE");
    auto* lifetime = cli.text("--for", options.duration, "how long the token may unlock: 1s..24h", "DURATION");
    lifetime->check(CLI::Validator(check_duration, "", "duration"));
    auto* output = cli.path("--output", options.output, "write the token to FILE instead of standard output", "FILE");
    auto* force = cli.flag("--force", options.force, "with --output: replace an existing file");
    auto* token =
        cli.text("--token", options.token, "send the token in FILE ('-': standard input) to bpfwardend", "FILE");
    auto* json = add_json(cli, options.json);
    for (auto* make_only : {key, lifetime, output, force})
        cli.exclusive(make_only, token);
    cli.exclusive(json, key);
    if (auto exit_status = cli.parse(argc, argv))
        return *exit_status;
    if (key->count() == 0 && token->count() == 0)
        return cli.usage_error("--key (make a token) or --token (use one) is required");
    if (key->count() > 0 && lifetime->count() == 0)
        return cli.usage_error("--for is required with --key");
    if (force->count() > 0 && output->count() == 0)
        return cli.usage_error("--force needs --output");
    return key->count() > 0 ? make_token(options) : send_token(options);
}

}  // namespace bpfwarden::ctl
