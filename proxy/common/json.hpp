// Thin helpers over RapidJSON: a writer with a string_view friendly API, and a parser that
// reports errors with their byte offset. One JSON library for the whole proxy.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

#include <rapidjson/document.h>
#include <rapidjson/stringbuffer.h>
#include <rapidjson/writer.h>

namespace zonegate::json {

class Writer {
 public:
  Writer() : writer_(buffer_) {}
  void start_object() { writer_.StartObject(); }
  void end_object() { writer_.EndObject(); }
  void start_array() { writer_.StartArray(); }
  void end_array() { writer_.EndArray(); }
  void key(std::string_view k) {
    writer_.Key(k.data(), static_cast<rapidjson::SizeType>(k.size()));
  }
  void string(std::string_view s) {
    writer_.String(s.data(), static_cast<rapidjson::SizeType>(s.size()));
  }
  void int64(int64_t v) { writer_.Int64(v); }
  void uint64(uint64_t v) { writer_.Uint64(v); }
  void number(double v) { writer_.Double(v); }
  void boolean(bool v) { writer_.Bool(v); }
  void null() { writer_.Null(); }
  // Inserts already serialized JSON (e.g. a value Postgres returned) verbatim.
  void raw(std::string_view json) {
    writer_.RawValue(json.data(), json.size(), rapidjson::kObjectType);
  }
  void field(std::string_view k, std::string_view v) {
    key(k);
    string(v);
  }
  // Without this overload a string literal would pick the bool one.
  void field(std::string_view k, const char* v) {
    key(k);
    string(v);
  }
  void field(std::string_view k, const std::string& v) {
    key(k);
    string(v);
  }
  void field(std::string_view k, int64_t v) {
    key(k);
    int64(v);
  }
  void field(std::string_view k, bool v) {
    key(k);
    boolean(v);
  }
  std::string take() { return std::string(buffer_.GetString(), buffer_.GetSize()); }

 private:
  rapidjson::StringBuffer buffer_;
  rapidjson::Writer<rapidjson::StringBuffer> writer_;
};

// Parses text into doc. On failure returns false and sets error to "<reason> at byte N".
bool parse(std::string_view text, rapidjson::Document& doc, std::string& error);

// Checks a parsed document for what parsers disagree on (RFC 8259 §4 leaves duplicate member
// names undefined: RapidJSON's FindMember reads the first, Postgres jsonb keeps the last) and
// for NUL in any string, member names included (libpq and C strings cut there). Walks every
// level iteratively, so a deeply nested document cannot exhaust the stack. Returns false with
// "duplicate member name" or "NUL character in a string".
bool check_unambiguous(const rapidjson::Value& root, std::string& problem);

// Current UTC time as 2026-01-02T03:04:05.678Z.
std::string iso8601_now_ms();
// The same, in a per-thread buffer valid until the thread's next call; the date and time part is
// formatted once per second.
std::string_view iso8601_now_ms_view();
// The time `ms` milliseconds after the Unix epoch in that form, in the same per-thread buffer.
std::string_view iso8601_ms_view(int64_t ms);
// Milliseconds since the Unix epoch, now.
int64_t now_unix_ms();

}  // namespace zonegate::json
