#include "privacy/hmac.h"

#include <tuple>

#include <openssl/core_names.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/params.h>

#include "privacy/openssl_error.h"

namespace sluice::privacy {

Result<HmacSha256> HmacSha256::create(std::string_view key)
{
    auto mac = fetchMac("HMAC");
    if (!mac)
        return mac.status();
    MacCtxPtr ctx(EVP_MAC_CTX_new(mac->get()));
    if (!ctx)
        return opensslError("allocating an HMAC context");
    char digest[] = "SHA256";
    OSSL_PARAM params[] = {
        OSSL_PARAM_construct_utf8_string(OSSL_MAC_PARAM_DIGEST, digest, 0),
        OSSL_PARAM_construct_end(),
    };
    // HMAC accepts an empty key, but OpenSSL wants a non-NULL pointer to mean "set a key".
    static const unsigned char kEmpty = 0;
    const auto* keyBytes = key.empty() ? &kEmpty : reinterpret_cast<const unsigned char*>(key.data());
    if (EVP_MAC_init(ctx.get(), keyBytes, key.size(), params) != 1)
        return opensslError("HMAC-SHA256 key setup");
    return HmacSha256(std::move(mac).value(), std::move(ctx));
}

Result<HmacSha256> HmacSha256::clone() const
{
    MacCtxPtr ctx(EVP_MAC_CTX_dup(ctx_.get()));
    if (!ctx)
        return opensslError("duplicating an HMAC context");
    if (EVP_MAC_up_ref(mac_.get()) != 1)
        return opensslError("referencing the HMAC algorithm");
    return HmacSha256(MacPtr(mac_.get()), std::move(ctx));
}

Status HmacSha256::mac(std::string_view data, Digest& out)
{
    size_t length = 0;
    if (EVP_MAC_init(ctx_.get(), nullptr, 0, nullptr) != 1 ||
        EVP_MAC_update(ctx_.get(), reinterpret_cast<const unsigned char*>(data.data()), data.size()) != 1 ||
        EVP_MAC_final(ctx_.get(), out.data(), &length, out.size()) != 1)
        return opensslError("HMAC-SHA256");
    if (length != out.size())
        return Status::internal("HMAC-SHA256 returned a short digest");
    return Status::ok();
}

Result<Digest> HmacSha256::mac(std::string_view data)
{
    Digest out;
    SLUICE_RETURN_IF_ERROR(mac(data, out));
    return out;
}

Status HmacSha256::appendHex(std::string_view data, std::string& out)
{
    Digest digest;
    SLUICE_RETURN_IF_ERROR(mac(data, digest));
    // One append of 64 characters: core's appendHex grows the string a character at a time,
    // which measured as costly as the HMAC itself on this per-value path.
    static constexpr char kDigits[] = "0123456789abcdef";
    char text[2 * std::tuple_size_v<Digest>];
    for (size_t i = 0; i < digest.size(); ++i) {
        text[2 * i] = kDigits[digest[i] >> 4];
        text[2 * i + 1] = kDigits[digest[i] & 15];
    }
    out.append(text, sizeof text);
    return Status::ok();
}

}  // namespace sluice::privacy
