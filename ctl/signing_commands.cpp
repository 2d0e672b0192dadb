// keygen, sign, verify, allow-downgrade.
#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <charconv>
#include <cstdio>
#include <ctime>
#include <filesystem>
#include <string>
#include <vector>

#include "commands.h"
#include "support/atomic_file.h"
#include "support/command_line.h"
#include "support/event.h"
#include "support/file_io.h"
#include "support/installed_paths.h"
#include "support/unique_fd.h"
#include "trust/bpf_image.h"
#include "trust/image_set.h"
#include "trust/manifest.h"
#include "trust/rollback_state.h"
#include "trust/signature.h"

namespace bpfwarden::ctl {
namespace {

namespace fs = std::filesystem;

int failure(const char* command, const Error& error) {
    fprintf(stderr, "bpfwardenctl %s: %s\n", command, error.message().c_str());
    return 1;
}

Result<std::vector<std::string>> image_names_in(const fs::path& dir) {
    std::vector<std::string> names;
    std::error_code ec;
    for (const auto& entry : fs::directory_iterator(dir, ec)) {
        std::string file = entry.path().filename().string();
        if (file.ends_with(".bpf.o"))
            names.push_back(file.substr(0, file.size() - 6));
    }
    if (ec)
        return fail_system(ec.value(), "list image directory '" + dir.string() + "'");
    if (names.empty())
        return fail(ENOENT, "no *.bpf.o images in '" + dir.string() + "'");
    std::sort(names.begin(), names.end());
    return names;
}

Result<ManifestImage> describe_for_manifest(const fs::path& dir, const std::string& name) {
    auto image = read_image(dir, name);
    if (!image)
        return std::unexpected(image.error());
    auto contents = describe_image(*image);
    if (!contents)
        return std::unexpected(contents.error());
    return ManifestImage{name, image->bytes.size(), sha256_hex(image->bytes), contents->programs, contents->maps};
}

}  // namespace

int keygen(int argc, char** argv) {
    fs::path private_key, public_key;
    CommandLine cli("bpfwardenctl keygen", "--private FILE --public FILE",
                    "Creates an Ed25519 key pair: the private key (PEM, mode 0600) signs manifests\n"
                    "and never leaves the signing machine; the public key (PEM) goes into the\n"
                    "trusted key directory (/etc/bpfwarden/keys) of every host. Existing files are\n"
                    "never overwritten.");
    cli.path("--private", private_key, "where to write the private key", "FILE")->required();
    cli.path("--public", public_key, "where to write the public key", "FILE")->required();
    if (auto exit_status = cli.parse(argc, argv))
        return *exit_status;
    if (auto made = generate_ed25519_key(private_key, public_key); !made)
        return failure("keygen", made.error());
    printf("wrote private key %s (keep it secret) and public key %s\n", private_key.c_str(), public_key.c_str());
    return 0;
}

int sign(int argc, char** argv) {
    fs::path key, images;
    uint64_t version = 0;
    CommandLine cli("bpfwardenctl sign", "--key PRIVATE_KEY --version N [--images DIR]",
                    "Writes DIR/manifest (every *.bpf.o in DIR: size, SHA-256, programs, maps) and\n"
                    "DIR/manifest.sig, a detached signature over the manifest's bytes. N is the\n"
                    "image-set version: hosts refuse a set older than the newest they accepted.");
    cli.path("--key", key, "the private signing key (PEM)", "FILE")->required();
    cli.number<uint64_t>("--version", version, 1, UINT64_MAX / 2, "image-set version")->required();
    add_image_dir(cli, images);
    if (auto exit_status = cli.parse(argc, argv))
        return *exit_status;
    auto names = image_names_in(images);
    if (!names)
        return failure("sign", names.error());
    Manifest manifest;
    manifest.version = version;
    manifest.created = format_rfc3339_utc(std::time(nullptr));
    for (const auto& name : *names) {
        auto entry = describe_for_manifest(images, name);
        if (!entry)
            return failure("sign", entry.error());
        manifest.images.push_back(std::move(*entry));
    }
    if (auto valid = validate_manifest(manifest); !valid)
        return failure("sign", valid.error());
    std::string text = serialize_manifest(manifest);
    auto signature = sign_file_bytes(key, {reinterpret_cast<const unsigned char*>(text.data()), text.size()});
    if (!signature)
        return failure("sign", signature.error());
    std::string_view signature_bytes(reinterpret_cast<const char*>(signature->data()), signature->size());
    // A manifest is replaced only by a manifest (the signature only beside one).
    auto is_manifest = [](std::string_view existing) { return existing.starts_with("bpfwarden-manifest "); };
    if (auto written = write_file_atomically(images / kManifestFile, text, 0644, is_manifest); !written)
        return failure("sign", written.error());
    if (auto written = write_file_atomically(images / kSignatureFile, signature_bytes, 0644); !written)
        return failure("sign", written.error());
    printf("signed %zu images in %s as image-set version %llu\n", manifest.images.size(), images.c_str(),
           static_cast<unsigned long long>(version));
    return 0;
}

namespace {

void print_verified_text(const VerifiedImageSet& set, const fs::path& images) {
    const Manifest& manifest = set.manifest();
    printf("manifest: %s (image-set version %llu, created %s)\n", (images / kManifestFile).c_str(),
           static_cast<unsigned long long>(manifest.version), manifest.created.c_str());
    printf("signed by: %s\n", set.signer().c_str());
    for (const auto& image : manifest.images) {
        std::string programs;
        for (const auto& program : image.programs)
            programs += (programs.empty() ? "" : ", ") + program;
        printf("image %s: %llu bytes, SHA-256 matches; programs: %s\n", image.name.c_str(),
               static_cast<unsigned long long>(image.size), programs.c_str());
    }
    printf("OK: %zu images verified\n", manifest.images.size());
}

void print_verified_json(const VerifiedImageSet& set) {
    const Manifest& manifest = set.manifest();
    std::string out = "{\"ok\":true,\"version\":" + std::to_string(manifest.version) +
                      ",\"created\":" + json_quote(manifest.created) + ",\"signer\":" + json_quote(set.signer()) +
                      ",\"images\":[";
    for (size_t i = 0; i < manifest.images.size(); ++i) {
        const auto& image = manifest.images[i];
        out += std::string(i ? "," : "") + "{\"name\":" + json_quote(image.name) +
               ",\"size\":" + std::to_string(image.size) + ",\"sha256\":" + json_quote(image.sha256) +
               ",\"programs\":[";
        for (size_t p = 0; p < image.programs.size(); ++p)
            out += (p ? "," : "") + json_quote(image.programs[p]);
        out += "]}";
    }
    puts((out + "]}").c_str());
}

}  // namespace

int verify(int argc, char** argv) {
    ImageTrust trust;
    bool json = false, no_rollback_check = false;
    CommandLine cli("bpfwardenctl verify",
                    "[--images DIR] [--keys DIR | --key FILE] [--state-dir DIR | --no-rollback-check] [--json]",
                    "Checks DIR/manifest.sig against the trusted keys, then the manifest, the\n"
                    "anti-rollback floor, and every image's size and SHA-256: exactly what\n"
                    "bpfwardend checks before loading.",
                    "Exit status: 0 when everything verifies, 1 otherwise, 2 invalid arguments.");
    add_image_dir(cli, trust.image_dir);
    auto* keys = add_keys_dir(cli, trust.keys_dir);
    auto* key = cli.path("--key", trust.key_file, "trust exactly this public key instead of a directory", "FILE");
    cli.exclusive(keys, key);
    auto* state = add_state_dir(cli, trust.state_dir);
    auto* no_rollback = cli.flag("--no-rollback-check", no_rollback_check, "skip the anti-rollback check");
    cli.exclusive(state, no_rollback);
    add_json(cli, json);
    if (auto exit_status = cli.parse(argc, argv))
        return *exit_status;
    trust.check_rollback = !no_rollback_check;
    auto set = VerifiedImageSet::open(trust);
    if (!set) {
        if (json)
            printf("{\"ok\":false,\"error\":%s}\n", json_quote(set.error().message()).c_str());
        return failure("verify", set.error());
    }
    if (json)
        print_verified_json(*set);
    else
        print_verified_text(*set, trust.image_dir);
    return 0;
}

int allow_downgrade(int argc, char** argv) {
    fs::path state_dir;
    uint64_t version = 0;
    bool policy = false;
    CommandLine cli("bpfwardenctl allow-downgrade", "VERSION [--policy] [--state-dir DIR]",
                    "Lowers the anti-rollback floor so that a signed image set (with --policy: a\n"
                    "signed policy bundle) of VERSION or newer is accepted again.");
    add_state_dir(cli, state_dir);
    cli.flag("--policy", policy, "lower the policy bundles' floor instead of the image sets'");
    cli.number<uint64_t>("version", version, 1, UINT64_MAX / 2, "the oldest version to accept", "VERSION")->required();
    if (auto exit_status = cli.parse(argc, argv))
        return *exit_status;
    RollbackState state(state_dir, policy ? SignedKind::PolicyBundle : SignedKind::ImageSet);
    auto previous = state.highest_accepted();
    if (!previous)
        return failure("allow-downgrade", previous.error());
    if (auto stored = state.allow_downgrade_to(version); !stored)
        return failure("allow-downgrade", stored.error());
    printf("anti-rollback floor lowered from %llu to %llu (%s)\n", static_cast<unsigned long long>(*previous),
           static_cast<unsigned long long>(version), state.file().c_str());
    return 0;
}

}  // namespace bpfwarden::ctl
