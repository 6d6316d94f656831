// Result<T>: a value or an Error, with the method names of std::expected so it
// can become an alias once the project moves to C++23.
//
// Errors chain context outermost first: Error("boot").wrap(...) is avoided in
// favour of `TRY_CTX(expr, "load kernel '%s'", path)`, which prefixes the
// inner message: "load kernel 'x': not a bzImage (no HdrS magic)".
#pragma once

#include <cerrno>
#include <cstring>
#include <string>
#include <utility>
#include <variant>

namespace kvmkit::base {

class Error {
public:
    Error() = default;
    explicit Error(std::string message, int errnum = 0) : message_(std::move(message)), errnum_(errnum) {}

    // An error from a failed system call: "what: strerror(errno)".
    static Error from_errno(const std::string& what, int errnum = errno) {
        return Error(what + ": " + std::strerror(errnum), errnum);
    }

    const std::string& message() const { return message_; }
    int errnum() const { return errnum_; }

    // Prefixes context: Error("x").context("load") -> "load: x".
    Error context(const std::string& outer) const& { return Error(outer + ": " + message_, errnum_); }

private:
    std::string message_;
    int errnum_ = 0;
};

struct Unexpected {
    Error error;
};
inline Unexpected unexpected(Error e) { return Unexpected{std::move(e)}; }
inline Unexpected fail(std::string message) { return Unexpected{Error(std::move(message))}; }
inline Unexpected fail_errno(const std::string& what, int errnum = errno) {
    return Unexpected{Error::from_errno(what, errnum)};
}

template <typename T>
class [[nodiscard]] Result {
public:
    Result(T value) : v_(std::in_place_index<0>, std::move(value)) {}
    Result(Unexpected u) : v_(std::in_place_index<1>, std::move(u.error)) {}
    Result(Error e) : v_(std::in_place_index<1>, std::move(e)) {}

    bool has_value() const { return v_.index() == 0; }
    explicit operator bool() const { return has_value(); }

    T& value() & { return std::get<0>(v_); }
    const T& value() const& { return std::get<0>(v_); }
    T&& value() && { return std::get<0>(std::move(v_)); }
    T& operator*() & { return value(); }
    const T& operator*() const& { return value(); }
    T* operator->() { return &value(); }
    const T* operator->() const { return &value(); }

    const Error& error() const& { return std::get<1>(v_); }
    Error&& error() && { return std::get<1>(std::move(v_)); }

    template <typename U>
    T value_or(U&& fallback) const& {
        return has_value() ? value() : static_cast<T>(std::forward<U>(fallback));
    }

private:
    std::variant<T, Error> v_;
};

template <>
class [[nodiscard]] Result<void> {
public:
    Result() = default;
    Result(Unexpected u) : error_(std::move(u.error)), ok_(false) {}
    Result(Error e) : error_(std::move(e)), ok_(false) {}

    bool has_value() const { return ok_; }
    explicit operator bool() const { return ok_; }
    void value() const {}
    const Error& error() const& { return error_; }
    Error&& error() && { return std::move(error_); }

private:
    Error error_;
    bool ok_ = true;
};

inline Result<void> ok() { return {}; }

}  // namespace kvmkit::base

// TRY(expr): evaluates a Result; on error returns it from the enclosing
// function, otherwise yields the value (GNU statement expression).
#define KVMKIT_CONCAT_(a, b) a##b
#define KVMKIT_CONCAT(a, b) KVMKIT_CONCAT_(a, b)

#define TRY(expr)                                                              \
    ({                                                                         \
        auto&& KVMKIT_CONCAT(try_r_, __LINE__) = (expr);                       \
        if (!KVMKIT_CONCAT(try_r_, __LINE__).has_value())                      \
            return ::kvmkit::base::unexpected(                                 \
                std::move(KVMKIT_CONCAT(try_r_, __LINE__)).error());           \
        std::move(KVMKIT_CONCAT(try_r_, __LINE__)).value();                    \
    })

// TRY_CTX(expr, context-string): as TRY, prefixing the error with context.
#define TRY_CTX(expr, ctx)                                                     \
    ({                                                                         \
        auto&& KVMKIT_CONCAT(try_r_, __LINE__) = (expr);                       \
        if (!KVMKIT_CONCAT(try_r_, __LINE__).has_value())                      \
            return ::kvmkit::base::unexpected(                                 \
                KVMKIT_CONCAT(try_r_, __LINE__).error().context(ctx));         \
        std::move(KVMKIT_CONCAT(try_r_, __LINE__)).value();                    \
    })
