// SecretBytes: the only type that holds key material (master key, data keys, masking seeds)
// outside OpenSSL's own contexts. It cannot be copied by accident, is wiped with
// OPENSSL_cleanse when destroyed or overwritten, and has no operator<< or conversion to text,
// so key bytes cannot end up in a log line.
//
// Also the two file operations for secrets: reading a key or seed file, and creating one.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>

#include "core/status.h"

namespace sluice::privacy {

class SecretBytes {
public:
    SecretBytes() = default;
    // `size` zero bytes.
    explicit SecretBytes(size_t size);
    // Copies `bytes`; the caller remains responsible for wiping its own copy.
    static SecretBytes copyOf(std::string_view bytes);
    static SecretBytes copyOf(const uint8_t* bytes, size_t size);

    SecretBytes(const SecretBytes&) = delete;
    SecretBytes& operator=(const SecretBytes&) = delete;
    SecretBytes(SecretBytes&& other) noexcept;
    SecretBytes& operator=(SecretBytes&& other) noexcept;
    ~SecretBytes();

    // An explicit copy, for the rare owner that needs one (a per-thread clone).
    SecretBytes clone() const { return copyOf(data(), size()); }

    uint8_t* data() { return bytes_.get(); }
    const uint8_t* data() const { return bytes_.get(); }
    size_t size() const { return size_; }
    bool empty() const { return size_ == 0; }
    // A view for OpenSSL calls and comparisons; do not copy it into a std::string that outlives
    // the call.
    std::string_view view() const { return {reinterpret_cast<const char*>(data()), size_}; }

    // Shrinks the logical size (wiping the tail); never reallocates.
    void truncate(size_t size);

private:
    void wipe();

    std::unique_ptr<uint8_t[]> bytes_;
    size_t size_ = 0;
};

// Constant-time comparison (OpenSSL's CRYPTO_memcmp); sizes are not secret.
bool secretEquals(const SecretBytes& a, const SecretBytes& b);

// Reads a secret file (a master key, a masking seed, a systemd credential).
//   expectedSize > 0: the file holds exactly `expectedSize` raw bytes, or 2*expectedSize hex
//                     digits optionally followed by one "\n" (or "\r\n").
//   expectedSize == 0: any non-empty content; one trailing "\n" (or "\r\n") is removed. With
//                     `allowEmpty`, an empty file (or one holding only a newline) is an empty
//                     secret instead of an error.
// Errors name the file and the problem (missing, unreadable, not a regular file, empty, wrong
// size, bad hex), never any content. Files over 1 MiB are refused.
Result<SecretBytes> readSecretFile(const std::string& path, size_t expectedSize, bool allowEmpty = false);

// Creates `path` with mode 0600 (O_CREAT|O_EXCL: an existing file is never replaced), writes
// `bytes` exactly as given and fsyncs it. On failure the partial file is removed.
Status writeNewSecretFile(const std::string& path, std::string_view bytes);

}  // namespace sluice::privacy
