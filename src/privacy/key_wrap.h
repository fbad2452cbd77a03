// KeyWrapper: everything the 32-byte master key does.
//   wrap/unwrap   data keys at rest: nonce (12) || AES-256-GCM ciphertext || tag (16), with the
//                 key link text as associated data, so a wrapped key moved to another row fails.
//   makeCheck/verifyCheck  a value stored once in the database that tells "wrong master key"
//                 apart from "corrupt key row" at startup.
//   deriveKey     HKDF-SHA256(master key, info = label): independent keys for keyed hashes.
// All methods are const and thread-safe: each call uses its own EVP context; the fetched
// algorithms are shared read-only.
#pragma once

#include <cstddef>
#include <optional>
#include <string>
#include <string_view>

#include "core/status.h"
#include "privacy/evp_handles.h"
#include "privacy/random.h"
#include "privacy/secret.h"

namespace sluice::privacy {

inline constexpr size_t kMasterKeySize = 32;
inline constexpr size_t kWrapNonceSize = 12;
inline constexpr size_t kWrapTagSize = 16;

// HKDF labels of the keys that other stages derive; one label per purpose, never reused.
inline constexpr std::string_view kLabelKeyLookup = "sluice key-field lookup v1";
inline constexpr std::string_view kLabelSubjectLookup = "sluice data-subject lookup v1";
inline constexpr std::string_view kLabelDeadLetter = "sluice dead-letter day v1";
inline constexpr std::string_view kLabelSketch = "sluice sketch hash v1";

class KeySealer;

class KeyWrapper {
public:
    // `masterKey` must be kMasterKeySize bytes (readSecretFile(path, kMasterKeySize)).
    static Result<KeyWrapper> create(SecretBytes masterKey);

    // nonce || ciphertext || tag, kWrapNonceSize + key.size() + kWrapTagSize bytes.
    Result<std::string> wrap(std::string_view keyBytes, std::string_view associatedData) const;
    // kPermission when the tag does not verify (another master key, another key link, altered
    // bytes); kCorruption when `wrapped` is too short to be a wrapped key.
    Result<SecretBytes> unwrap(std::string_view wrapped, std::string_view associatedData) const;

    // A printable value ("sluice-mkcheck-v1:" + Base64) to store once per database.
    Result<std::string> makeCheck() const;
    // Ok when `check` was made with this master key; kPermission "the master key does not match
    // this database" when it was made with another; kCorruption when it is malformed.
    Status verifyCheck(std::string_view check) const;

    // `size` bytes of HKDF-SHA256 output (no salt, info = `label`).
    Result<SecretBytes> deriveKey(std::string_view label, size_t size = 32) const;

    // A wrapping context for one thread that wraps many keys (KeySealer).
    Result<KeySealer> sealer() const;

private:
    KeyWrapper(SecretBytes masterKey, CipherPtr gcm, KdfPtr hkdf)
        : masterKey_(std::move(masterKey)), gcm_(std::move(gcm)), hkdf_(std::move(hkdf)) {}

    SecretBytes masterKey_;
    CipherPtr gcm_;
    KdfPtr hkdf_;
};

// wrap() and unwrap() for one thread that wraps and unwraps many keys: the master key's AES-GCM
// key schedule and GHASH table are set up once per direction, in two contexts this object
// owns, and each call sets only its nonce (wrap() built a context and keyed it per call: about
// half the cost of a new data key). The bytes are wrap()'s format exactly, so either side reads
// what the other wrote. Made by KeyWrapper::sealer(); the contexts are wiped by OpenSSL when
// this object is dropped. One thread.
class KeySealer {
public:
    KeySealer(KeySealer&&) noexcept = default;
    KeySealer& operator=(KeySealer&&) noexcept = default;

    // As KeyWrapper::wrap, with the nonce drawn from `random`.
    Result<std::string> wrap(std::string_view keyBytes, std::string_view associatedData, RandomPool& random);
    // As KeyWrapper::unwrap.
    Result<SecretBytes> unwrap(std::string_view wrapped, std::string_view associatedData);

private:
    friend class KeyWrapper;
    KeySealer(CipherCtxPtr encrypt, CipherCtxPtr decrypt) : encrypt_(std::move(encrypt)), decrypt_(std::move(decrypt)) {}

    CipherCtxPtr encrypt_;
    CipherCtxPtr decrypt_;
};

// The master-key check of a database (its stored check value, store::readMasterKeyCheck): ok
// when `stored` was made with this key, or when the database has neither a check value nor keys
// yet (then store wrapper.makeCheck()); kPermission for another master key; kCorruption when
// the database holds keys but no check value, so that no key can be told right or wrong.
Status verifyMasterKey(const KeyWrapper& wrapper, const std::optional<std::string>& stored, bool databaseHoldsKeys);

}  // namespace sluice::privacy
