// Status and Result<T>: how every stage reports failure without exceptions.
//
// A Status is either ok or an error with a code and a human message that already carries its
// context ("contracts/a.json: fields.email.pattern: missing )"). Result<T> holds a T or a
// non-ok Status. Both are cheap to move; an ok Status allocates nothing.
#pragma once

#include <cassert>
#include <cstring>
#include <optional>
#include <string>
#include <utility>
#include <variant>

namespace sluice {

enum class StatusCode {
    kOk = 0,
    kInvalidArgument,  // bad input from a user or a file
    kNotFound,
    kAlreadyExists,
    kIoError,          // the disk, a socket, a file
    kCorruption,       // data that should be well formed is not
    kPermission,       // a secret that does not unlock, a file mode
    kUnavailable,      // a peer or resource is not there (yet)
    kInternal,
};

class [[nodiscard]] Status {
public:
    Status() = default;

    static Status ok() { return Status(); }
    static Status error(StatusCode code, std::string message) { return Status(code, std::move(message)); }
    static Status invalid(std::string message) { return error(StatusCode::kInvalidArgument, std::move(message)); }
    static Status notFound(std::string message) { return error(StatusCode::kNotFound, std::move(message)); }
    static Status ioError(std::string message) { return error(StatusCode::kIoError, std::move(message)); }
    static Status corruption(std::string message) { return error(StatusCode::kCorruption, std::move(message)); }
    static Status permission(std::string message) { return error(StatusCode::kPermission, std::move(message)); }
    static Status internal(std::string message) { return error(StatusCode::kInternal, std::move(message)); }

    bool isOk() const { return code_ == StatusCode::kOk; }
    explicit operator bool() const { return isOk(); }
    StatusCode code() const { return code_; }
    const std::string& message() const { return message_; }

    // Returns a copy whose message is prefixed with `context: `.
    Status withContext(const std::string& context) const
    {
        if (isOk())
            return *this;
        return Status(code_, context + ": " + message_);
    }

private:
    Status(StatusCode code, std::string message) : code_(code), message_(std::move(message)) {}

    StatusCode code_ = StatusCode::kOk;
    std::string message_;
};

// A failed system call's errno `err` (saved right after the call) as an I/O error:
// "<what>: <strerror(err)>".
inline Status errnoStatus(const std::string& what, int err)
{
    return Status::ioError(what + ": " + std::strerror(err));
}

template <typename T>
class [[nodiscard]] Result {
public:
    Result(T value) : value_(std::move(value)) {}  // NOLINT: implicit by design
    Result(Status status) : status_(std::move(status)) { assert(!status_.isOk()); }  // NOLINT

    bool isOk() const { return value_.has_value(); }
    explicit operator bool() const { return isOk(); }
    const Status& status() const { return status_; }

    T& value() & { assert(isOk()); return *value_; }
    const T& value() const& { assert(isOk()); return *value_; }
    T&& value() && { assert(isOk()); return std::move(*value_); }
    T* operator->() { return &value(); }
    const T* operator->() const { return &value(); }
    T& operator*() & { return value(); }
    const T& operator*() const& { return value(); }

private:
    std::optional<T> value_;
    Status status_;
};

}  // namespace sluice

// Returns early from the enclosing function when `expr` yields a non-ok Status.
#define SLUICE_RETURN_IF_ERROR(expr)              \
    do {                                          \
        ::sluice::Status sluiceStatus_ = (expr);  \
        if (!sluiceStatus_.isOk())                \
            return sluiceStatus_;                 \
    } while (0)
