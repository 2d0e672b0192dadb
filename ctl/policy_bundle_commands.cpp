// policy sign / policy verify: signed policy bundles for fleets
// (policy/policy_bundle.h, docs/POLICY.md "Signed policy bundles").
#include <cstdio>
#include <ctime>
#include <filesystem>
#include <string>
#include <vector>

#include "policy/policy_bundle.h"
#include "policy_command.h"
#include "support/atomic_file.h"
#include "support/command_line.h"
#include "support/installed_paths.h"
#include "support/text.h"
#include "trust/signature.h"

namespace bpfwarden::ctl {
namespace {

namespace fs = std::filesystem;

int failure(const char* command, const Error& error) {
    fprintf(stderr, "bpfwardenctl policy %s: %s\n", command, error.message().c_str());
    return 1;
}

// One DIR argument at most; the installed policy directory by default.
std::optional<fs::path> policy_dir_argument(const char* command, const std::vector<std::string>& arguments) {
    if (arguments.size() > 1) {
        fprintf(stderr, "bpfwardenctl policy %s: one DIR at a time (got %zu)\n", command, arguments.size());
        return std::nullopt;
    }
    return arguments.empty() ? fs::path(installed::kPolicyDir) : fs::path(arguments.front());
}

Result<void> write_bundle(const fs::path& dir, const std::string& text, std::span<const unsigned char> signature) {
    // A bundle is replaced only by a bundle (the signature only beside one).
    auto is_bundle = [](std::string_view existing) { return existing.starts_with("bpfwarden-policy-bundle "); };
    if (auto written = write_file_atomically(dir / kPolicyBundleFile, text, 0644, is_bundle); !written)
        return written;
    std::string_view signature_bytes(reinterpret_cast<const char*>(signature.data()), signature.size());
    return write_file_atomically(dir / kPolicyBundleSignatureFile, signature_bytes, 0644);
}

void print_verified(const fs::path& dir, const VerifiedPolicyBundle& verified, bool json) {
    const PolicyBundle& bundle = verified.bundle;
    if (json) {
        std::string out = "{\"ok\":true,\"directory\":" + json_quote(dir.string()) +
                          ",\"version\":" + std::to_string(bundle.version) +
                          ",\"created\":" + json_quote(bundle.created) + ",\"signer\":" + json_quote(verified.signer) +
                          ",\"files\":[";
        for (size_t i = 0; i < bundle.files.size(); ++i)
            out += std::string(i ? "," : "") + "{\"name\":" + json_quote(bundle.files[i].name) +
                   ",\"size\":" + std::to_string(bundle.files[i].size) +
                   ",\"sha256\":" + json_quote(bundle.files[i].sha256) + "}";
        puts((out + "]}").c_str());
        return;
    }
    printf("policy bundle: %s (version %llu, created %s)\n", (dir / kPolicyBundleFile).c_str(),
           static_cast<unsigned long long>(bundle.version), bundle.created.c_str());
    printf("signed by: %s\n", verified.signer.c_str());
    for (const auto& file : bundle.files)
        printf("file %s: %llu bytes, SHA-256 matches\n", file.name.c_str(), static_cast<unsigned long long>(file.size));
    printf("OK: %zu policy file%s verified\n", bundle.files.size(), bundle.files.size() == 1 ? "" : "s");
}

}  // namespace

int policy_sign(int argc, char** argv) {
    fs::path key;
    uint64_t version = 0;
    std::vector<std::string> arguments;
    CommandLine cli("bpfwardenctl policy sign", "[DIR] --key PRIVATE_KEY --version N",
                    std::string("Checks the policy directory DIR like 'policy check', then writes\n"
                                "DIR/policy-bundle (every *.toml in DIR: size and SHA-256) and\n"
                                "DIR/policy-bundle.sig, a detached signature over it, with the same keys as\n"
                                "the image sets ('bpfwardenctl keygen'). N is the bundle's version, its own\n"
                                "counter: hosts with --require-signed-policy refuse a bundle older than the\n"
                                "newest they applied. Ship DIR as a whole (docs/POLICY.md has an Ansible\n"
                                "recipe). DIR defaults to ") +
                        installed::kPolicyDir + ".",
                    "Exit status: 0 signed, 1 invalid policy or signing failed, 2 invalid arguments.");
    cli.arguments("dir", arguments, "the policy directory to sign");
    cli.path("--key", key, "the private signing key (PEM)", "FILE")->required();
    cli.number<uint64_t>("--version", version, 1, UINT64_MAX / 2, "policy bundle version")->required();
    if (auto exit_status = cli.parse(argc, argv))
        return *exit_status;
    auto dir = policy_dir_argument("sign", arguments);
    if (!dir)
        return 2;
    // Signing a policy no host would load only spreads the mistake.
    if (auto compiled = compile_policy_target(*dir); !compiled)
        return failure("sign", compiled.error().note("nothing was signed"));
    auto bundle = describe_policy_dir(*dir);
    if (!bundle)
        return failure("sign", bundle.error());
    bundle->version = version;
    bundle->created = format_rfc3339_utc(std::time(nullptr));
    if (auto valid = validate_policy_bundle(*bundle); !valid)
        return failure("sign", valid.error());
    const std::string text = serialize_policy_bundle(*bundle);
    auto signature = sign_file_bytes(key, {reinterpret_cast<const unsigned char*>(text.data()), text.size()});
    if (!signature)
        return failure("sign", signature.error());
    if (auto written = write_bundle(*dir, text, *signature); !written)
        return failure("sign", written.error());
    printf("signed %zu policy file%s in %s as policy bundle version %llu\n", bundle->files.size(),
           bundle->files.size() == 1 ? "" : "s", dir->c_str(), static_cast<unsigned long long>(version));
    return 0;
}

int policy_verify(int argc, char** argv) {
    ImageTrust keys;
    bool json = false, no_rollback_check = false;
    std::vector<std::string> arguments;
    CommandLine cli("bpfwardenctl policy verify",
                    "[DIR] [--keys DIR | --key FILE] [--state-dir DIR | --no-rollback-check] [--json]",
                    std::string("Checks DIR/policy-bundle.sig against the trusted keys, then the bundle, its\n"
                                "anti-rollback floor, every listed file's size and SHA-256, and that no\n"
                                "unlisted policy file is present: exactly what bpfwardend and\n"
                                "bpfwarden-watchdog check with --require-signed-policy. DIR defaults to ") +
                        installed::kPolicyDir + ".",
                    "Exit status: 0 when everything verifies, 1 otherwise, 2 invalid arguments.");
    cli.arguments("dir", arguments, "the policy directory to verify");
    auto* keys_dir = add_keys_dir(cli, keys.keys_dir);
    auto* key = cli.path("--key", keys.key_file, "trust exactly this public key instead of a directory", "FILE");
    cli.exclusive(keys_dir, key);
    auto* state = add_state_dir(cli, keys.state_dir);
    auto* no_rollback = cli.flag("--no-rollback-check", no_rollback_check, "skip the anti-rollback check");
    cli.exclusive(state, no_rollback);
    add_json(cli, json);
    if (auto exit_status = cli.parse(argc, argv))
        return *exit_status;
    auto dir = policy_dir_argument("verify", arguments);
    if (!dir)
        return 2;
    PolicyTrust trust = policy_trust_for(keys);
    trust.check_rollback = !no_rollback_check;
    auto verified = verify_policy_bundle(*dir, trust);
    if (!verified) {
        if (json)
            printf("{\"ok\":false,\"error\":%s}\n", json_quote(verified.error().message()).c_str());
        return failure("verify", verified.error());
    }
    print_verified(*dir, *verified, json);
    return 0;
}

}  // namespace bpfwarden::ctl
