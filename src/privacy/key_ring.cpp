#include "privacy/key_ring.h"

#include <algorithm>
#include <fstream>
#include <iterator>
#include <nlohmann/json.hpp>

#include "core/encoding.h"
#include "core/time_format.h"
#include "core/wipe.h"
#include "privacy/tink_ciphertext.h"

namespace sluice::privacy {
namespace {

using Json = nlohmann::json;

constexpr size_t kMaxKeyFileBytes = 1ull << 30;
constexpr size_t kMaxCachedKeys = 100'000;

std::string_view trim(std::string_view s)
{
    while (!s.empty() && (s.front() == ' ' || s.front() == '\t' || s.front() == '\r' || s.front() == '\n'))
        s.remove_prefix(1);
    while (!s.empty() && (s.back() == ' ' || s.back() == '\t' || s.back() == '\r' || s.back() == '\n'))
        s.remove_suffix(1);
    return s;
}

std::string_view withoutBom(std::string_view s)
{
    if (s.substr(0, 3) == "\xEF\xBB\xBF")
        s.remove_prefix(3);
    return s;
}

std::string keyIdText(uint32_t id) { return std::to_string(id); }

}  // namespace

Result<std::string> ciphertextFromBase64(std::string_view text)
{
    auto raw = fromBase64(trim(text));
    if (!raw)
        return Status::corruption("not a Base64 Tink ciphertext (standard alphabet with padding expected)");
    return std::move(*raw);
}

// ---- FileKeyRing ----

size_t FileKeyRing::keys() const
{
    size_t n = 0;
    for (const auto& k : keysets_)
        n += k.keys.size();
    return n;
}

Status FileKeyRing::add(std::string_view keysetJson, std::string keyLink, const std::string& where)
{
    auto keyset = parseTinkKeyset(keysetJson);
    if (!keyset)
        return Status::invalid(origin_ + ": " + where + ": " + keyset.status().message());
    const size_t index = keysets_.size();
    bool raw = false;
    std::vector<uint32_t> ids;
    for (const TinkKeysetKey& k : keyset->keys) {
        if (k.status != TinkKeyStatus::kEnabled)
            continue;
        if (k.outputPrefix == TinkOutputPrefix::kRaw) {
            raw = true;
        } else if (std::find(ids.begin(), ids.end(), k.keyId) == ids.end()) {
            ids.push_back(k.keyId);
            byKeyId_.emplace(k.keyId, index);
        }
    }
    if (raw)
        rawKeysets_.push_back(index);
    keysets_.push_back(std::move(*keyset));
    keyLinks_.push_back(std::move(keyLink));
    return Status::ok();
}

Result<FileKeyRing> FileKeyRing::parse(std::string_view text, const std::string& origin)
{
    FileKeyRing ring;
    ring.origin_ = origin;
    auto cipher = SivCipher::create();
    if (!cipher)
        return cipher.status();
    ring.cipher_ = std::make_unique<SivCipher>(std::move(*cipher));

    const std::string_view body = trim(withoutBom(text));
    if (body.empty())
        return Status::invalid(origin + ": the key file is empty");

    // One element of a JSON export: {"keyLink": ..., "keyset": {...}} or a bare Tink keyset.
    auto addJson = [&ring](const Json& j, const std::string& where) -> Status {
        if (!j.is_object())
            return Status::invalid(ring.origin_ + ": " + where + ": expected a JSON object");
        std::string keysetText;
        std::string link;
        if (j.contains("keyset")) {
            const Json& k = j["keyset"];
            keysetText = k.is_string() ? k.get<std::string>() : k.dump();
            if (j.contains("keyLink") && j["keyLink"].is_string())
                link = j["keyLink"].get<std::string>();
        } else if (j.contains("key")) {
            keysetText = j.dump();
        } else {
            return Status::invalid(ring.origin_ + ": " + where +
                                   ": neither a Tink keyset (\"key\") nor a sluicectl export line (\"keyset\")");
        }
        Status s = ring.add(keysetText, std::move(link), where);
        wipe(keysetText);
        return s;
    };

    if (body.rfind("keyLink", 0) == 0 || body.rfind("\"keyLink\"", 0) == 0) {
        auto rows = parseKeyExportCsv(text);
        if (!rows)
            return Status::invalid(origin + ": " + rows.status().message());
        for (size_t i = 0; i < rows->size(); ++i) {
            KeyExportRow& row = (*rows)[i];
            Status s = ring.add(row.encryptionKey, row.keyLink, "record " + std::to_string(i + 1));
            wipe(row.encryptionKey);
            SLUICE_RETURN_IF_ERROR(s);
        }
        return ring;
    }
    if (body.front() != '{' && body.front() != '[')
        return Status::invalid(origin + ": not a key export (expected a CSV with the header " +
                               std::string(kKeyExportCsvHeader) + ", JSON lines or a Tink keyset)");

    Json whole = Json::parse(body, nullptr, false);
    if (!whole.is_discarded()) {
        if (whole.is_array()) {
            for (size_t i = 0; i < whole.size(); ++i)
                SLUICE_RETURN_IF_ERROR(addJson(whole[i], "element " + std::to_string(i + 1)));
        } else if (whole.is_object() && whole.contains("key") && !whole.contains("keyset")) {
            // A keyset file as Tink writes it: parse the original text, not a re-serialisation.
            SLUICE_RETURN_IF_ERROR(ring.add(body, "", "keyset"));
        } else {
            SLUICE_RETURN_IF_ERROR(addJson(whole, "line 1"));
        }
        return ring;
    }
    // JSON lines.
    size_t pos = 0;
    size_t lineNo = 0;
    while (pos <= body.size()) {
        size_t end = body.find('\n', pos);
        if (end == std::string_view::npos)
            end = body.size();
        std::string_view line = trim(body.substr(pos, end - pos));
        ++lineNo;
        pos = end + 1;
        if (line.empty())
            continue;
        Json j = Json::parse(line, nullptr, false);
        if (j.is_discarded())
            return Status::invalid(origin + ": line " + std::to_string(lineNo) + ": not JSON");
        SLUICE_RETURN_IF_ERROR(addJson(j, "line " + std::to_string(lineNo)));
    }
    return ring;
}

Result<FileKeyRing> FileKeyRing::load(const std::string& path)
{
    std::ifstream in(path, std::ios::binary);
    if (!in)
        return Status::ioError("cannot open the key file " + path);
    std::string text;
    char buffer[65536];
    while (in.read(buffer, sizeof buffer) || in.gcount() > 0) {
        text.append(buffer, static_cast<size_t>(in.gcount()));
        if (text.size() > kMaxKeyFileBytes) {
            wipe(text);
            return Status::invalid(path + ": larger than 1 GiB; split the export");
        }
    }
    explicit_bzero(buffer, sizeof buffer);
    if (in.bad()) {
        wipe(text);
        return Status::ioError("reading " + path + " failed");
    }
    auto ring = parse(text, path);
    wipe(text);
    return ring;
}

Result<std::string> FileKeyRing::decryptBase64(std::string_view text)
{
    auto raw = ciphertextFromBase64(text);
    if (!raw)
        return raw.status();
    return decryptRaw(*raw);
}

Result<std::string> FileKeyRing::decryptRaw(std::string_view raw)
{
    auto prefix = parseTinkPrefix(raw);
    bool tried = false;
    if (prefix) {
        auto [begin, end] = byKeyId_.equal_range(prefix->keyId);
        for (auto it = begin; it != end; ++it) {
            auto plain = tinkKeysetDecrypt(keysets_[it->second], raw, *cipher_);
            if (plain)
                return plain;
            tried = true;
        }
    }
    for (size_t index : rawKeysets_) {
        auto plain = tinkKeysetDecrypt(keysets_[index], raw, *cipher_);
        if (plain)
            return plain;
        tried = true;
    }
    if (!tried) {
        if (!prefix)
            return Status::corruption("not a Tink ciphertext (" + prefix.status().message() + ") and " + origin_ +
                                      " has no RAW key to try");
        return Status::notFound("no key in " + origin_ + " has key id " + keyIdText(prefix->keyId));
    }
    return Status::permission(
        prefix ? "the value does not decrypt under key id " + keyIdText(prefix->keyId) + " from " + origin_ +
                     " (altered or truncated, or encrypted under another key)"
               : "the value does not decrypt under any RAW key from " + origin_);
}

// ---- StoredKeyRing ----

Result<StoredKeyRing> StoredKeyRing::create(WrappedKeySource& source, const KeyWrapper& wrapper)
{
    auto cipher = SivCipher::create();
    if (!cipher)
        return cipher.status();
    return StoredKeyRing(source, wrapper, std::move(*cipher));
}

StoredKeyRing::StoredKeyRing(WrappedKeySource& source, const KeyWrapper& wrapper, SivCipher cipher)
    : source_(&source), wrapper_(&wrapper), cipher_(std::make_unique<SivCipher>(std::move(cipher)))
{
}

StoredKeyRing::StoredKeyRing(StoredKeyRing&&) noexcept = default;
StoredKeyRing& StoredKeyRing::operator=(StoredKeyRing&&) noexcept = default;
StoredKeyRing::~StoredKeyRing() = default;

StoredKeyRing::Entry& StoredKeyRing::entry(std::string_view keyLink)
{
    auto found = cache_.find(keyLink);
    if (found != cache_.end())
        return found->second;
    if (cache_.size() >= kMaxCachedKeys)
        cache_.clear();
    Entry e;
    auto stored = source_->byLink(keyLink);
    if (!stored) {
        e.error = stored.status();
    } else if (*stored) {
        e.keyId = (*stored)->keyId;
        auto key = wrapper_->unwrap((*stored)->wrapped, keyLink);
        if (!key) {
            e.error = Status::error(key.status().code(), "key " + std::string(keyLink) +
                                                              " does not unwrap with this master key (" +
                                                              key.status().message() + ")");
        } else {
            auto siv = cipher_->makeKey(key->view());
            if (!siv)
                e.error = siv.status();
            else
                e.key = std::move(*siv);
        }
    } else {
        auto shred = source_->lastShred(keyLink);
        if (!shred) {
            e.error = shred.status();
        } else if (*shred) {
            e.shredded = true;
            e.error = Status::notFound("key " + std::string(keyLink) + " was shredded at " +
                                       isoTimeMs((*shred)->atMs) + " (" + (*shred)->cause + ")");
        } else {
            e.error = Status::notFound("key " + std::string(keyLink) + " is not in the database");
        }
    }
    return cache_.emplace(std::string(keyLink), std::move(e)).first->second;
}

Result<std::string> StoredKeyRing::decryptWith(Entry& e, std::string_view keyLink, std::string_view raw)
{
    lastShredded_ = e.shredded;
    if (!e.error)
        return e.error;
    SLUICE_RETURN_IF_ERROR(cipher_->setKey(e.key));
    auto plain = tinkDecrypt(*cipher_, e.keyId, raw);
    if (plain)
        return plain;
    const Status& s = plain.status();
    switch (s.code()) {
    case StatusCode::kNotFound: {
        auto prefix = parseTinkPrefix(raw);
        return Status::notFound("the value was not encrypted with key " + std::string(keyLink) + " (its key id is " +
                                (prefix ? keyIdText(prefix->keyId) : std::string("?")) + ", the key's " +
                                keyIdText(e.keyId) + ")");
    }
    case StatusCode::kPermission:
        return Status::permission("the value does not decrypt under key " + std::string(keyLink) +
                                  " (altered or truncated)");
    default: return Status::error(s.code(), "not a Tink ciphertext: " + s.message());
    }
}

Result<std::string> StoredKeyRing::decryptBase64(std::string_view keyLink, std::string_view text)
{
    lastShredded_ = false;
    auto raw = ciphertextFromBase64(text);
    if (!raw)
        return raw.status();
    return decryptWith(entry(keyLink), keyLink, *raw);
}

Result<std::string> StoredKeyRing::decryptRaw(std::string_view keyLink, std::string_view raw)
{
    lastShredded_ = false;
    return decryptWith(entry(keyLink), keyLink, raw);
}

Result<std::string> StoredKeyRing::decryptAnyBase64(std::string_view text)
{
    lastShredded_ = false;
    auto raw = ciphertextFromBase64(text);
    if (!raw)
        return raw.status();
    auto prefix = parseTinkPrefix(*raw);
    if (!prefix)
        return Status::corruption("not a Tink ciphertext: " + prefix.status().message());
    if (!linksById_) {
        // One pass over the keys: key_id has no index, and values come by the thousand.
        linksById_.emplace();
        Status s = source_->forEachKeyId(
            [this](uint32_t keyId, std::string_view link) { linksById_->emplace(keyId, std::string(link)); });
        if (!s) {
            linksById_.reset();
            return s;
        }
    }
    std::vector<std::string> links;
    auto [begin, end] = linksById_->equal_range(prefix->keyId);
    for (auto it = begin; it != end; ++it)
        links.push_back(it->second);
    if (links.empty())
        return Status::notFound("no key in the database has key id " + keyIdText(prefix->keyId) +
                                " (it was shredded, or the value comes from another database)");
    Status last;
    for (const std::string& link : links) {
        auto plain = decryptWith(entry(link), link, *raw);
        if (plain)
            return plain;
        last = plain.status();
    }
    return last;
}

}  // namespace sluice::privacy
