#include "feature_support.h"

#include <openssl/evp.h>
#include <poll.h>
#include <sqlite3.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <cmath>
#include <cstdio>
#include <cstring>
#include <ctime>
#include <filesystem>
#include <fstream>
#include <memory>
#include <sstream>
#include <stdexcept>

#include "core/encoding.h"
#include "privacy/key_wrap.h"
#include "store/db.h"

namespace sluice::testing {

namespace fs = std::filesystem;

// ---- systemd notifications ----

NotifySocket::NotifySocket(std::string path) : path_(std::move(path))
{
    fd_ = ::socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    if (fd_ < 0)
        throw std::runtime_error("socket(AF_UNIX, SOCK_DGRAM) failed");
    sockaddr_un addr{};
    addr.sun_family = AF_UNIX;
    if (path_.size() >= sizeof addr.sun_path)
        throw std::runtime_error("notify socket path too long: " + path_);
    std::memcpy(addr.sun_path, path_.c_str(), path_.size() + 1);
    ::unlink(path_.c_str());
    if (::bind(fd_, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0)
        throw std::runtime_error("cannot bind the notify socket " + path_ + ": " + std::strerror(errno));
    int size = 1 << 20;  // room for a burst of STATUS lines while the test is busy
    ::setsockopt(fd_, SOL_SOCKET, SO_RCVBUF, &size, sizeof size);
    thread_ = std::thread([this] { run(); });
}

NotifySocket::~NotifySocket()
{
    stop_ = true;
    if (thread_.joinable())
        thread_.join();
    ::close(fd_);
    ::unlink(path_.c_str());
}

void NotifySocket::onMessage(std::function<void(const Message&)> hook)
{
    std::lock_guard lock(mutex_);
    hook_ = std::move(hook);
}

void NotifySocket::run()
{
    std::vector<char> buf(64 * 1024);
    while (!stop_) {
        pollfd p{fd_, POLLIN, 0};
        if (::poll(&p, 1, 50) <= 0)
            continue;
        ssize_t n = ::recv(fd_, buf.data(), buf.size(), MSG_DONTWAIT);
        if (n < 0)
            continue;
        Message m{std::chrono::steady_clock::now(), std::string(buf.data(), static_cast<size_t>(n))};
        // The hook runs before the message is visible: a test that waits for the message and
        // then reads what its hook recorded must find it recorded.
        std::function<void(const Message&)> hook;
        {
            std::lock_guard lock(mutex_);
            hook = hook_;
        }
        if (hook)
            hook(m);
        std::lock_guard lock(mutex_);
        messages_.push_back(std::move(m));
    }
}

std::vector<NotifySocket::Message> NotifySocket::messages() const
{
    std::lock_guard lock(mutex_);
    return messages_;
}

bool hasLine(std::string_view datagram, std::string_view line, bool prefix)
{
    size_t pos = 0;
    while (pos <= datagram.size()) {
        size_t end = datagram.find('\n', pos);
        if (end == std::string_view::npos)
            end = datagram.size();
        std::string_view l = datagram.substr(pos, end - pos);
        if (prefix ? l.substr(0, line.size()) == line : l == line)
            return true;
        pos = end + 1;
    }
    return false;
}

std::vector<NotifySocket::Message> NotifySocket::matching(std::string_view line, bool prefix) const
{
    std::vector<Message> out;
    for (const Message& m : messages())
        if (hasLine(m.text, line, prefix))
            out.push_back(m);
    return out;
}

bool NotifySocket::waitFor(std::string_view line, size_t count, std::chrono::milliseconds timeout, bool prefix) const
{
    const auto deadline = std::chrono::steady_clock::now() + timeout;
    while (std::chrono::steady_clock::now() < deadline) {
        if (matching(line, prefix).size() >= count)
            return true;
        std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
    return matching(line, prefix).size() >= count;
}

bool unixStreamConnects(const std::string& path)
{
    int fd = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return false;
    sockaddr_un addr{};
    addr.sun_family = AF_UNIX;
    if (path.size() >= sizeof addr.sun_path) {
        ::close(fd);
        return false;
    }
    std::memcpy(addr.sun_path, path.c_str(), path.size() + 1);
    const bool ok = ::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0;
    ::close(fd);
    return ok;
}

// ---- SQL ----

std::string SqlValue::describe() const
{
    switch (type) {
    case Type::kNull: return "NULL";
    case Type::kInt: return std::to_string(i);
    case Type::kReal: {
        char buf[64];
        std::snprintf(buf, sizeof buf, "%.17g", d);
        return buf;
    }
    case Type::kText: return "'" + text + "'";
    case Type::kBlob: return "x'" + toHex(text) + "'";
    }
    return "?";
}

int SqlResult::column(std::string_view name) const
{
    for (size_t i = 0; i < columns.size(); ++i)
        if (columns[i] == name)
            return static_cast<int>(i);
    return -1;
}

std::vector<SqlRow> querySql(const std::string& database, const std::string& sql)
{
    return querySqlNamed(database, sql).rows;
}

SqlResult querySqlNamed(const std::string& database, const std::string& sql)
{
    store::Db::Options o;
    o.readOnly = true;
    auto db = store::Db::open(database, o);
    if (!db)
        throw std::runtime_error(db.status().message());
    // The raw API for sqlite3_column_type: the wrapper does not expose a value's storage class.
    sqlite3_stmt* raw = nullptr;
    int rc = sqlite3_prepare_v2(db->handle(), sql.c_str(), -1, &raw, nullptr);
    std::unique_ptr<sqlite3_stmt, decltype(&sqlite3_finalize)> stmt(raw, &sqlite3_finalize);
    if (rc != SQLITE_OK)
        throw std::runtime_error(std::string(sqlite3_errmsg(db->handle())) + " in: " + sql);
    SqlResult result;
    for (int c = 0; c < sqlite3_column_count(stmt.get()); ++c)
        result.columns.emplace_back(sqlite3_column_name(stmt.get(), c));
    std::vector<SqlRow>& rows = result.rows;
    while ((rc = sqlite3_step(stmt.get())) == SQLITE_ROW) {
        const int n = sqlite3_column_count(stmt.get());
        SqlRow row(static_cast<size_t>(n));
        for (int c = 0; c < n; ++c) {
            SqlValue& v = row[static_cast<size_t>(c)];
            switch (sqlite3_column_type(stmt.get(), c)) {
            case SQLITE_NULL: v.type = SqlValue::Type::kNull; break;
            case SQLITE_INTEGER:
                v.type = SqlValue::Type::kInt;
                v.i = sqlite3_column_int64(stmt.get(), c);
                v.d = static_cast<double>(v.i);
                break;
            case SQLITE_FLOAT:
                v.type = SqlValue::Type::kReal;
                v.d = sqlite3_column_double(stmt.get(), c);
                break;
            case SQLITE_BLOB: {
                v.type = SqlValue::Type::kBlob;
                const void* p = sqlite3_column_blob(stmt.get(), c);
                v.text.assign(static_cast<const char*>(p), static_cast<size_t>(sqlite3_column_bytes(stmt.get(), c)));
                break;
            }
            default: {
                v.type = SqlValue::Type::kText;
                const unsigned char* p = sqlite3_column_text(stmt.get(), c);
                v.text.assign(reinterpret_cast<const char*>(p), static_cast<size_t>(sqlite3_column_bytes(stmt.get(), c)));
                break;
            }
            }
        }
        rows.push_back(std::move(row));
    }
    if (rc != SQLITE_DONE)
        throw std::runtime_error(std::string(sqlite3_errmsg(db->handle())) + " in: " + sql);
    return result;
}

// ---- keys ----

std::map<std::string, DataKey> loadKeys(const std::string& database, const std::string& masterKeyFile)
{
    auto master = privacy::readSecretFile(masterKeyFile, privacy::kMasterKeySize);
    if (!master)
        throw std::runtime_error(master.status().message());
    auto wrapper = privacy::KeyWrapper::create(std::move(*master));
    if (!wrapper)
        throw std::runtime_error(wrapper.status().message());
    std::map<std::string, DataKey> keys;
    for (SqlRow& row : querySql(database,
                                "SELECT key_link, key_id, kind, contract, lookup, wrapped, created_at, expires_at "
                                "FROM keys")) {
        DataKey k;
        k.link = row[0].text;
        k.keyId = static_cast<uint32_t>(row[1].i);
        k.kind = row[2].text;
        k.contract = row[3].text;
        k.lookup = row[4].text;
        k.wrapped = row[5].text;
        k.createdAtMs = row[6].i;
        k.expiresAtMs = row[7].i;
        auto key = wrapper->unwrap(k.wrapped, k.link);
        if (!key)
            throw std::runtime_error("key " + k.link + " does not unwrap: " + key.status().message());
        k.key = std::move(*key);
        keys.emplace(k.link, std::move(k));
    }
    return keys;
}

std::optional<std::string> evpSivDecrypt(std::string_view key64, std::string_view sivAndCiphertext)
{
    if (key64.size() != 64 || sivAndCiphertext.size() < 16)
        return std::nullopt;
    std::unique_ptr<EVP_CIPHER, decltype(&EVP_CIPHER_free)> cipher(EVP_CIPHER_fetch(nullptr, "AES-256-SIV", nullptr),
                                                                   &EVP_CIPHER_free);
    std::unique_ptr<EVP_CIPHER_CTX, decltype(&EVP_CIPHER_CTX_free)> ctx(EVP_CIPHER_CTX_new(), &EVP_CIPHER_CTX_free);
    if (!cipher || !ctx)
        return std::nullopt;
    const auto* key = reinterpret_cast<const unsigned char*>(key64.data());
    const auto* in = reinterpret_cast<const unsigned char*>(sivAndCiphertext.data());
    if (EVP_DecryptInit_ex2(ctx.get(), cipher.get(), key, nullptr, nullptr) != 1)
        return std::nullopt;
    if (EVP_CIPHER_CTX_ctrl(ctx.get(), EVP_CTRL_AEAD_SET_TAG, 16, const_cast<unsigned char*>(in)) != 1)
        return std::nullopt;
    int len = 0;
    // Tink's one associated-data component, the empty string, passed explicitly.
    static const unsigned char kEmpty[1] = {0};
    if (EVP_DecryptUpdate(ctx.get(), nullptr, &len, kEmpty, 0) != 1)
        return std::nullopt;
    const size_t n = sivAndCiphertext.size() - 16;
    std::string out(n + 16, '\0');
    len = 0;
    if (EVP_DecryptUpdate(ctx.get(), reinterpret_cast<unsigned char*>(out.data()), &len, in + 16,
                          static_cast<int>(n)) != 1)
        return std::nullopt;
    int fin = 0;
    if (EVP_DecryptFinal_ex(ctx.get(), reinterpret_cast<unsigned char*>(out.data()) + len, &fin) != 1)
        return std::nullopt;
    out.resize(static_cast<size_t>(len + fin));
    return out;
}

std::optional<TinkParts> parseTinkRaw(std::string_view raw)
{
    if (raw.size() < 5 + 16 || static_cast<unsigned char>(raw[0]) != 0x01)
        return std::nullopt;
    TinkParts p;
    for (int i = 1; i <= 4; ++i)
        p.keyId = (p.keyId << 8) | static_cast<unsigned char>(raw[static_cast<size_t>(i)]);
    p.sivAndCiphertext = std::string(raw.substr(5));
    return p;
}

std::optional<TinkParts> parseTinkBase64(std::string_view text)
{
    auto raw = fromBase64(text);
    if (!raw)
        return std::nullopt;
    return parseTinkRaw(*raw);
}

// ---- bytes ----

std::vector<std::string> findAll(const std::string& haystack, const std::vector<std::string>& needles)
{
    std::vector<std::string> found;
    for (const std::string& n : needles)
        if (!n.empty() && haystack.find(n) != std::string::npos)
            found.push_back(n);
    return found;
}

std::map<std::string, std::string> databaseFiles(const std::string& database)
{
    std::map<std::string, std::string> files;
    for (const char* suffix : {"", "-wal", "-shm", "-journal"}) {
        const std::string path = database + suffix;
        std::error_code ec;
        if (fs::exists(path, ec)) {
            std::ifstream in(path, std::ios::binary);
            std::ostringstream s;
            s << in.rdbuf();
            files[fs::path(path).filename().string()] = s.str();
        }
    }
    return files;
}

std::string upperHex(std::string_view bytes)
{
    std::string h = toHex(bytes);
    for (char& c : h)
        if (c >= 'a' && c <= 'f')
            c = static_cast<char>(c - 'a' + 'A');
    return h;
}

// ---- metrics ----

std::map<std::string, double> parseMetrics(const std::string& text)
{
    std::map<std::string, double> out;
    for (const std::string& line : splitLines(text)) {
        if (line.empty() || line[0] == '#')
            continue;
        // The value follows the last space (label values here hold no spaces).
        const size_t space = line.rfind(' ');
        if (space == std::string::npos)
            continue;
        const std::string value = line.substr(space + 1);
        double v = 0;
        if (value == "+Inf")
            v = HUGE_VAL;
        else if (value == "-Inf")
            v = -HUGE_VAL;
        else
            v = std::strtod(value.c_str(), nullptr);
        out[line.substr(0, space)] = v;
    }
    return out;
}

std::optional<double> metric(const std::map<std::string, double>& metrics, const std::string& series)
{
    auto it = metrics.find(series);
    if (it == metrics.end())
        return std::nullopt;
    return it->second;
}

// ---- misc ----

std::string randomHex(size_t n)
{
    static std::mutex mutex;
    static std::mt19937_64 gen{std::random_device{}()};
    std::lock_guard lock(mutex);
    static const char* digits = "0123456789abcdef";
    std::string s;
    for (size_t i = 0; i < n; ++i)
        s += digits[gen() % 16];
    return s;
}

void writeFileAtomically(const std::string& path, const std::string& text)
{
    const std::string tmp = path + ".tmp-" + randomHex(8);
    {
        std::ofstream out(tmp, std::ios::binary);
        out << text;
        if (!out)
            throw std::runtime_error("cannot write " + tmp);
    }
    fs::rename(tmp, path);
}

std::string isoMs(int64_t ms)
{
    const int64_t secs = ms >= 0 ? ms / 1000 : -((-ms + 999) / 1000);
    const int64_t frac = ms - secs * 1000;
    const std::time_t t = static_cast<std::time_t>(secs);
    std::tm tm{};
    ::gmtime_r(&t, &tm);
    char buf[64];
    std::snprintf(buf, sizeof buf, "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ", tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday,
                  tm.tm_hour, tm.tm_min, tm.tm_sec, static_cast<int>(frac));
    return buf;
}

int64_t wallMs()
{
    return std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::system_clock::now().time_since_epoch())
        .count();
}

std::vector<std::string> splitLines(const std::string& text)
{
    std::vector<std::string> lines;
    std::istringstream in(text);
    std::string line;
    while (std::getline(in, line))
        lines.push_back(line);
    return lines;
}

}  // namespace sluice::testing
