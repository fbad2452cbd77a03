// Micro-benchmark of the privacy primitives: prints ops/s, is not a timed test.
//
// The AES-SIV cases model the daemon: 100,000 distinct 64-byte keys (one per session id) used in
// random order, 32-byte PII values, four PII fields per event. "per value" switches key for
// every value (worst case); "per event of 4" switches once and encrypts four values. Figures
// are values/s unless the name says events/s. Each case runs 5 times; the median is printed.
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <functional>
#include <random>
#include <string>
#include <vector>

#include <openssl/core_names.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/params.h>

#include "evp_siv_reference.h"
#include "privacy/evp_handles.h"
#include "privacy/hmac.h"
#include "privacy/key_wrap.h"
#include "privacy/masker.h"
#include "privacy/murmur3.h"
#include "privacy/siv.h"
#include "privacy/tink_ciphertext.h"

using namespace sluice;
using namespace sluice::privacy;

namespace {

constexpr size_t kKeys = 100'000;
constexpr size_t kValueSize = 32;
constexpr int kRepeats = 5;
constexpr double kSecondsPerRun = 0.25;

uint64_t sink = 0;
const char* filter = nullptr;  // argv[1]: run only the cases whose name contains it

void consume(const void* p, size_t n)
{
    const auto* b = static_cast<const uint8_t*>(p);
    sink += n ? b[0] + b[n - 1] : 0;
}

void check(const Status& st, const char* what)
{
    if (!st.isOk()) {
        std::fprintf(stderr, "%s: %s\n", what, st.message().c_str());
        std::exit(70);
    }
}

// Runs `batch` (which does `opsPerBatch` operations) until kSecondsPerRun passes; returns ops/s.
double measure(const std::function<void()>& batch, double opsPerBatch)
{
    using Clock = std::chrono::steady_clock;
    batch();  // warm up
    size_t batches = 0;
    auto start = Clock::now();
    double elapsed = 0;
    do {
        for (int i = 0; i < 16; ++i)
            batch();
        batches += 16;
        elapsed = std::chrono::duration<double>(Clock::now() - start).count();
    } while (elapsed < kSecondsPerRun);
    return batches * opsPerBatch / elapsed;
}

void report(const char* name, const std::function<void()>& batch, double opsPerBatch)
{
    if (filter != nullptr && std::strstr(name, filter) == nullptr)
        return;
    std::vector<double> runs;
    for (int r = 0; r < kRepeats; ++r)
        runs.push_back(measure(batch, opsPerBatch));
    std::sort(runs.begin(), runs.end());
    std::printf("%-58s %10.3f M/s   (min %.3f, max %.3f)\n", name, runs[kRepeats / 2] / 1e6, runs.front() / 1e6,
                runs.back() / 1e6);
    std::fflush(stdout);
}

// S2V on EVP_MAC "CMAC" instead of our CBC-MAC, with the same per-key precomputation, to
// compare the two CMAC routes. CTR as in OpenSSL's own mode (EVP AES-256-CTR, IV set per value).
class MacS2v {
public:
    MacS2v()
    {
        mac_ = std::move(fetchMac("CMAC")).value();
        ctx_.reset(EVP_MAC_CTX_new(mac_.get()));
        ctr_ = std::move(fetchCipher("AES-256-CTR")).value();
        ctrCtx_ = std::move(newCipherCtx()).value();
        char cipher[] = "AES-256-CBC";
        OSSL_PARAM params[] = {OSSL_PARAM_construct_utf8_string(OSSL_MAC_PARAM_CIPHER, cipher, 0),
                               OSSL_PARAM_construct_end()};
        EVP_MAC_CTX_set_params(ctx_.get(), params);
        const unsigned char placeholder[32] = {};
        EVP_EncryptInit_ex2(ctrCtx_.get(), ctr_.get(), placeholder, nullptr, nullptr);
    }

    Block cmac(const uint8_t* data, size_t n)
    {
        Block out;
        size_t length = 0;
        EVP_MAC_init(ctx_.get(), nullptr, 0, nullptr);
        EVP_MAC_update(ctx_.get(), data, n);
        EVP_MAC_final(ctx_.get(), out.data(), &length, out.size());
        return out;
    }

    // The per-key S2V prefix D = dbl(CMAC(0)) ^ CMAC("").
    Block prefix(const uint8_t* key)
    {
        setKey(key);
        Block zero{};
        Block d = dbl(cmac(zero.data(), 16));
        Block e = cmac(zero.data(), 0);
        xorBytes(d.data(), e.data(), 16);
        return d;
    }

    void setKey(const uint8_t* key)
    {
        EVP_MAC_init(ctx_.get(), key, 32, nullptr);
        EVP_EncryptInit_ex2(ctrCtx_.get(), nullptr, key + 32, nullptr, nullptr);
    }

    void encrypt(const Block& d, const uint8_t* pt, size_t n, uint8_t* out)
    {
        uint8_t t[256];
        Block v;
        if (n >= 16) {
            std::memcpy(t, pt, n);
            xorBytes(t + n - 16, d.data(), 16);
            v = cmac(t, n);
        } else {
            Block dd = dbl(d);
            std::memset(t, 0, 16);
            std::memcpy(t, pt, n);
            t[n] = 0x80;
            xorBytes(t, dd.data(), 16);
            v = cmac(t, 16);
        }
        std::memcpy(out, v.data(), 16);
        ctr(v, pt, n, out + 16);
    }

    void ctr(Block q, const uint8_t* in, size_t n, uint8_t* out)
    {
        q[8] &= 0x7f;
        q[12] &= 0x7f;
        int length = 0;
        EVP_EncryptInit_ex2(ctrCtx_.get(), nullptr, nullptr, q.data(), nullptr);
        EVP_EncryptUpdate(ctrCtx_.get(), out, &length, in, static_cast<int>(n));
    }

private:
    MacPtr mac_;
    MacCtxPtr ctx_;
    CipherPtr ctr_;
    CipherCtxPtr ctrCtx_;
};

// CTR keystream the way SivCipher makes it: counter blocks through a keyed AES-256-ECB context.
class EcbCtr {
public:
    EcbCtr()
    {
        ecb_ = std::move(fetchCipher("AES-256-ECB")).value();
        ctx_ = std::move(newCipherCtx()).value();
        const unsigned char placeholder[32] = {};
        EVP_EncryptInit_ex2(ctx_.get(), ecb_.get(), placeholder, nullptr, nullptr);
        EVP_CIPHER_CTX_set_padding(ctx_.get(), 0);
    }

    void ctr(Block q, const uint8_t* in, size_t n, uint8_t* out)
    {
        q[8] &= 0x7f;
        q[12] &= 0x7f;
        uint8_t stream[256];
        size_t blocks = (n + 15) / 16;
        for (size_t b = 0; b < blocks; ++b) {
            std::memcpy(stream + 16 * b, q.data(), 16);
            stream[16 * b + 15] = static_cast<uint8_t>(q[15] + b);
        }
        int length = 0;
        EVP_EncryptUpdate(ctx_.get(), stream, &length, stream, static_cast<int>(16 * blocks));
        for (size_t i = 0; i < n; ++i)
            out[i] = in[i] ^ stream[i];
    }

private:
    CipherPtr ecb_;
    CipherCtxPtr ctx_;
};

}  // namespace

int main(int argc, char** argv)
{
    if (argc > 1)
        filter = argv[1];
    std::mt19937_64 rng(1);
    auto randomBytesOf = [&](size_t n) {
        std::string s(n, '\0');
        for (char& c : s)
            c = static_cast<char>(rng());
        return s;
    };

    std::printf("sluice privacy micro-benchmark: %zu keys, %zu-byte values, median of %d runs of %.2f s\n\n", kKeys,
                kValueSize, kRepeats, kSecondsPerRun);

    std::vector<std::string> rawKeys;
    rawKeys.reserve(kKeys);
    for (size_t i = 0; i < kKeys; ++i)
        rawKeys.push_back(randomBytesOf(64));
    std::vector<uint32_t> order(kKeys);
    for (size_t i = 0; i < kKeys; ++i)
        order[i] = static_cast<uint32_t>(i);
    std::shuffle(order.begin(), order.end(), rng);
    std::vector<std::string> values;
    for (int i = 0; i < 4; ++i)
        values.push_back(randomBytesOf(kValueSize));

    auto cipherOr = SivCipher::create();
    check(cipherOr.status(), "SivCipher");
    SivCipher cipher = std::move(cipherOr).value();
    std::vector<SivKey> keys;
    keys.reserve(kKeys);
    for (const std::string& raw : rawKeys) {
        auto k = cipher.makeKey(raw);
        check(k.status(), "makeKey");
        keys.push_back(std::move(k).value());
    }
    auto evpOr = privacy::testing::EvpSiv::create(64);
    check(evpOr.status(), "EvpSiv");
    privacy::testing::EvpSiv evp = std::move(evpOr).value();

    constexpr size_t kBatch = 1024;  // values per batch call
    size_t cursor = 0;
    auto nextKey = [&]() -> size_t {
        size_t k = order[cursor];
        cursor = cursor + 1 == kKeys ? 0 : cursor + 1;
        return k;
    };
    std::string out;
    out.reserve(4096);
    uint8_t buf[256];

    std::printf("AES-SIV (Tink DAEAD), 32-byte values\n");
    check(evp.setKey(rawKeys[0]), "evp setKey");
    report("(a) EVP AES-256-SIV, one keyed ctx copied per value", [&] {
        for (size_t i = 0; i < kBatch; ++i) {
            out.clear();
            check(evp.encryptCopy(values[i & 3], out), "evp copy");
            consume(out.data(), out.size());
        }
    }, kBatch);
    report("(a) EVP AES-256-SIV, re-keyed per value (100k keys)", [&] {
        for (size_t i = 0; i < kBatch; ++i) {
            out.clear();
            check(evp.encryptRekey(rawKeys[nextKey()], values[i & 3], out), "evp rekey");
            consume(out.data(), out.size());
        }
    }, kBatch);
    report("(a) EVP AES-256-SIV, re-keyed per event of 4, copied per value", [&] {
        for (size_t e = 0; e < kBatch / 4; ++e) {
            check(evp.setKey(rawKeys[nextKey()]), "evp setKey");
            for (int f = 0; f < 4; ++f) {
                out.clear();
                check(evp.encryptCopy(values[f], out), "evp copy");
                consume(out.data(), out.size());
            }
        }
    }, kBatch);

    check(cipher.setKey(keys[0]), "setKey");
    report("(b) ours, one key (no key switch)", [&] {
        for (size_t i = 0; i < kBatch; ++i) {
            check(cipher.encrypt(values[i & 3], buf), "encrypt");
            consume(buf, 48);
        }
    }, kBatch);
    report("(b) ours, key switched per value (100k keys)", [&] {
        for (size_t i = 0; i < kBatch; ++i) {
            check(cipher.setKey(keys[nextKey()]), "setKey");
            check(cipher.encrypt(values[i & 3], buf), "encrypt");
            consume(buf, 48);
        }
    }, kBatch);
    report("(b) ours, key switched per event of 4", [&] {
        for (size_t e = 0; e < kBatch / 4; ++e) {
            check(cipher.setKey(keys[nextKey()]), "setKey");
            for (int f = 0; f < 4; ++f) {
                check(cipher.encrypt(values[f], buf), "encrypt");
                consume(buf, 48);
            }
        }
    }, kBatch);
    report("(b) ours, per event of 4 from raw key bytes (makeKey)", [&] {
        for (size_t e = 0; e < kBatch / 4; ++e) {
            auto k = cipher.makeKey(rawKeys[nextKey()]);
            check(k.status(), "makeKey");
            for (int f = 0; f < 4; ++f) {
                check(cipher.encrypt(values[f], buf), "encrypt");
                consume(buf, 48);
            }
        }
    }, kBatch);
    report("(b) ours, per event of 4 + Tink prefix + Base64 append", [&] {
        out.clear();
        for (size_t e = 0; e < kBatch / 4; ++e) {
            check(cipher.setKey(keys[nextKey()]), "setKey");
            for (int f = 0; f < 4; ++f)
                check(appendTinkBase64(cipher, 0x12345678, values[f], out), "tink");
        }
        consume(out.data(), out.size());
        out.clear();
    }, kBatch);

    {
        MacS2v macS2v;
        std::vector<Block> prefixes;
        prefixes.reserve(kKeys);
        for (const std::string& raw : rawKeys)
            prefixes.push_back(macS2v.prefix(reinterpret_cast<const uint8_t*>(raw.data())));
        report("(b') S2V on EVP_MAC CMAC, key switched per value", [&] {
            for (size_t i = 0; i < kBatch; ++i) {
                size_t k = nextKey();
                macS2v.setKey(reinterpret_cast<const uint8_t*>(rawKeys[k].data()));
                macS2v.encrypt(prefixes[k], reinterpret_cast<const uint8_t*>(values[i & 3].data()), kValueSize, buf);
                consume(buf, 48);
            }
        }, kBatch);
        report("(b') S2V on EVP_MAC CMAC, key switched per event of 4", [&] {
            for (size_t e = 0; e < kBatch / 4; ++e) {
                size_t k = nextKey();
                macS2v.setKey(reinterpret_cast<const uint8_t*>(rawKeys[k].data()));
                for (int f = 0; f < 4; ++f) {
                    macS2v.encrypt(prefixes[k], reinterpret_cast<const uint8_t*>(values[f].data()), kValueSize, buf);
                    consume(buf, 48);
                }
            }
        }, kBatch);
        // Sanity: the EVP_MAC route must give the same bytes as SivCipher.
        uint8_t a[48];
        uint8_t b[48];
        macS2v.setKey(reinterpret_cast<const uint8_t*>(rawKeys[7].data()));
        macS2v.encrypt(prefixes[7], reinterpret_cast<const uint8_t*>(values[0].data()), kValueSize, a);
        check(cipher.setKey(keys[7]), "setKey");
        check(cipher.encrypt(values[0], b), "encrypt");
        if (std::memcmp(a, b, sizeof a) != 0) {
            std::fprintf(stderr, "EVP_MAC CMAC route disagrees with SivCipher\n");
            return 70;
        }
    }

    {
        // The CTR half alone: OpenSSL's CTR mode needs its IV set per value; a keyed ECB
        // context fed counter blocks needs no per-value setup.
        MacS2v evpCtr;
        EcbCtr ecbCtr;
        Block q{};
        report("CTR part only, EVP AES-256-CTR with IV set per value", [&] {
            for (size_t i = 0; i < kBatch; ++i) {
                q[0] = static_cast<uint8_t>(i);
                evpCtr.ctr(q, reinterpret_cast<const uint8_t*>(values[i & 3].data()), kValueSize, buf);
                consume(buf, kValueSize);
            }
        }, kBatch);
        report("CTR part only, counter blocks through keyed AES-256-ECB", [&] {
            for (size_t i = 0; i < kBatch; ++i) {
                q[0] = static_cast<uint8_t>(i);
                ecbCtr.ctr(q, reinterpret_cast<const uint8_t*>(values[i & 3].data()), kValueSize, buf);
                consume(buf, kValueSize);
            }
        }, kBatch);
    }

    std::string encrypted;
    check(cipher.setKey(keys[0]), "setKey");
    check(cipher.encrypt(values[0], encrypted), "encrypt");
    std::string plain;
    report("(b) ours, decrypt, one key", [&] {
        for (size_t i = 0; i < kBatch; ++i) {
            check(cipher.decrypt(encrypted, plain), "decrypt");
            consume(plain.data(), plain.size());
        }
    }, kBatch);

    std::printf("\nHMAC-SHA256 of 32 bytes\n");
    auto hmacOr = HmacSha256::create(rawKeys[0].substr(0, 32));
    check(hmacOr.status(), "hmac");
    HmacSha256 hmac = std::move(hmacOr).value();
    Digest digest;
    report("keyed EVP_MAC_CTX re-initialised per value (HmacSha256)", [&] {
        for (size_t i = 0; i < kBatch; ++i) {
            check(hmac.mac(values[i & 3], digest), "hmac");
            consume(digest.data(), digest.size());
        }
    }, kBatch);
    {
        MacPtr mac = std::move(fetchMac("HMAC")).value();
        MacCtxPtr keyed(EVP_MAC_CTX_new(mac.get()));
        char sha[] = "SHA256";
        OSSL_PARAM params[] = {OSSL_PARAM_construct_utf8_string(OSSL_MAC_PARAM_DIGEST, sha, 0), OSSL_PARAM_construct_end()};
        EVP_MAC_init(keyed.get(), reinterpret_cast<const unsigned char*>(rawKeys[0].data()), 32, params);
        report("keyed EVP_MAC_CTX duplicated per value (EVP_MAC_CTX_dup)", [&] {
            for (size_t i = 0; i < kBatch; ++i) {
                MacCtxPtr work(EVP_MAC_CTX_dup(keyed.get()));
                size_t length = 0;
                EVP_MAC_update(work.get(), reinterpret_cast<const unsigned char*>(values[i & 3].data()), kValueSize);
                EVP_MAC_final(work.get(), digest.data(), &length, digest.size());
                consume(digest.data(), digest.size());
            }
        }, kBatch);
    }
    report("one-shot HMAC()", [&] {
        for (size_t i = 0; i < kBatch; ++i) {
            unsigned int length = 0;
            HMAC(EVP_sha256(), rawKeys[0].data(), 32, reinterpret_cast<const unsigned char*>(values[i & 3].data()),
                 kValueSize, digest.data(), &length);
            consume(digest.data(), digest.size());
        }
    }, kBatch);

    std::printf("\nMasking a 32-byte value\n");
    auto hmacMasker = Masker::create(MaskAlgorithm::kHmacSha256, SecretBytes::copyOf(rawKeys[1].substr(0, 32)));
    auto murmurMasker = Masker::create(MaskAlgorithm::kMurmur3, SecretBytes::copyOf(rawKeys[2].substr(0, 32)));
    check(hmacMasker.status(), "masker");
    check(murmurMasker.status(), "masker");
    report("Masker hmac-sha256 (hex appended)", [&] {
        out.clear();
        for (size_t i = 0; i < kBatch; ++i) {
            check(hmacMasker->append(values[i & 3], out), "mask");
            if (out.size() > 3000)
                out.clear();
        }
        consume(out.data(), out.size());
    }, kBatch);
    report("Masker murmur3 (hex appended)", [&] {
        out.clear();
        for (size_t i = 0; i < kBatch; ++i) {
            check(murmurMasker->append(values[i & 3], out), "mask");
            if (out.size() > 3000)
                out.clear();
        }
        consume(out.data(), out.size());
    }, kBatch);

    std::printf("\nKey wrapping (AES-256-GCM under the master key), 64-byte data keys\n");
    auto wrapperOr = KeyWrapper::create(SecretBytes::copyOf(rawKeys[3].substr(0, 32)));
    check(wrapperOr.status(), "wrapper");
    KeyWrapper wrapper = std::move(wrapperOr).value();
    auto wrapped = wrapper.wrap(rawKeys[4], "3f2b8a9e-1c2d-4e5f-8a9b-0c1d2e3f4a5b");
    check(wrapped.status(), "wrap");
    report("wrap", [&] {
        for (int i = 0; i < 64; ++i) {
            auto w = wrapper.wrap(rawKeys[i], "3f2b8a9e-1c2d-4e5f-8a9b-0c1d2e3f4a5b");
            check(w.status(), "wrap");
            consume(w->data(), w->size());
        }
    }, 64);
    report("unwrap", [&] {
        for (int i = 0; i < 64; ++i) {
            auto k = wrapper.unwrap(*wrapped, "3f2b8a9e-1c2d-4e5f-8a9b-0c1d2e3f4a5b");
            check(k.status(), "unwrap");
            consume(k->data(), k->size());
        }
    }, 64);

    std::printf("\n(checksum %llu)\n", static_cast<unsigned long long>(sink));
    return 0;
}
