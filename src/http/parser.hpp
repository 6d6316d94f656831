// Incremental HTTP/1.1 parsers. Bytes arrive in any split (a request may come
// one byte at a time); the parser buffers them and reports NeedMore, Complete
// or Error. Only Content-Length bodies are supported (no chunked encoding):
// every client of the control API sends small JSON documents.
#pragma once

#include <cstddef>
#include <string>
#include <string_view>

#include "base/result.hpp"
#include "http/message.hpp"

namespace kvmkit::http {

struct Limits {
    size_t max_head_bytes = 16 * 1024;  // request line + all headers
    size_t max_headers = 64;
    size_t max_body_bytes = 1024 * 1024;
};

class RequestParser {
public:
    enum class State { NeedMore, Complete, Error };

    explicit RequestParser(Limits limits = {}) : limits_(limits) {}

    // Appends bytes and parses as far as possible.
    State feed(std::string_view data);
    // Parses what is buffered (e.g. the next pipelined request).
    State parse();
    State state() const { return state_; }

    // In Complete: moves the request out and starts on the next one; bytes
    // after it stay buffered (pipelining).
    Request take();

    // In Error: the status to answer with (400, 413, 431, 501, 505) and why.
    int error_status() const { return error_status_; }
    const std::string& error_message() const { return error_message_; }

    // True once, when the head asked "Expect: 100-continue" and the body is
    // still to come; the server then sends "100 Continue".
    bool take_continue_request();

    size_t buffered() const { return buffer_.size(); }

private:
    State fail(int status, std::string message);
    State parse_head(std::string_view head);

    Limits limits_;
    std::string buffer_;
    State state_ = State::NeedMore;
    bool have_head_ = false;
    size_t body_length_ = 0;
    bool expect_continue_ = false;
    Request request_;
    int error_status_ = 0;
    std::string error_message_;
};

// The parsed head of a response (client side).
struct ResponseHead {
    int status = 0;
    Headers headers;
};

// Finds the end of a message head ("\r\n\r\n" or a bare "\n\n"); returns the
// offset of the first body byte, or npos if the head is incomplete.
size_t find_head_end(std::string_view data);

// Parses "HTTP/1.x NNN reason" plus headers. Errors describe what was wrong.
base::Result<ResponseHead> parse_response_head(std::string_view head);

}  // namespace kvmkit::http
