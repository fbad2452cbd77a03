// Key rings: where decryption outside the pipeline (sluicectl decrypt) gets its keys.
//
// FileKeyRing: an exported key file, in any of the forms a data owner may hold:
//   - sluicectl's JSON-lines export: one {"keyLink": ..., "keyset": {Tink keyset}, ...} per line
//     (a JSON array of such objects, or of bare keysets, is accepted too);
//   - the CSV export "keyLink,encryptionKey,policyId,expiresAt";
//   - a cleartext JSON keyset written by Tink or Tinkey (any number of keys, any output prefix).
// Ciphertexts are matched to keys by the key id in their Tink prefix, then RAW keys are tried.
//
// StoredKeyRing: wrapped keys from a WrappedKeySource (the database, through store/),
// unwrapped with the master key on first use and cached by key link. It tells a shredded key
// from a key that never existed.
//
// Both own a SivCipher: one thread each. Error messages name key links and key ids, never
// key bytes or plaintext.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "core/status.h"
#include "privacy/key_wrap.h"
#include "privacy/siv.h"
#include "privacy/tink_keyset.h"

namespace sluice::privacy {

class FileKeyRing {
public:
    // `origin` names the source in messages (a path).
    static Result<FileKeyRing> parse(std::string_view text, const std::string& origin);
    static Result<FileKeyRing> load(const std::string& path);

    FileKeyRing(FileKeyRing&&) noexcept = default;
    FileKeyRing& operator=(FileKeyRing&&) noexcept = default;

    size_t keysets() const { return keysets_.size(); }
    size_t keys() const;

    // Decrypts one Tink ciphertext given as standard Base64 (surrounding blanks ignored).
    Result<std::string> decryptBase64(std::string_view text);
    Result<std::string> decryptRaw(std::string_view raw);

private:
    FileKeyRing() = default;
    Status add(std::string_view keysetJson, std::string keyLink, const std::string& where);

    std::string origin_;
    std::vector<TinkKeyset> keysets_;
    std::vector<std::string> keyLinks_;                      // per keyset; "" when unknown
    std::unordered_multimap<uint32_t, size_t> byKeyId_;      // enabled prefixed keys -> keyset
    std::vector<size_t> rawKeysets_;                         // keysets holding enabled RAW keys
    std::unique_ptr<SivCipher> cipher_;
};

// The wrapped keys a StoredKeyRing reads: the database's keys and shred_log (cli/ connects this
// to store/).
class WrappedKeySource {
public:
    struct Wrapped {
        uint32_t keyId = 0;
        std::string wrapped;
    };
    struct Shredded {
        int64_t atMs = 0;
        std::string cause;
    };
    virtual ~WrappedKeySource() = default;
    // The key stored under `keyLink` (any kind), nullopt when there is none.
    virtual Result<std::optional<Wrapped>> byLink(std::string_view keyLink) = 0;
    // The last shredding of `keyLink`, nullopt when it never was.
    virtual Result<std::optional<Shredded>> lastShred(std::string_view keyLink) = 0;
    // Every stored key's (key id, key link).
    virtual Status forEachKeyId(const std::function<void(uint32_t keyId, std::string_view keyLink)>& fn) = 0;
};

class StoredKeyRing {
public:
    static Result<StoredKeyRing> create(WrappedKeySource& source, const KeyWrapper& wrapper);
    StoredKeyRing(StoredKeyRing&&) noexcept;
    StoredKeyRing& operator=(StoredKeyRing&&) noexcept;
    ~StoredKeyRing();

    // Decrypts a value that the database says key `keyLink` encrypted. A key that is gone fails
    // with kNotFound and a message "key <link> was shredded (...)" or "... is not in the database".
    Result<std::string> decryptBase64(std::string_view keyLink, std::string_view text);
    Result<std::string> decryptRaw(std::string_view keyLink, std::string_view raw);

    // Decrypts a value without knowing its key link: the key id in its prefix selects the key.
    Result<std::string> decryptAnyBase64(std::string_view text);

    // Whether the last failure of decryptBase64/decryptRaw was a shredded key.
    bool lastWasShredded() const { return lastShredded_; }

private:
    struct Entry {
        Status error;  // not ok: this link cannot decrypt (message says why)
        bool shredded = false;
        uint32_t keyId = 0;
        SivKey key;
    };

    StoredKeyRing(WrappedKeySource& source, const KeyWrapper& wrapper, SivCipher cipher);
    Entry& entry(std::string_view keyLink);
    Result<std::string> decryptWith(Entry& e, std::string_view keyLink, std::string_view raw);

    WrappedKeySource* source_;
    const KeyWrapper* wrapper_;
    std::unique_ptr<SivCipher> cipher_;
    struct LinkHash {
        using is_transparent = void;
        size_t operator()(std::string_view s) const { return std::hash<std::string_view>{}(s); }
    };
    // Found by string_view: a lookup per value allocates nothing.
    std::unordered_map<std::string, Entry, LinkHash, std::equal_to<>> cache_;
    std::optional<std::unordered_multimap<uint32_t, std::string>> linksById_;  // loaded on first use
    bool lastShredded_ = false;
};

// Parses Base64 text of a Tink ciphertext (surrounding blanks ignored); kCorruption when it is
// not standard Base64.
Result<std::string> ciphertextFromBase64(std::string_view text);

}  // namespace sluice::privacy
