#include "privacy/tink_keyset.h"

#include <charconv>
#include <cstring>

#include <nlohmann/json.hpp>
#include <openssl/crypto.h>

#include "core/encoding.h"
#include "core/value.h"
#include "core/wipe.h"
#include "privacy/tink_ciphertext.h"

namespace sluice::privacy {
namespace {

using Json = nlohmann::json;

constexpr size_t kMaxKeysetText = 1 << 20;
constexpr int kMaxKeysetDepth = 16;
constexpr size_t kMaxKeys = 4096;

// Nesting depth of objects and arrays, ignoring brackets inside strings. nlohmann has no depth
// limit of its own, and destroying a deeply nested value recurses.
bool depthWithin(std::string_view text, int limit)
{
    int depth = 0;
    bool inString = false;
    for (size_t i = 0; i < text.size(); ++i) {
        char c = text[i];
        if (inString) {
            if (c == '\\')
                ++i;
            else if (c == '"')
                inString = false;
        } else if (c == '"') {
            inString = true;
        } else if (c == '{' || c == '[') {
            if (++depth > limit)
                return false;
        } else if (c == '}' || c == ']') {
            --depth;
        }
    }
    return true;
}

bool readVarint(const uint8_t*& p, const uint8_t* end, uint64_t& value)
{
    value = 0;
    for (int shift = 0; shift < 64; shift += 7) {
        if (p == end)
            return false;
        uint8_t b = *p++;
        value |= uint64_t(b & 0x7f) << shift;
        if ((b & 0x80) == 0)
            return true;
    }
    return false;
}

// Proto3 JSON writers may emit URL-safe or unpadded Base64 for bytes; accept those too.
std::optional<std::string> decodeKeyBase64(const std::string& text)
{
    if (auto strict = fromBase64(text))
        return strict;
    std::string normal = text;
    for (char& c : normal) {
        if (c == '-')
            c = '+';
        else if (c == '_')
            c = '/';
    }
    while (normal.size() % 4 != 0)
        normal += '=';
    auto lenient = fromBase64(normal);
    wipe(normal);
    return lenient;
}

const Json* member(const Json& object, const char* name)
{
    auto it = object.find(name);
    return it == object.end() ? nullptr : &*it;
}

Result<uint32_t> readKeyId(const Json& object, const char* name, const std::string& where)
{
    const Json* v = member(object, name);
    if (v == nullptr)
        return Status::invalid(where + ": " + name + " is missing");
    if (!v->is_number_unsigned() || v->get<uint64_t>() > 0xffffffffULL)
        return Status::invalid(where + ": " + name + " must be an integer from 0 to 4294967295");
    return static_cast<uint32_t>(v->get<uint64_t>());
}

Result<TinkKeyStatus> readStatus(const Json& key, const std::string& where)
{
    const Json* v = member(key, "status");
    if (v == nullptr || !v->is_string())
        return Status::invalid(where + ": status is missing or not a string");
    const auto& s = v->get_ref<const std::string&>();
    if (s == "ENABLED")
        return TinkKeyStatus::kEnabled;
    if (s == "DISABLED")
        return TinkKeyStatus::kDisabled;
    if (s == "DESTROYED")
        return TinkKeyStatus::kDestroyed;
    if (s == "UNKNOWN_STATUS")
        return TinkKeyStatus::kUnknown;
    return Status::invalid(where + ": unknown status \"" + s + "\"");
}

Result<TinkOutputPrefix> readPrefix(const Json& key, const std::string& where)
{
    const Json* v = member(key, "outputPrefixType");
    if (v == nullptr || !v->is_string())
        return Status::invalid(where + ": outputPrefixType is missing or not a string");
    const auto& s = v->get_ref<const std::string&>();
    if (s == "TINK")
        return TinkOutputPrefix::kTink;
    if (s == "LEGACY")
        return TinkOutputPrefix::kLegacy;
    if (s == "CRUNCHY")
        return TinkOutputPrefix::kCrunchy;
    if (s == "RAW")
        return TinkOutputPrefix::kRaw;
    return Status::invalid(where + ": unsupported outputPrefixType \"" + s + "\"");
}

Result<SecretBytes> readKeyData(Json& key, const std::string& where)
{
    auto it = key.find("keyData");
    if (it == key.end() || !it->is_object())
        return Status::invalid(where + ": keyData is missing or not an object");
    Json& keyData = *it;
    const Json* typeUrl = member(keyData, "typeUrl");
    if (typeUrl == nullptr || !typeUrl->is_string())
        return Status::invalid(where + ": keyData.typeUrl is missing or not a string");
    if (typeUrl->get_ref<const std::string&>() != kAesSivTypeUrl)
        return Status::invalid(where + ": key type " + typeUrl->get_ref<const std::string&>() +
                               " is not supported (only AesSivKey)");
    const Json* material = member(keyData, "keyMaterialType");
    if (material != nullptr && (!material->is_string() || material->get_ref<const std::string&>() != "SYMMETRIC"))
        return Status::invalid(where + ": keyData.keyMaterialType must be SYMMETRIC");
    auto value = keyData.find("value");
    if (value == keyData.end() || !value->is_string())
        return Status::invalid(where + ": keyData.value is missing or not a string");
    auto proto = decodeKeyBase64(value->get_ref<const std::string&>());
    wipe(value->get_ref<std::string&>());
    if (!proto)
        return Status::invalid(where + ": keyData.value is not Base64");
    auto parsed = parseAesSivKey(*proto);
    wipe(*proto);
    if (!parsed)
        return parsed.status().withContext(where);
    return parsed;
}

// ---- CSV ----

void appendQuoted(std::string& out, std::string_view value)
{
    out += '"';
    // Runs between quotes in one append each (a keys output writes one row per key).
    for (size_t at = 0; at < value.size();) {
        const size_t quote = value.find('"', at);
        const size_t end = quote == std::string_view::npos ? value.size() : quote + 1;
        out.append(value.data() + at, end - at);
        if (quote != std::string_view::npos)
            out += '"';
        at = end;
    }
    out += '"';
}

// RFC 4180 records. Blank lines are skipped.
Result<std::vector<std::vector<std::string>>> parseCsv(std::string_view text)
{
    if (text.substr(0, 3) == "\xEF\xBB\xBF")
        text.remove_prefix(3);
    std::vector<std::vector<std::string>> records;
    std::vector<std::string> record;
    std::string field;
    size_t i = 0;
    size_t recordStart = 0;
    auto err = [&](const char* what) {
        return Status::invalid("CSV record " + std::to_string(records.size() + 1) + ": " + what);
    };
    auto endRecord = [&] {
        record.push_back(std::move(field));
        field.clear();
        records.push_back(std::move(record));
        record.clear();
    };
    while (i < text.size()) {
        char c = text[i];
        if (c == '"' && field.empty() && (i == recordStart || text[i - 1] == ',')) {
            ++i;
            for (;;) {
                if (i >= text.size())
                    return err("quoted field is not closed");
                char q = text[i++];
                if (q != '"') {
                    field += q;
                } else if (i < text.size() && text[i] == '"') {
                    field += '"';
                    ++i;
                } else {
                    break;
                }
            }
            if (i < text.size() && text[i] != ',' && text[i] != '\n' && text[i] != '\r')
                return err("text after a closing quote");
        } else if (c == ',') {
            record.push_back(std::move(field));
            field.clear();
            ++i;
        } else if (c == '\n' || c == '\r') {
            if (c == '\r' && (i + 1 >= text.size() || text[i + 1] != '\n'))
                return err("carriage return without a line feed");
            bool blank = i == recordStart;
            i += c == '\r' ? 2 : 1;
            if (!blank)
                endRecord();
            recordStart = i;
        } else if (c == '"') {
            return err("quote inside an unquoted field");
        } else {
            field += c;
            ++i;
        }
    }
    if (i > recordStart)
        endRecord();
    return records;
}

}  // namespace

Result<SecretBytes> serializeAesSivKey(std::string_view key)
{
    if (key.size() != kSivKeySize)
        return Status::invalid("AES-SIV key must be 64 bytes, got " + std::to_string(key.size()));
    SecretBytes proto(2 + key.size());
    proto.data()[0] = 0x12;  // field 2 (key_value), wire type 2 (length-delimited)
    proto.data()[1] = 0x40;  // length 64
    std::memcpy(proto.data() + 2, key.data(), key.size());
    return proto;
}

Result<SecretBytes> parseAesSivKey(std::string_view proto)
{
    const auto* p = reinterpret_cast<const uint8_t*>(proto.data());
    const uint8_t* end = p + proto.size();
    uint64_t version = 0;
    const uint8_t* key = nullptr;
    uint64_t keySize = 0;
    while (p < end) {
        uint64_t tag;
        if (!readVarint(p, end, tag))
            return Status::invalid("AesSivKey protobuf: truncated field tag");
        uint64_t field = tag >> 3;
        uint64_t wire = tag & 7;
        if (field == 0)
            return Status::invalid("AesSivKey protobuf: field number 0");
        if ((field == 1 && wire != 0) || (field == 2 && wire != 2))
            return Status::invalid("AesSivKey protobuf: field " + std::to_string(field) + " has the wrong wire type");
        uint64_t value;
        switch (wire) {
        case 0:
            if (!readVarint(p, end, value))
                return Status::invalid("AesSivKey protobuf: truncated varint");
            if (field == 1)
                version = value;
            break;
        case 1:
            if (end - p < 8)
                return Status::invalid("AesSivKey protobuf: truncated fixed64");
            p += 8;
            break;
        case 2:
            if (!readVarint(p, end, value) || value > static_cast<uint64_t>(end - p))
                return Status::invalid("AesSivKey protobuf: truncated length-delimited field");
            if (field == 2) {
                key = p;
                keySize = value;
            }
            p += value;
            break;
        case 5:
            if (end - p < 4)
                return Status::invalid("AesSivKey protobuf: truncated fixed32");
            p += 4;
            break;
        default:
            return Status::invalid("AesSivKey protobuf: unsupported wire type " + std::to_string(wire));
        }
    }
    if (version != 0)
        return Status::invalid("AesSivKey version " + std::to_string(version) + " is not supported");
    if (keySize != kSivKeySize)
        return Status::invalid("AesSivKey key_value must be 64 bytes, got " + std::to_string(keySize));
    return SecretBytes::copyOf(key, keySize);
}

Result<std::string> tinkKeysetJson(uint32_t keyId, std::string_view key)
{
    auto proto = serializeAesSivKey(key);
    if (!proto)
        return proto.status();
    std::string id = std::to_string(keyId);
    std::string out;
    out.reserve(320);
    out += "{\"primaryKeyId\": ";
    out += id;
    out += ", \"key\": [{\"keyData\": {\"typeUrl\": \"";
    out += kAesSivTypeUrl;
    out += "\", \"value\": \"";
    appendBase64(out, proto->view());
    out += "\", \"keyMaterialType\": \"SYMMETRIC\"}, \"status\": \"ENABLED\", \"keyId\": ";
    out += id;
    out += ", \"outputPrefixType\": \"TINK\"}]}";
    return out;
}

Result<TinkKeyset> parseTinkKeyset(std::string_view text)
{
    if (text.size() > kMaxKeysetText)
        return Status::invalid("keyset is larger than 1 MiB");
    if (!depthWithin(text, kMaxKeysetDepth))
        return Status::invalid("keyset JSON is nested too deeply");
    Json doc = Json::parse(text.begin(), text.end(), nullptr, /*allow_exceptions=*/false);
    if (doc.is_discarded())
        return Status::invalid("keyset is not valid JSON");
    if (!doc.is_object())
        return Status::invalid("keyset must be a JSON object");

    TinkKeyset keyset;
    if (member(doc, "primaryKeyId") != nullptr) {
        auto primary = readKeyId(doc, "primaryKeyId", "keyset");
        if (!primary)
            return primary.status();
        keyset.primaryKeyId = *primary;
    }
    auto keys = doc.find("key");
    if (keys == doc.end() || !keys->is_array() || keys->empty())
        return Status::invalid("keyset: \"key\" must be a non-empty array");
    if (keys->size() > kMaxKeys)
        return Status::invalid("keyset has more than 4096 keys");

    size_t index = 0;
    for (Json& key : *keys) {
        std::string where = "keyset key " + std::to_string(index++);
        if (!key.is_object())
            return Status::invalid(where + ": not an object");
        TinkKeysetKey entry;
        auto id = readKeyId(key, "keyId", where);
        if (!id)
            return id.status();
        entry.keyId = *id;
        auto status = readStatus(key, where);
        if (!status)
            return status.status();
        entry.status = *status;
        auto prefix = readPrefix(key, where);
        if (!prefix)
            return prefix.status();
        entry.outputPrefix = *prefix;
        if (entry.status == TinkKeyStatus::kEnabled) {
            auto value = readKeyData(key, where);
            if (!value)
                return value.status();
            entry.keyValue = std::move(value).value();
        }
        keyset.keys.push_back(std::move(entry));
    }
    return keyset;
}

Result<std::string> tinkKeysetDecrypt(const TinkKeyset& keyset, std::string_view ciphertext, SivCipher& cipher)
{
    bool tried = false;
    std::string plaintext;
    auto attempt = [&](const TinkKeysetKey& key, std::string_view input) -> Status {
        tried = true;
        auto siv = cipher.makeKey(key.keyValue.view());
        if (!siv)
            return siv.status();
        return cipher.decrypt(input, plaintext);
    };

    if (auto prefix = parseTinkPrefix(ciphertext)) {
        for (const TinkKeysetKey& key : keyset.keys) {
            if (key.status != TinkKeyStatus::kEnabled || key.keyId != prefix->keyId)
                continue;
            bool tinkKey = key.outputPrefix == TinkOutputPrefix::kTink;
            bool zeroKey = key.outputPrefix == TinkOutputPrefix::kLegacy || key.outputPrefix == TinkOutputPrefix::kCrunchy;
            if ((prefix->startByte == kTinkStartByte && tinkKey) || (prefix->startByte == kLegacyStartByte && zeroKey)) {
                Status st = attempt(key, prefix->sivAndCiphertext);
                if (st.isOk())
                    return plaintext;
                if (st.code() != StatusCode::kPermission)
                    return st;
            }
        }
    }
    for (const TinkKeysetKey& key : keyset.keys) {
        if (key.status != TinkKeyStatus::kEnabled || key.outputPrefix != TinkOutputPrefix::kRaw)
            continue;
        Status st = attempt(key, ciphertext);
        if (st.isOk())
            return plaintext;
        if (st.code() != StatusCode::kPermission && st.code() != StatusCode::kCorruption)
            return st;
    }
    if (!tried)
        return Status::notFound("no enabled key in the keyset matches this ciphertext's prefix");
    return Status::permission("no key in the keyset decrypts this ciphertext (wrong keyset or altered data)");
}

void appendKeyExportCsvHeader(std::string& out)
{
    out += kKeyExportCsvHeader;
    out += '\n';
}

void appendKeyExportCsvRow(std::string& out, const KeyExportRow& row)
{
    appendQuoted(out, row.keyLink);
    out += ',';
    appendQuoted(out, row.encryptionKey);
    out += ',';
    appendQuoted(out, row.policyId);
    out += ',';
    appendQuoted(out, std::to_string(row.expiresAtMs));
    out += '\n';
}

Result<std::vector<KeyExportRow>> parseKeyExportCsv(std::string_view text)
{
    auto records = parseCsv(text);
    if (!records)
        return records.status();
    if (records->empty())
        return Status::invalid("key export CSV is empty");
    const auto& header = records->front();
    static const char* const kColumns[] = {"keyLink", "encryptionKey", "policyId", "expiresAt"};
    if (header.size() != 4)
        return Status::invalid("key export CSV header must have 4 columns: keyLink,encryptionKey,policyId,expiresAt");
    for (size_t i = 0; i < 4; ++i)
        if (header[i] != kColumns[i])
            return Status::invalid(std::string("key export CSV header column ") + std::to_string(i + 1) +
                                   " must be " + kColumns[i]);
    std::vector<KeyExportRow> rows;
    rows.reserve(records->size() - 1);
    for (size_t r = 1; r < records->size(); ++r) {
        auto& fields = (*records)[r];
        std::string where = "key export CSV row " + std::to_string(r);
        if (fields.size() != 4)
            return Status::invalid(where + ": expected 4 fields, got " + std::to_string(fields.size()));
        KeyExportRow row;
        const std::string& expires = fields[3];
        auto [end, ec] = std::from_chars(expires.data(), expires.data() + expires.size(), row.expiresAtMs);
        if (ec != std::errc() || end != expires.data() + expires.size() || expires.empty())
            return Status::invalid(where + ": expiresAt is not an integer (epoch milliseconds)");
        row.keyLink = std::move(fields[0]);
        row.encryptionKey = std::move(fields[1]);
        row.policyId = std::move(fields[2]);
        rows.push_back(std::move(row));
    }
    return rows;
}

void appendKeyExportJsonLine(std::string& out, std::string_view keyLink, std::string_view contract, int64_t createdAtMs,
                             int64_t expiresAtMs, std::string_view keysetJson)
{
    out += "{\"keyLink\": ";
    appendJsonString(out, keyLink);
    out += ", \"contract\": ";
    appendJsonString(out, contract);
    out += ", \"createdAt\": " + std::to_string(createdAtMs);
    out += ", \"expiresAt\": " + std::to_string(expiresAtMs);
    out += ", \"keyset\": ";
    out += keysetJson;
    out += "}\n";
}

}  // namespace sluice::privacy
