#include "privacy/openssl_error.h"

#include <string>

#include <openssl/err.h>

namespace sluice::privacy {

Status opensslError(std::string_view context, StatusCode code)
{
    std::string message(context);
    message += ": ";
    bool first = true;
    unsigned long err;
    while ((err = ERR_get_error()) != 0) {
        char text[256];
        ERR_error_string_n(err, text, sizeof text);
        if (!first)
            message += "; ";
        message += text;
        first = false;
    }
    if (first)
        message += "OpenSSL reported no detail";
    return Status::error(code == StatusCode::kOk ? StatusCode::kInternal : code, std::move(message));
}

void clearOpensslErrors() { ERR_clear_error(); }

}  // namespace sluice::privacy
