// Helpers shared by the feature integration tests: a fake $NOTIFY_SOCKET, typed SQL reads, the
// data keys of a database unwrapped with its master key, an AES-SIV decryption through OpenSSL's
// own EVP cipher (independent of src/privacy's SIV code), byte scans and a Prometheus text parser.
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <functional>
#include <map>
#include <mutex>
#include <optional>
#include <random>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include "privacy/secret.h"

namespace sluice::testing {

// ---- systemd notifications ----

// An AF_UNIX datagram socket bound at `path`, read by a background thread that keeps every
// datagram with its arrival time. Pass path() as $NOTIFY_SOCKET.
class NotifySocket {
public:
    struct Message {
        std::chrono::steady_clock::time_point at;
        std::string text;
    };

    explicit NotifySocket(std::string path);
    ~NotifySocket();
    NotifySocket(const NotifySocket&) = delete;
    NotifySocket& operator=(const NotifySocket&) = delete;

    const std::string& path() const { return path_; }
    // Runs on the listener thread right after a datagram is stored, before the next is read.
    void onMessage(std::function<void(const Message&)> hook);
    std::vector<Message> messages() const;
    // Datagrams whose text has a line equal to `line` (e.g. "READY=1"), or starting with it when
    // `prefix` is set (e.g. "STATUS=").
    std::vector<Message> matching(std::string_view line, bool prefix = false) const;
    // Waits until matching(line, prefix).size() >= count.
    bool waitFor(std::string_view line, size_t count = 1, std::chrono::milliseconds timeout = std::chrono::seconds(20),
                 bool prefix = false) const;

private:
    void run();

    std::string path_;
    int fd_ = -1;
    std::atomic<bool> stop_{false};
    mutable std::mutex mutex_;
    std::vector<Message> messages_;
    std::function<void(const Message&)> hook_;
    std::thread thread_;
};

bool hasLine(std::string_view datagram, std::string_view line, bool prefix = false);

// True when a stream connect() to the AF_UNIX socket at `path` succeeds right now (something is
// bound and listening there). For ipc:// endpoints.
bool unixStreamConnects(const std::string& path);

// ---- SQL ----

// A typed cell: NULL, integer, real, text or blob (text and blob in `text`).
struct SqlValue {
    enum class Type { kNull, kInt, kReal, kText, kBlob } type = Type::kNull;
    int64_t i = 0;
    double d = 0;
    std::string text;

    bool isNull() const { return type == Type::kNull; }
    std::string describe() const;
};
using SqlRow = std::vector<SqlValue>;
struct SqlResult {
    std::vector<std::string> columns;
    std::vector<SqlRow> rows;
    int column(std::string_view name) const;  // -1 when absent
};
// Every row of `sql`, on a read-only connection.
std::vector<SqlRow> querySql(const std::string& database, const std::string& sql);
SqlResult querySqlNamed(const std::string& database, const std::string& sql);

// ---- keys ----

struct DataKey {
    std::string link;
    uint32_t keyId = 0;
    std::string kind;
    std::string contract;
    std::string lookup;  // raw bytes
    std::string wrapped;
    int64_t createdAtMs = 0;
    int64_t expiresAtMs = 0;
    privacy::SecretBytes key;  // unwrapped, 64 bytes
};

// Every row of the keys table, unwrapped with the master key in `masterKeyFile`. Throws (with a
// message naming the key link, never key bytes) when a key does not unwrap.
std::map<std::string, DataKey> loadKeys(const std::string& database, const std::string& masterKeyFile);

// AES-256-SIV decryption with OpenSSL's "AES-256-SIV" EVP cipher and one empty associated-data
// component (Tink's Deterministic AEAD): `sivAndCiphertext` = SIV (16) || ciphertext.
std::optional<std::string> evpSivDecrypt(std::string_view key64, std::string_view sivAndCiphertext);

struct TinkParts {
    uint32_t keyId = 0;
    std::string sivAndCiphertext;
};
// Splits Base64 text of 0x01 || key id (4, big-endian) || SIV || ciphertext; nullopt when it is
// not of that form.
std::optional<TinkParts> parseTinkBase64(std::string_view text);
std::optional<TinkParts> parseTinkRaw(std::string_view raw);

// ---- bytes ----

// The needles that occur somewhere in `haystack` (a plain substring search per needle).
std::vector<std::string> findAll(const std::string& haystack, const std::vector<std::string>& needles);
// The .db, -wal and -shm files of `database` that exist, concatenated per file: name -> bytes.
std::map<std::string, std::string> databaseFiles(const std::string& database);

std::string upperHex(std::string_view bytes);

// ---- metrics ----

// Prometheus text: series (name with its label set exactly as rendered, e.g.
// `sluice_events_rejected_total{reason="not_json"}`) -> value. Comments are skipped.
std::map<std::string, double> parseMetrics(const std::string& text);
// The value of `series`, or nullopt when it is absent.
std::optional<double> metric(const std::map<std::string, double>& metrics, const std::string& series);

// ---- misc ----

// Random lowercase hex of `n` characters from a process-wide generator.
std::string randomHex(size_t n);
// Writes `text` to `path` atomically (a temp file in the same directory, then rename).
void writeFileAtomically(const std::string& path, const std::string& text);
// The ISO-8601 text SQLite's strftime('%Y-%m-%dT%H:%M:%fZ', ms / 1000.0, 'unixepoch') gives.
std::string isoMs(int64_t ms);
int64_t wallMs();
// Lines of `text`.
std::vector<std::string> splitLines(const std::string& text);

}  // namespace sluice::testing
