#include "http/parser.hpp"

#include <gtest/gtest.h>

namespace kvmkit::http {
namespace {

using State = RequestParser::State;

TEST(RequestParser, ParsesGetWithHeadersAndQuery) {
    RequestParser p;
    ASSERT_EQ(p.feed("GET /api/v1/vm.info?verbose=1 HTTP/1.1\r\nHost: x\r\nX-Thing:  a b \r\n\r\n"), State::Complete);
    Request r = p.take();
    EXPECT_EQ(r.method, "GET");
    EXPECT_EQ(r.path, "/api/v1/vm.info");
    EXPECT_EQ(r.query, "verbose=1");
    EXPECT_EQ(r.minor_version, 1);
    EXPECT_EQ(r.header("x-thing"), "a b");
    EXPECT_EQ(r.header("HOST"), "x");
    EXPECT_TRUE(r.body.empty());
    EXPECT_TRUE(r.json.is_null());
}

TEST(RequestParser, ByteByByteGivesTheSameRequest) {
    const std::string text = "PUT /x HTTP/1.1\r\nContent-Length: 13\r\n\r\n{\"a\": [1, 2]}";
    RequestParser p;
    for (size_t i = 0; i + 1 < text.size(); ++i) ASSERT_EQ(p.feed(text.substr(i, 1)), State::NeedMore) << i;
    ASSERT_EQ(p.feed(text.substr(text.size() - 1)), State::Complete);
    Request r = p.take();
    EXPECT_EQ(r.body, "{\"a\": [1, 2]}");
    EXPECT_EQ(r.json["a"][1], 2);
}

TEST(RequestParser, PipelinedRequestsComeOutInOrder) {
    RequestParser p;
    ASSERT_EQ(p.feed("GET /a HTTP/1.1\r\n\r\nPUT /b HTTP/1.1\r\nContent-Length: 2\r\n\r\n{}GET /c"), State::Complete);
    EXPECT_EQ(p.take().path, "/a");
    ASSERT_EQ(p.parse(), State::Complete);
    Request b = p.take();
    EXPECT_EQ(b.path, "/b");
    EXPECT_TRUE(b.json.is_object());
    EXPECT_EQ(p.parse(), State::NeedMore);
    EXPECT_EQ(p.feed(" HTTP/1.1\r\n\r\n"), State::Complete);
    EXPECT_EQ(p.take().path, "/c");
}

TEST(RequestParser, AcceptsBareLfAndLeadingEmptyLines) {
    RequestParser p;
    ASSERT_EQ(p.feed("\r\n\nGET /a HTTP/1.0\nConnection: keep-alive\n\n"), State::Complete);
    Request r = p.take();
    EXPECT_EQ(r.path, "/a");
    EXPECT_EQ(r.minor_version, 0);
    EXPECT_EQ(r.header("connection"), "keep-alive");
}

struct BadCase {
    const char* name;
    std::string text;
    int status;
};

class RequestParserRejects : public ::testing::TestWithParam<BadCase> {};

TEST_P(RequestParserRejects, WithTheRightStatus) {
    Limits limits;
    limits.max_head_bytes = 256;
    limits.max_headers = 4;
    limits.max_body_bytes = 64;
    RequestParser p(limits);
    ASSERT_EQ(p.feed(GetParam().text), State::Error);
    EXPECT_EQ(p.error_status(), GetParam().status) << p.error_message();
    EXPECT_FALSE(p.error_message().empty());
    // Further input does not revive it.
    EXPECT_EQ(p.feed("GET / HTTP/1.1\r\n\r\n"), State::Error);
}

INSTANTIATE_TEST_SUITE_P(
    Malformed, RequestParserRejects,
    ::testing::Values(
        BadCase{"garbage", "\x16\x03\x01garbage\r\n\r\n", 400}, BadCase{"two_words", "GET /\r\n\r\n", 400},
        BadCase{"four_words", "GET / HTTP/1.1 x\r\n\r\n", 400},
        BadCase{"relative_target", "GET api HTTP/1.1\r\n\r\n", 400},
        BadCase{"bad_version", "GET / HTTP/x.y\r\n\r\n", 400}, BadCase{"http2", "GET / HTTP/2.0\r\n\r\n", 505},
        BadCase{"bad_method", "G(T / HTTP/1.1\r\n\r\n", 400},
        BadCase{"no_colon", "GET / HTTP/1.1\r\nHost x\r\n\r\n", 400},
        BadCase{"space_before_colon", "GET / HTTP/1.1\r\nHost : x\r\n\r\n", 400},
        BadCase{"folding", "GET / HTTP/1.1\r\nA: b\r\n c\r\n\r\n", 400},
        BadCase{"control_char", std::string("GET / HTTP/1.1\r\nA: b\x01\r\n\r\n"), 400},
        BadCase{"too_many_headers", "GET / HTTP/1.1\r\nA: 1\r\nB: 2\r\nC: 3\r\nD: 4\r\nE: 5\r\n\r\n", 400},
        BadCase{"huge_head_unterminated", "GET /" + std::string(300, 'a'), 431},
        BadCase{"huge_head_terminated", "GET / HTTP/1.1\r\nA: " + std::string(300, 'a') + "\r\n\r\n", 431},
        BadCase{"body_too_large", "PUT / HTTP/1.1\r\nContent-Length: 65\r\n\r\n", 413},
        BadCase{"length_not_a_number", "PUT / HTTP/1.1\r\nContent-Length: 1x\r\n\r\n", 400},
        BadCase{"length_negative", "PUT / HTTP/1.1\r\nContent-Length: -1\r\n\r\n", 400},
        BadCase{"length_overflow", "PUT / HTTP/1.1\r\nContent-Length: 99999999999999999999999\r\n\r\n", 400},
        BadCase{"conflicting_lengths", "PUT / HTTP/1.1\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n", 400},
        BadCase{"chunked", "PUT / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n", 501},
        BadCase{"bad_json", "PUT / HTTP/1.1\r\nContent-Length: 5\r\n\r\n{\"a\":", 400}),
    [](const auto& info) { return std::string(info.param.name); });

TEST(RequestParser, ExpectContinueIsReportedOnce) {
    RequestParser p;
    ASSERT_EQ(p.feed("PUT / HTTP/1.1\r\nExpect: 100-continue\r\nContent-Length: 2\r\n\r\n"), State::NeedMore);
    EXPECT_TRUE(p.take_continue_request());
    EXPECT_FALSE(p.take_continue_request());
    EXPECT_EQ(p.feed("{}"), State::Complete);
}

TEST(ResponseHead, ParsesStatusAndHeaders) {
    auto h = parse_response_head("HTTP/1.1 404 Not Found\r\nContent-Length: 3\r\n\r\n");
    ASSERT_TRUE(h) << h.error().message();
    EXPECT_EQ(h->status, 404);
    EXPECT_EQ(h->headers.at("content-length"), "3");
    EXPECT_TRUE(parse_response_head("HTTP/1.1 204\r\n\r\n"));
    EXPECT_FALSE(parse_response_head("HTTP/1.1 2x4 OK\r\n\r\n"));
    EXPECT_FALSE(parse_response_head("SSH-2.0-OpenSSH\r\n\r\n"));
}

TEST(Serialize, AddsLengthAndTypeButNotFor204) {
    std::string s = serialize(Response::error(404, "nope"), false);
    EXPECT_EQ(
        s,
        "HTTP/1.1 404 Not Found\r\nContent-Type: application/json\r\nContent-Length: 16\r\n\r\n{\"error\":\"nope\"}");
    EXPECT_EQ(serialize(Response::no_content(), true), "HTTP/1.1 204 No Content\r\nConnection: close\r\n\r\n");
}

}  // namespace
}  // namespace kvmkit::http
