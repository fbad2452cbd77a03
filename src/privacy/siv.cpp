#include "privacy/siv.h"

#include <algorithm>
#include <atomic>
#include <climits>
#include <cstring>

#include <openssl/crypto.h>
#include <openssl/evp.h>

#include "privacy/aes_ni.h"
#include "privacy/openssl_error.h"

namespace sluice::privacy {
namespace {

constexpr size_t kMaxAdComponents = 126;  // RFC 5297 section 7: S2V takes at most 127 strings
constexpr size_t kMaxPlaintext = static_cast<size_t>(INT_MAX) - 64;

std::atomic<uint64_t> nextKeySerial{1};

const uint8_t* bytesOf(std::string_view s) { return reinterpret_cast<const uint8_t*>(s.data()); }

Status authenticationFailed()
{
    return Status::permission("AES-SIV authentication failed: wrong key or altered ciphertext");
}

}  // namespace

SivKey::SivKey(SivKey&& other) noexcept
    : serial_(other.serial_), key_(other.key_), size_(other.size_)
{
    other.wipe();
}

SivKey& SivKey::operator=(SivKey&& other) noexcept
{
    if (this != &other) {
        serial_ = other.serial_;
        size_ = other.size_;
        key_ = other.key_;
        other.wipe();
    }
    return *this;
}

SivKey::~SivKey() { wipe(); }

void SivKey::wipe()
{
    OPENSSL_cleanse(key_.data(), key_.size());
    serial_ = 0;
    size_ = 0;
}

Result<SivCipher> SivCipher::create()
{
    auto cbc = CbcMac::create();
    if (!cbc)
        return cbc.status();
    SivCipher cipher(std::move(cbc).value());
    auto ecb128 = fetchCipher("AES-128-ECB");
    if (!ecb128)
        return ecb128.status();
    auto ecb256 = fetchCipher("AES-256-ECB");
    if (!ecb256)
        return ecb256.status();
    auto ctx = newCipherCtx();
    if (!ctx)
        return ctx.status();
    cipher.ecb128_ = std::move(ecb128).value();
    cipher.ecb256_ = std::move(ecb256).value();
    cipher.ecbCtx_ = std::move(ctx).value();
    return cipher;
}

SivCipher::~SivCipher()
{
    OPENSSL_cleanse(&current_, sizeof current_);
    OPENSSL_cleanse(ctrKeys_.bytes.data(), ctrKeys_.bytes.size());
}

void SivCipher::forgetKey()
{
    OPENSSL_cleanse(&current_, sizeof current_);
    current_.serial = 0;
    current_.size = 0;
}

Status SivCipher::checkKeyed() const
{
    if (current_.size == 0)
        return Status::internal("AES-SIV used before a key was set");
    return Status::ok();
}

Status SivCipher::keyContexts(const uint8_t* key, size_t size)
{
    size_t half = size / 2;
    Status st = cbcMac_.setKey(key, half);
    if (!st.isOk()) {
        forgetKey();
        return st;
    }
    if (half == 32 && aesni::available()) {
        aesni::expandKey256(key + half, ctrKeys_);
        ctrNi_ = true;
        return Status::ok();
    }
    ctrNi_ = false;
    // As in CbcMac::setKey: a NULL cipher re-keys the existing provider context.
    const EVP_CIPHER* cipher = nullptr;
    if (half != ecbKeySize_)
        cipher = half == 16 ? ecb128_.get() : ecb256_.get();
    if (EVP_EncryptInit_ex2(ecbCtx_.get(), cipher, key + half, nullptr, nullptr) != 1 ||
        (cipher != nullptr && EVP_CIPHER_CTX_set_padding(ecbCtx_.get(), 0) != 1)) {
        ecbKeySize_ = 0;
        forgetKey();
        return opensslError("AES-ECB key setup");
    }
    ecbKeySize_ = half;
    return Status::ok();
}

Status SivCipher::loadCurrent(const SivKey& key)
{
    // Key-derived values, wiped together at the end.
    struct {
        Block l;
        Block k1;
        Block k2;
        Block both[2];  // CMAC(<zero>) and CMAC(""), encrypted side by side
    } t{};
    // RFC 4493 subkeys: L = AES(K, 0^128), K1 = dbl(L), K2 = dbl(K1).
    Status st = cbcMac_.encryptEach(t.l.data(), 1);
    t.k1 = dbl(t.l);
    t.k2 = dbl(t.k1);
    // CMAC(<zero>): one complete block, so AES(0^128 ^ K1); CMAC(""): one padded block, so
    // AES(10*0 ^ K2).
    t.both[0] = t.k1;
    t.both[1][0] = 0x80;
    xorBytes(t.both[1].data(), t.k2.data(), 16);
    if (st.isOk())
        st = cbcMac_.encryptEach(t.both[0].data(), 2);
    if (st.isOk()) {
        current_.serial = key.serial_;
        current_.size = key.size_;
        current_.k1 = t.k1;
        current_.k2 = t.k2;
        current_.d = dbl(t.both[0]);
        xorBytes(current_.d.data(), t.both[1].data(), 16);
        current_.fullMask = current_.d;
        xorBytes(current_.fullMask.data(), t.k1.data(), 16);
        current_.shortMask = dbl(current_.d);
        xorBytes(current_.shortMask.data(), t.k1.data(), 16);
    } else {
        forgetKey();
    }
    OPENSSL_cleanse(&t, sizeof t);
    return st;
}

Result<SivKey> SivCipher::makeKey(std::string_view keyBytes)
{
    if (keyBytes.size() != 32 && keyBytes.size() != 64)
        return Status::invalid("AES-SIV key must be 32 or 64 bytes, got " + std::to_string(keyBytes.size()));
    SLUICE_RETURN_IF_ERROR(keyContexts(bytesOf(keyBytes), keyBytes.size()));
    forgetKey();  // the contexts hold the new key but current_ is not loaded until the end

    SivKey key;
    key.size_ = static_cast<uint8_t>(keyBytes.size());
    std::memcpy(key.key_.data(), keyBytes.data(), keyBytes.size());

    key.serial_ = nextKeySerial.fetch_add(1, std::memory_order_relaxed);
    SLUICE_RETURN_IF_ERROR(loadCurrent(key));
    return key;
}

Status SivCipher::setKey(const SivKey& key)
{
    if (key.empty())
        return Status::invalid("AES-SIV key is empty");
    if (key.serial_ == current_.serial)
        return Status::ok();
    SLUICE_RETURN_IF_ERROR(keyContexts(key.key_.data(), key.size_));
    return loadCurrent(key);
}

// S2V(K1, "", P) with the per-key state: T = P xorend D (P >= 16 bytes) or dbl(D) ^ pad(P),
// then CMAC(T). `work` has room for P rounded up to whole blocks (at least 16 bytes).
Status SivCipher::s2vFast(std::string_view plaintext, uint8_t* work, Block& v)
{
    size_t n = plaintext.size();
    if (n < 16) {
        if (n)
            std::memcpy(work, plaintext.data(), n);
        work[n] = 0x80;
        std::memset(work + n + 1, 0, 15 - n);
        xorBytes(work, current_.shortMask.data(), 16);
        return cbcMac_.macInPlace(work, 16, v);
    }
    std::memcpy(work, plaintext.data(), n);
    if (n % 16 == 0) {
        xorBytes(work + n - 16, current_.fullMask.data(), 16);
        return cbcMac_.macInPlace(work, n, v);
    }
    size_t padded = (n / 16 + 1) * 16;
    xorBytes(work + n - 16, current_.d.data(), 16);
    work[n] = 0x80;
    std::memset(work + n + 1, 0, padded - n - 1);
    xorBytes(work + padded - 16, current_.k2.data(), 16);
    return cbcMac_.macInPlace(work, padded, v);
}

Status SivCipher::s2vGeneral(std::span<const std::string_view> ad, std::string_view plaintext, Block& v)
{
    const Block& k1 = current_.k1;
    const Block& k2 = current_.k2;
    Block d;
    Block zero{};
    SLUICE_RETURN_IF_ERROR(cmacWithSubkeys(cbcMac_, k1, k2, {reinterpret_cast<const char*>(zero.data()), 16},
                                           scratch_, d));
    for (std::string_view component : ad) {
        Block mac;
        SLUICE_RETURN_IF_ERROR(cmacWithSubkeys(cbcMac_, k1, k2, component, scratch_, mac));
        d = dbl(d);
        xorBytes(d.data(), mac.data(), 16);
    }
    size_t n = plaintext.size();
    if (n >= 16) {
        // The xorend is applied in place after the copy that cmacWithSubkeys makes; do both here.
        bool complete = n % 16 == 0;
        size_t padded = complete ? n : (n / 16 + 1) * 16;
        if (scratch_.size() < padded)
            scratch_.resize(padded);
        uint8_t* buf = scratch_.data();
        std::memcpy(buf, plaintext.data(), n);
        xorBytes(buf + n - 16, d.data(), 16);
        if (complete) {
            xorBytes(buf + padded - 16, k1.data(), 16);
        } else {
            buf[n] = 0x80;
            std::memset(buf + n + 1, 0, padded - n - 1);
            xorBytes(buf + padded - 16, k2.data(), 16);
        }
        return cbcMac_.macInPlace(buf, padded, v);
    }
    Block t{};
    if (n)
        std::memcpy(t.data(), plaintext.data(), n);
    t[n] = 0x80;
    Block dd = dbl(d);
    xorBytes(t.data(), dd.data(), 16);
    return cmacWithSubkeys(cbcMac_, k1, k2, {reinterpret_cast<const char*>(t.data()), 16}, scratch_, v);
}

Status SivCipher::ctr(const uint8_t* siv, const uint8_t* in, size_t size, uint8_t* out)
{
    // Q = V with bits 63 and 31 cleared (RFC 5297 section 2.6). Because bit 31 is clear, the
    // low 32-bit word of the counter cannot carry for fewer than 2^31 blocks (inputs here are
    // under 2^27 blocks), so counting in that word alone is exact 128-bit counting.
    uint8_t q[16];
    std::memcpy(q, siv, 16);
    q[8] &= 0x7f;
    q[12] &= 0x7f;
    uint32_t low = uint32_t(q[12]) << 24 | uint32_t(q[13]) << 16 | uint32_t(q[14]) << 8 | q[15];

    constexpr size_t kChunkBlocks = 16;
    uint8_t stream[16 * kChunkBlocks];
    size_t done = 0;
    size_t used = 0;  // bytes of `stream` that held keystream, wiped at the end
    while (done < size) {
        size_t chunk = size - done < sizeof stream ? size - done : sizeof stream;
        size_t blocks = (chunk + 15) / 16;
        for (size_t b = 0; b < blocks; ++b) {
            uint8_t* counter = stream + 16 * b;
            std::memcpy(counter, q, 12);
            counter[12] = static_cast<uint8_t>(low >> 24);
            counter[13] = static_cast<uint8_t>(low >> 16);
            counter[14] = static_cast<uint8_t>(low >> 8);
            counter[15] = static_cast<uint8_t>(low);
            ++low;
        }
        int outLength = 0;
        if (ctrNi_)
            aesni::encryptBlocks256(ctrKeys_, stream, blocks);
        else if (EVP_EncryptUpdate(ecbCtx_.get(), stream, &outLength, stream, static_cast<int>(16 * blocks)) != 1 ||
                 static_cast<size_t>(outLength) != 16 * blocks)
            return opensslError("AES-CTR keystream");
        for (size_t i = 0; i < chunk; ++i)
            out[done + i] = in[done + i] ^ stream[i];
        done += chunk;
        used = std::max(used, 16 * blocks);
    }
    OPENSSL_cleanse(stream, used);
    return Status::ok();
}

Status SivCipher::encrypt(std::string_view plaintext, uint8_t* out)
{
    SLUICE_RETURN_IF_ERROR(checkKeyed());
    if (plaintext.size() > kMaxPlaintext)
        return Status::invalid("AES-SIV plaintext too large");
    // `out` (16 + n bytes) doubles as the S2V work area: n rounded up to whole blocks fits.
    Block v;
    uint8_t small[16];
    uint8_t* work = plaintext.size() < 16 ? small : out;
    Status st = s2vFast(plaintext, work, v);
    if (st.isOk()) {
        std::memcpy(out, v.data(), kSivSize);
        st = ctr(out, bytesOf(plaintext), plaintext.size(), out + kSivSize);
    }
    if (!st.isOk())
        forgetKey();  // an EVP failure leaves the contexts in an unknown state: re-key next time
    return st;
}

Status SivCipher::encrypt(std::string_view plaintext, std::string& out)
{
    size_t at = out.size();
    out.resize(at + kSivSize + plaintext.size());
    Status st = encrypt(plaintext, reinterpret_cast<uint8_t*>(out.data() + at));
    if (!st.isOk())
        out.resize(at);
    return st;
}

// The end of both decryptions: `st` says whether CTR and S2V ran, `v` is the recomputed SIV and
// `siv` the received one. Plaintext that does not authenticate is wiped, never returned.
Status SivCipher::finishDecrypt(Status st, const Block& v, const uint8_t* siv, std::string& plaintext)
{
    if (!st.isOk())
        forgetKey();
    else if (CRYPTO_memcmp(v.data(), siv, kSivSize) != 0)
        st = authenticationFailed();
    if (!st.isOk()) {
        OPENSSL_cleanse(plaintext.data(), plaintext.size());
        plaintext.clear();
    }
    return st;
}

Status SivCipher::decrypt(std::string_view sivAndCiphertext, std::string& plaintext)
{
    plaintext.clear();
    SLUICE_RETURN_IF_ERROR(checkKeyed());
    if (sivAndCiphertext.size() < kSivSize)
        return Status::corruption("AES-SIV ciphertext shorter than its 16-byte SIV");
    if (sivAndCiphertext.size() > kMaxPlaintext)
        return Status::invalid("AES-SIV ciphertext too large");
    const uint8_t* in = bytesOf(sivAndCiphertext);
    size_t n = sivAndCiphertext.size() - kSivSize;
    plaintext.resize(n);
    auto* pt = reinterpret_cast<uint8_t*>(plaintext.data());
    Status st = ctr(in, in + kSivSize, n, pt);
    Block v{};
    if (st.isOk()) {
        size_t need = n < 16 ? 16 : (n / 16 + 1) * 16;
        if (scratch_.size() < need)
            scratch_.resize(need);
        st = s2vFast(plaintext, scratch_.data(), v);
    }
    return finishDecrypt(st, v, in, plaintext);
}

Result<std::string> SivCipher::decrypt(std::string_view sivAndCiphertext)
{
    std::string plaintext;
    SLUICE_RETURN_IF_ERROR(decrypt(sivAndCiphertext, plaintext));
    return plaintext;
}

Status SivCipher::encryptWithAd(std::span<const std::string_view> ad, std::string_view plaintext, std::string& out)
{
    SLUICE_RETURN_IF_ERROR(checkKeyed());
    if (ad.size() > kMaxAdComponents)
        return Status::invalid("AES-SIV takes at most 126 associated-data components");
    if (plaintext.size() > kMaxPlaintext)
        return Status::invalid("AES-SIV plaintext too large");
    Block v;
    Status s2v = s2vGeneral(ad, plaintext, v);
    if (!s2v.isOk()) {
        forgetKey();
        return s2v;
    }
    size_t at = out.size();
    out.resize(at + kSivSize + plaintext.size());
    auto* dst = reinterpret_cast<uint8_t*>(out.data() + at);
    std::memcpy(dst, v.data(), kSivSize);
    Status st = ctr(dst, bytesOf(plaintext), plaintext.size(), dst + kSivSize);
    if (!st.isOk()) {
        forgetKey();
        out.resize(at);
    }
    return st;
}

Status SivCipher::decryptWithAd(std::span<const std::string_view> ad, std::string_view sivAndCiphertext,
                                std::string& plaintext)
{
    plaintext.clear();
    SLUICE_RETURN_IF_ERROR(checkKeyed());
    if (ad.size() > kMaxAdComponents)
        return Status::invalid("AES-SIV takes at most 126 associated-data components");
    if (sivAndCiphertext.size() < kSivSize)
        return Status::corruption("AES-SIV ciphertext shorter than its 16-byte SIV");
    const uint8_t* in = bytesOf(sivAndCiphertext);
    size_t n = sivAndCiphertext.size() - kSivSize;
    plaintext.resize(n);
    Status st = ctr(in, in + kSivSize, n, reinterpret_cast<uint8_t*>(plaintext.data()));
    Block v{};
    if (st.isOk())
        st = s2vGeneral(ad, plaintext, v);
    return finishDecrypt(st, v, in, plaintext);
}

}  // namespace sluice::privacy
