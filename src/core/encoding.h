// Text encodings of bytes: lowercase hex and standard Base64 (RFC 4648, with padding).
#pragma once

#include <optional>
#include <string>
#include <string_view>

namespace sluice {

std::string toHex(std::string_view bytes);
void appendHex(std::string& out, std::string_view bytes);
std::optional<std::string> fromHex(std::string_view hex);
// The value of one hex digit (either case), or -1.
int hexDigitValue(char c);

size_t base64Length(size_t bytes);
void appendBase64(std::string& out, std::string_view bytes);
// Writes base64Length(bytes.size()) characters to `out`.
void encodeBase64(char* out, std::string_view bytes);
std::string toBase64(std::string_view bytes);
// Strict: standard alphabet, padding required, no whitespace.
std::optional<std::string> fromBase64(std::string_view text);

// Z85 (ZeroMQ RFC 32), the text form of CURVE keys: 4 bytes <-> 5 characters. `bytes` must be a
// multiple of 4 long; nullopt for text that is not Z85 or not a multiple of 5 long.
std::string toZ85(std::string_view bytes);
std::optional<std::string> fromZ85(std::string_view text);

// A CURVE key as written in configuration: 40 Z85 characters or 64 hex digits. nullopt when it
// is neither, or not 32 bytes.
std::optional<std::string> curveKeyFromText(std::string_view text);

}  // namespace sluice
