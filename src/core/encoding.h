// Text encodings of bytes: lowercase hex and standard Base64 (RFC 4648, with padding).
#pragma once

#include <optional>
#include <string>
#include <string_view>

namespace sluice {

std::string toHex(std::string_view bytes);
void appendHex(std::string& out, std::string_view bytes);
std::optional<std::string> fromHex(std::string_view hex);

size_t base64Length(size_t bytes);
void appendBase64(std::string& out, std::string_view bytes);
// Writes base64Length(bytes.size()) characters to `out`.
void encodeBase64(char* out, std::string_view bytes);
std::string toBase64(std::string_view bytes);
// Strict: standard alphabet, padding required, no whitespace.
std::optional<std::string> fromBase64(std::string_view text);

}  // namespace sluice
