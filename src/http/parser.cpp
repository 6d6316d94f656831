#include "http/parser.hpp"

#include <charconv>
#include <vector>

namespace kvmkit::http {

namespace {

// RFC 9110 5.6.2 token characters.
bool is_tchar(char c) {
    if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9')) return true;
    switch (c) {
        case '!':
        case '#':
        case '$':
        case '%':
        case '&':
        case '\'':
        case '*':
        case '+':
        case '-':
        case '.':
        case '^':
        case '_':
        case '`':
        case '|':
        case '~':
            return true;
        default:
            return false;
    }
}

bool is_token(std::string_view s) {
    if (s.empty()) return false;
    for (char c : s)
        if (!is_tchar(c)) return false;
    return true;
}

std::string_view trim(std::string_view s) {
    while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
    while (!s.empty() && (s.back() == ' ' || s.back() == '\t')) s.remove_suffix(1);
    return s;
}

// Splits a head into lines, accepting CRLF or a bare LF.
std::vector<std::string_view> split_lines(std::string_view head) {
    std::vector<std::string_view> lines;
    while (!head.empty()) {
        size_t nl = head.find('\n');
        std::string_view line = head.substr(0, nl);
        if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
        lines.push_back(line);
        if (nl == std::string_view::npos) break;
        head.remove_prefix(nl + 1);
    }
    while (!lines.empty() && lines.back().empty()) lines.pop_back();
    return lines;
}

// Parses header lines [1, n) into `out`. Returns "" or the error.
std::string parse_header_lines(const std::vector<std::string_view>& lines, size_t max_headers, Headers& out) {
    if (lines.size() - 1 > max_headers) return "too many header fields (limit " + std::to_string(max_headers) + ")";
    for (size_t i = 1; i < lines.size(); ++i) {
        std::string_view line = lines[i];
        if (line.front() == ' ' || line.front() == '\t') return "obsolete header line folding is not accepted";
        size_t colon = line.find(':');
        if (colon == std::string_view::npos) return "header line without ':'";
        std::string_view name = line.substr(0, colon);
        if (!is_token(name)) return "invalid header field name";
        std::string_view value = trim(line.substr(colon + 1));
        for (char c : value)
            if ((static_cast<unsigned char>(c) < 0x20 && c != '\t') || c == 0x7f)
                return "control character in header field '" + std::string(name) + "'";
        std::string key = to_lower(std::string(name));
        auto [it, inserted] = out.emplace(key, std::string(value));
        if (!inserted) {
            if (key == "content-length") {
                if (it->second != value) return "conflicting Content-Length headers";
            } else {
                it->second += ", " + std::string(value);  // RFC 9110 5.3
            }
        }
    }
    return {};
}

}  // namespace

size_t find_head_end(std::string_view data) {
    size_t crlf = data.find("\r\n\r\n");
    size_t lf = data.find("\n\n");
    if (crlf == std::string_view::npos && lf == std::string_view::npos) return std::string_view::npos;
    if (crlf != std::string_view::npos && (lf == std::string_view::npos || crlf + 2 <= lf)) return crlf + 4;
    return lf + 2;
}

RequestParser::State RequestParser::fail(int status, std::string message) {
    state_ = State::Error;
    error_status_ = status;
    error_message_ = std::move(message);
    return state_;
}

RequestParser::State RequestParser::feed(std::string_view data) {
    if (state_ == State::Error) return state_;
    buffer_.append(data);
    return parse();
}

RequestParser::State RequestParser::parse() {
    if (state_ != State::NeedMore) return state_;
    if (!have_head_) {
        // RFC 9112 2.2: ignore empty lines before the request line.
        size_t skip = 0;
        while (skip < buffer_.size() && (buffer_[skip] == '\r' || buffer_[skip] == '\n')) ++skip;
        buffer_.erase(0, skip);
        size_t end = find_head_end(buffer_);
        if (end == std::string::npos) {
            if (buffer_.size() > limits_.max_head_bytes)
                return fail(431, "request head larger than " + std::to_string(limits_.max_head_bytes) + " bytes");
            return state_;
        }
        if (end > limits_.max_head_bytes)
            return fail(431, "request head larger than " + std::to_string(limits_.max_head_bytes) + " bytes");
        if (parse_head(std::string_view(buffer_).substr(0, end)) == State::Error) return state_;
        buffer_.erase(0, end);
        have_head_ = true;
    }
    if (buffer_.size() < body_length_) return state_;
    request_.body = buffer_.substr(0, body_length_);
    buffer_.erase(0, body_length_);
    if (!request_.body.empty()) {
        request_.json = Json::parse(request_.body, nullptr, /*allow_exceptions=*/false);
        if (request_.json.is_discarded()) {
            request_.json = nullptr;
            return fail(400, "request body is not valid JSON");
        }
    }
    state_ = State::Complete;
    return state_;
}

RequestParser::State RequestParser::parse_head(std::string_view head) {
    auto lines = split_lines(head);
    if (lines.empty()) return fail(400, "empty request");
    std::string_view line = lines[0];
    size_t sp1 = line.find(' ');
    size_t sp2 = sp1 == std::string_view::npos ? sp1 : line.find(' ', sp1 + 1);
    if (sp2 == std::string_view::npos || line.find(' ', sp2 + 1) != std::string_view::npos)
        return fail(400, "malformed request line (expected 'METHOD /path HTTP/1.1')");
    std::string_view method = line.substr(0, sp1);
    std::string_view target = line.substr(sp1 + 1, sp2 - sp1 - 1);
    std::string_view version = line.substr(sp2 + 1);
    if (!is_token(method)) return fail(400, "malformed request method");
    if (target.empty() || target.front() != '/') return fail(400, "request target must be an absolute path");
    for (char c : target)
        if (static_cast<unsigned char>(c) <= 0x20 || c == 0x7f) return fail(400, "control character in request target");
    if (version.size() != 8 || version.substr(0, 5) != "HTTP/" || version[6] != '.' || version[5] < '0' ||
        version[5] > '9' || version[7] < '0' || version[7] > '9')
        return fail(400, "malformed HTTP version");
    if (version[5] != '1') return fail(505, "only HTTP/1.x is supported");

    Request r;
    r.method = std::string(method);
    size_t q = target.find('?');
    r.path = std::string(target.substr(0, q));
    if (q != std::string_view::npos) r.query = std::string(target.substr(q + 1));
    r.minor_version = version[7] - '0';
    if (auto err = parse_header_lines(lines, limits_.max_headers, r.headers); !err.empty()) return fail(400, err);

    if (r.headers.count("transfer-encoding"))
        return fail(501, "Transfer-Encoding is not supported; send a Content-Length body");
    body_length_ = 0;
    if (auto it = r.headers.find("content-length"); it != r.headers.end()) {
        const std::string& v = it->second;
        uint64_t n = 0;
        auto [end, ec] = std::from_chars(v.data(), v.data() + v.size(), n);
        if (v.empty() || ec != std::errc() || end != v.data() + v.size()) return fail(400, "malformed Content-Length");
        if (n > limits_.max_body_bytes)
            return fail(413, "request body larger than " + std::to_string(limits_.max_body_bytes) + " bytes");
        body_length_ = size_t(n);
    }
    expect_continue_ = body_length_ > 0 && to_lower(r.header("expect")) == "100-continue";
    request_ = std::move(r);
    return state_;
}

bool RequestParser::take_continue_request() {
    if (!expect_continue_ || !have_head_ || state_ != State::NeedMore) return false;
    expect_continue_ = false;
    return true;
}

Request RequestParser::take() {
    Request r = std::move(request_);
    request_ = Request{};
    have_head_ = false;
    body_length_ = 0;
    expect_continue_ = false;
    state_ = State::NeedMore;
    return r;
}

base::Result<ResponseHead> parse_response_head(std::string_view head) {
    auto lines = split_lines(head);
    if (lines.empty()) return base::fail("empty response");
    std::string_view line = lines[0];
    // "HTTP/1.1 200 OK" (the reason phrase may be empty or contain spaces).
    if (line.size() < 12 || line.substr(0, 7) != "HTTP/1." || line[8] != ' ' || (line.size() > 12 && line[12] != ' '))
        return base::fail("malformed response status line");
    int status = 0;
    auto [end, ec] = std::from_chars(line.data() + 9, line.data() + 12, status);
    if (ec != std::errc() || end != line.data() + 12 || status < 100)
        return base::fail("malformed response status code");
    ResponseHead h;
    h.status = status;
    if (auto err = parse_header_lines(lines, 1000, h.headers); !err.empty()) return base::fail("response: " + err);
    return h;
}

}  // namespace kvmkit::http
