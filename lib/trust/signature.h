// Signing keys and detached signatures over exact bytes (the manifest).
//
// The default is Ed25519 through OpenSSL's EVP API. Admins who already sign
// with the stock `openssl` CLI need no bpfwarden tool: a signature is the raw
// output of
//
//   Ed25519:            openssl pkeyutl -sign -rawin -inkey ed.key -in manifest -out manifest.sig
//   RSA >= 2048, P-256: openssl dgst -sha256 -sign key.pem -out manifest.sig manifest
//
// i.e. Ed25519 signs the message itself (no pre-hash), RSA (PKCS#1 v1.5) and
// ECDSA (DER-encoded) sign its SHA-256. Verification is trusted_keys.h's job.
#pragma once

#include <openssl/types.h>

#include <cstddef>
#include <filesystem>
#include <memory>
#include <span>
#include <string>
#include <vector>

#include "support/error.h"

namespace bpfwarden {

// Creates a new Ed25519 key pair: the private key as PEM PKCS#8
// ("-----BEGIN PRIVATE KEY-----", mode 0600) and the public key as PEM
// SubjectPublicKeyInfo ("-----BEGIN PUBLIC KEY-----", mode 0644, what goes in
// the trusted key directory). Modes are exact whatever the umask. Neither file
// may exist (EEXIST: nothing is overwritten); on failure neither is left behind.
Result<void> generate_ed25519_key(const std::filesystem::path& private_key, const std::filesystem::path& public_key);

// Signs `data` with the PEM private key in `private_key` (PKCS#8 or the
// traditional "RSA/EC PRIVATE KEY" forms): Ed25519 raw (64 bytes), RSA
// PKCS#1 v1.5 over SHA-256, ECDSA P-256 over SHA-256 (DER). Key types the
// verifier would refuse are refused here too (EKEYREJECTED), and so are
// passphrase-protected keys (EINVAL): library code never prompts.
Result<std::vector<unsigned char>> sign_file_bytes(const std::filesystem::path& private_key,
                                                   std::span<const unsigned char> data);

// Lower-case hex SHA-256 of `data`, 64 characters. Empty only if OpenSSL
// itself fails, which no valid digest ever equals.
std::string sha256_hex(std::span<const unsigned char> data);

// --- OpenSSL plumbing shared with trusted_keys.cpp --------------------------

struct EvpPkeyFree {
    void operator()(EVP_PKEY* key) const noexcept;
};
using EvpPkeyPtr = std::unique_ptr<EVP_PKEY, EvpPkeyFree>;

// The oldest error on this thread's OpenSSL error queue as text ("" when the
// queue is empty); the queue is cleared either way, so one failure's errors
// never leak into the next one's message.
std::string take_openssl_error();

// "ed25519", "rsa-<bits>" (>= 2048), "ecdsa-p256". Any other key is
// EKEYREJECTED with a reason that names its type ("RSA key of 1024 bits: ...");
// the caller adds which file it came from.
Result<std::string> key_algorithm(const EVP_PKEY& key);

// Whether `signature` is a valid signature by `key` over `data`, using the
// scheme key_algorithm() implies. false for a mismatch or a malformed
// signature; an error only when OpenSSL cannot set up the check at all.
Result<bool> verify_signature(const EVP_PKEY& key, std::span<const unsigned char> data,
                              std::span<const unsigned char> signature);

}  // namespace bpfwarden
