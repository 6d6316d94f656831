// HTTP/1.1 request and response values shared by the server, the client and
// the parser. Bodies are JSON (the control API of kvmkit-vmm and kvmkitd);
// header names are stored lower-case (HTTP header names are case-insensitive).
#pragma once

#include <functional>
#include <map>
#include <nlohmann/json.hpp>
#include <string>

namespace kvmkit::http {

using Json = nlohmann::json;
using Headers = std::map<std::string, std::string>;  // lower-case name -> value

struct Request {
    std::string method;     // "GET", "PUT", ... as sent (methods are case-sensitive)
    std::string path;       // target without the query string, e.g. "/api/v1/vm.info"
    std::string query;      // after '?', undecoded; empty if none
    int minor_version = 1;  // HTTP/1.<minor>
    Headers headers;
    std::string body;
    Json json;  // the parsed body; null when the body is empty

    // Value of a header (name in any case) or "" when absent.
    std::string header(const std::string& name) const;
};

struct Response {
    int status = 200;
    Headers headers;   // extra headers; Content-Length/Content-Type are added
    std::string body;  // serialized body (JSON text, or empty)
    // Runs on the server's thread once the response has been written out in
    // full (e.g. "exit the process after acknowledging vmm.shutdown").
    std::function<void()> on_sent;

    static Response json(int status, const Json& body);
    static Response no_content();  // 204
    // {"error": message} with the given 4xx/5xx status.
    static Response error(int status, const std::string& message);
};

// "OK", "Not Found", ... ("" for unknown codes).
const char* reason_phrase(int status);

// Serializes a response head and body for the wire.
std::string serialize(const Response& response, bool close_connection);

std::string to_lower(std::string s);

}  // namespace kvmkit::http
