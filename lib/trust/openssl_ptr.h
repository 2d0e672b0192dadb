// Owners for the OpenSSL objects bpfwarden uses: nothing is freed by hand.
// (EvpPkeyPtr, part of the signature API, is in signature.h.)
#pragma once

#include <openssl/bio.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>

#include <memory>

namespace bpfwarden {

struct BioFree {
    void operator()(BIO* bio) const noexcept { BIO_free(bio); }
};
using BioPtr = std::unique_ptr<BIO, BioFree>;

struct EvpMdCtxFree {
    void operator()(EVP_MD_CTX* ctx) const noexcept { EVP_MD_CTX_free(ctx); }
};
using EvpMdCtxPtr = std::unique_ptr<EVP_MD_CTX, EvpMdCtxFree>;

struct OpensslFree {
    void operator()(void* p) const noexcept { OPENSSL_free(p); }
};
template <typename T>
using OpensslPtr = std::unique_ptr<T, OpensslFree>;

}  // namespace bpfwarden
