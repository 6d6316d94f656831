#include "http/message.hpp"

#include <algorithm>
#include <cctype>

namespace kvmkit::http {

std::string to_lower(std::string s) {
    std::transform(s.begin(), s.end(), s.begin(), [](unsigned char c) { return char(std::tolower(c)); });
    return s;
}

std::string Request::header(const std::string& name) const {
    auto it = headers.find(to_lower(name));
    return it == headers.end() ? std::string() : it->second;
}

Response Response::json(int status, const Json& body) {
    Response r;
    r.status = status;
    // Replace invalid UTF-8 instead of throwing: bodies may quote guest data.
    r.body = body.dump(-1, ' ', false, Json::error_handler_t::replace);
    return r;
}

Response Response::no_content() {
    Response r;
    r.status = 204;
    return r;
}

Response Response::error(int status, const std::string& message) {
    return json(status, Json{{"error", message}});
}

const char* reason_phrase(int status) {
    switch (status) {
        case 100:
            return "Continue";
        case 200:
            return "OK";
        case 201:
            return "Created";
        case 202:
            return "Accepted";
        case 204:
            return "No Content";
        case 400:
            return "Bad Request";
        case 403:
            return "Forbidden";
        case 404:
            return "Not Found";
        case 405:
            return "Method Not Allowed";
        case 408:
            return "Request Timeout";
        case 409:
            return "Conflict";
        case 411:
            return "Length Required";
        case 413:
            return "Content Too Large";
        case 414:
            return "URI Too Long";
        case 415:
            return "Unsupported Media Type";
        case 431:
            return "Request Header Fields Too Large";
        case 500:
            return "Internal Server Error";
        case 501:
            return "Not Implemented";
        case 503:
            return "Service Unavailable";
        case 505:
            return "HTTP Version Not Supported";
        default:
            return "";
    }
}

std::string serialize(const Response& response, bool close_connection) {
    std::string out = "HTTP/1.1 " + std::to_string(response.status) + " " + reason_phrase(response.status) + "\r\n";
    bool has_type = false;
    for (const auto& [name, value] : response.headers) {
        std::string lower = to_lower(name);
        if (lower == "content-length" || lower == "connection") continue;  // ours
        if (lower == "content-type") has_type = true;
        out += name + ": " + value + "\r\n";
    }
    // 1xx and 204 carry no body and no Content-Length (RFC 9110 8.6).
    bool bodyless = response.status < 200 || response.status == 204;
    if (!bodyless) {
        if (!has_type && !response.body.empty()) out += "Content-Type: application/json\r\n";
        out += "Content-Length: " + std::to_string(response.body.size()) + "\r\n";
    }
    if (close_connection) out += "Connection: close\r\n";
    out += "\r\n";
    if (!bodyless) out += response.body;
    return out;
}

}  // namespace kvmkit::http
