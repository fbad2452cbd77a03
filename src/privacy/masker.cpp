#include "privacy/masker.h"

#include <openssl/crypto.h>

#include "privacy/murmur3.h"

namespace sluice::privacy {
namespace {

constexpr const char* kEmptyHmacSeed =
    "is empty: hmac-sha256 needs a secret seed (with an empty key anyone can compute the masks and "
    "find the values behind them by guessing); an empty seed is valid for murmur3 only";

}  // namespace

Result<Masker> Masker::create(MaskAlgorithm algorithm, SecretBytes seed)
{
    if (seed.empty() && algorithm == MaskAlgorithm::kHmacSha256)
        return Status::invalid(std::string("the masking seed ") + kEmptyHmacSeed);
    Masker masker(algorithm, std::move(seed));
    if (algorithm == MaskAlgorithm::kHmacSha256) {
        auto hmac = HmacSha256::create(masker.seed_.view());
        if (!hmac)
            return hmac.status();
        masker.hmac_.emplace(std::move(hmac).value());
    } else {
        // Past the small-string buffer, so a move hands over the heap block instead of copying
        // seed bytes and leaving them behind.
        masker.scratch_.reserve(masker.seed_.size() + 64);
    }
    return masker;
}

Result<SecretBytes> readMaskSeed(const std::string& path, MaskAlgorithm algorithm)
{
    auto seed = readSecretFile(path, 0, true);
    if (seed && seed->empty() && algorithm == MaskAlgorithm::kHmacSha256)
        return Status::invalid(path + ": the seed file " + kEmptyHmacSeed);
    return seed;
}

Result<Masker> Masker::clone() const { return create(algorithm_, seed_.clone()); }

Masker::~Masker() { OPENSSL_cleanse(scratch_.data(), scratch_.size()); }

Status Masker::append(std::string_view value, std::string& out)
{
    switch (algorithm_) {
    case MaskAlgorithm::kHmacSha256:
        return hmac_->appendHex(value, out);
    case MaskAlgorithm::kMurmur3: {
        size_t need = seed_.size() + value.size();
        if (scratch_.capacity() < need) {
            // Growing in place would free the old buffer, which starts with the seed, unwiped.
            std::string bigger;
            bigger.reserve(need * 2);
            scratch_.swap(bigger);
            OPENSSL_cleanse(bigger.data(), bigger.size());
        }
        scratch_.assign(seed_.view());
        scratch_.append(value);
        appendMurmur3Hex(out, scratch_);
        return Status::ok();
    }
    }
    return Status::internal("unknown masking algorithm");
}

Result<std::string> Masker::mask(std::string_view value)
{
    std::string out;
    SLUICE_RETURN_IF_ERROR(append(value, out));
    return out;
}

}  // namespace sluice::privacy
