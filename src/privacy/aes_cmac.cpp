#include "privacy/aes_cmac.h"

#include <climits>
#include <cstring>

#include <openssl/crypto.h>
#include <openssl/evp.h>

#include "privacy/openssl_error.h"

namespace sluice::privacy {
namespace {

constexpr uint8_t kZeroIv[16] = {};

}  // namespace

namespace {

uint64_t loadBigEndian64(const uint8_t* p)
{
    uint64_t v = 0;
    for (int i = 0; i < 8; ++i)
        v = v << 8 | p[i];
    return v;
}

void storeBigEndian64(uint64_t v, uint8_t* p)
{
    for (int i = 7; i >= 0; --i) {
        p[i] = static_cast<uint8_t>(v);
        v >>= 8;
    }
}

}  // namespace

Block dbl(const Block& in)
{
    // The block as a 128-bit big-endian number, shifted left by one in two 64-bit halves.
    const uint64_t hi = loadBigEndian64(in.data());
    const uint64_t lo = loadBigEndian64(in.data() + 8);
    const uint64_t carry = hi >> 63;
    Block out;
    storeBigEndian64(hi << 1 | lo >> 63, out.data());
    // Constant time: the reduction is applied through a mask, not a branch on key-derived bits.
    storeBigEndian64(lo << 1 ^ (0x87 & (0 - carry)), out.data() + 8);
    return out;
}

Result<CbcMac> CbcMac::create()
{
    CbcMac mac;
    auto cbc128 = fetchCipher("AES-128-CBC");
    if (!cbc128)
        return cbc128.status();
    auto cbc256 = fetchCipher("AES-256-CBC");
    if (!cbc256)
        return cbc256.status();
    auto ctx = newCipherCtx();
    if (!ctx)
        return ctx.status();
    mac.cbc128_ = std::move(cbc128).value();
    mac.cbc256_ = std::move(cbc256).value();
    mac.ctx_ = std::move(ctx).value();
    return mac;
}

Status CbcMac::setKey(const uint8_t* key, size_t size)
{
    if (size != 16 && size != 32)
        return Status::invalid("AES-CMAC key must be 16 or 32 bytes");
    if (size == 32 && aesni::available()) {
        aesni::expandKey256(key, niKeys_);
        ni_ = true;
        keySize_ = size;
        return Status::ok();
    }
    ni_ = false;
    // A NULL cipher keeps the provider context and only runs the key schedule; naming the
    // cipher again would free and rebuild it.
    const EVP_CIPHER* cipher = nullptr;
    if (size != evpKeySize_)
        cipher = size == 16 ? cbc128_.get() : cbc256_.get();
    chain_ = Block{};
    if (EVP_EncryptInit_ex2(ctx_.get(), cipher, key, kZeroIv, nullptr) != 1) {
        keySize_ = evpKeySize_ = 0;
        return opensslError("AES-CBC key setup");
    }
    if (cipher != nullptr && EVP_CIPHER_CTX_set_padding(ctx_.get(), 0) != 1) {
        keySize_ = evpKeySize_ = 0;
        return opensslError("AES-CBC padding off");
    }
    keySize_ = evpKeySize_ = size;
    return Status::ok();
}

Status CbcMac::macInPlace(uint8_t* data, size_t size, Block& mac)
{
    if (keySize_ == 0)
        return Status::internal("AES-CMAC used before a key was set");
    if (size == 0 || size % 16 != 0 || size > static_cast<size_t>(INT_MAX))
        return Status::internal("CBC-MAC input must be a nonzero multiple of 16 bytes");
    if (ni_) {
        aesni::cbcMac256(niKeys_, data, size / 16, mac.data());
        return Status::ok();
    }
    xorBytes(data, chain_.data(), 16);
    int outLength = 0;
    if (EVP_EncryptUpdate(ctx_.get(), data, &outLength, data, static_cast<int>(size)) != 1 ||
        static_cast<size_t>(outLength) != size) {
        // The chain state is unknown now: start again from a zero IV.
        Status st = opensslError("AES-CBC-MAC");
        chain_ = Block{};
        if (EVP_EncryptInit_ex2(ctx_.get(), nullptr, nullptr, kZeroIv, nullptr) != 1) {
            clearOpensslErrors();
            keySize_ = evpKeySize_ = 0;
        }
        return st;
    }
    std::memcpy(mac.data(), data + size - 16, 16);
    chain_ = mac;
    return Status::ok();
}

Status CbcMac::encryptEach(uint8_t* data, size_t blocks)
{
    if (keySize_ == 0)
        return Status::internal("AES-CMAC used before a key was set");
    if (ni_) {
        aesni::encryptBlocks256(niKeys_, data, blocks);
        return Status::ok();
    }
    for (size_t b = 0; b < blocks; ++b) {
        Block out;
        SLUICE_RETURN_IF_ERROR(macInPlace(data + 16 * b, 16, out));
        std::memcpy(data + 16 * b, out.data(), 16);
        OPENSSL_cleanse(out.data(), out.size());
    }
    return Status::ok();
}

Status cmacWithSubkeys(CbcMac& cbc, const Block& k1, const Block& k2, std::string_view data,
                       std::vector<uint8_t>& scratch, Block& out)
{
    size_t n = data.size();
    bool complete = n > 0 && n % 16 == 0;
    size_t padded = complete ? n : (n / 16 + 1) * 16;
    if (scratch.size() < padded)
        scratch.resize(padded);
    uint8_t* buf = scratch.data();
    if (n)
        std::memcpy(buf, data.data(), n);
    if (complete) {
        xorBytes(buf + padded - 16, k1.data(), 16);
    } else {
        buf[n] = 0x80;
        std::memset(buf + n + 1, 0, padded - n - 1);
        xorBytes(buf + padded - 16, k2.data(), 16);
    }
    return cbc.macInPlace(buf, padded, out);
}

Result<AesCmac> AesCmac::create()
{
    auto cbc = CbcMac::create();
    if (!cbc)
        return cbc.status();
    return AesCmac(std::move(cbc).value());
}

CbcMac::~CbcMac()
{
    OPENSSL_cleanse(chain_.data(), chain_.size());
    OPENSSL_cleanse(niKeys_.bytes.data(), niKeys_.bytes.size());
}

AesCmac::~AesCmac()
{
    OPENSSL_cleanse(k1_.data(), k1_.size());
    OPENSSL_cleanse(k2_.data(), k2_.size());
}

Status AesCmac::setKey(std::string_view key)
{
    SLUICE_RETURN_IF_ERROR(cbc_.setKey(reinterpret_cast<const uint8_t*>(key.data()), key.size()));
    Block zero{};
    Block l;
    SLUICE_RETURN_IF_ERROR(cbc_.macInPlace(zero.data(), zero.size(), l));
    k1_ = dbl(l);
    k2_ = dbl(k1_);
    OPENSSL_cleanse(l.data(), l.size());
    return Status::ok();
}

Result<Block> AesCmac::mac(std::string_view data)
{
    Block out;
    SLUICE_RETURN_IF_ERROR(cmacWithSubkeys(cbc_, k1_, k2_, data, scratch_, out));
    return out;
}

}  // namespace sluice::privacy
