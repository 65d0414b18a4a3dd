// RapidJSON helpers; see json.hpp.
#include "common/json.hpp"

#include <rapidjson/error/en.h>

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <ctime>
#include <cstring>
#include <string_view>
#include <vector>

namespace zonegate::json {

bool parse(std::string_view text, rapidjson::Document& doc, std::string& error) {
  // Trailing garbage is an error ("root not singular"); iterative parsing keeps a hostile deeply
  // nested document from overflowing the stack.
  doc.Parse<rapidjson::kParseIterativeFlag>(text.data(), text.size());
  if (!doc.HasParseError()) return true;
  error = std::string(rapidjson::GetParseError_En(doc.GetParseError())) + " at byte " +
          std::to_string(doc.GetErrorOffset());
  return false;
}

bool check_unambiguous(const rapidjson::Value& root, std::string& problem) {
  auto has_nul = [](const rapidjson::Value& s) {
    return std::memchr(s.GetString(), '\0', s.GetStringLength()) != nullptr;
  };
  std::vector<const rapidjson::Value*> pending{&root};
  std::vector<std::string_view> names;
  while (!pending.empty()) {
    const rapidjson::Value* v = pending.back();
    pending.pop_back();
    if (v->IsString()) {
      if (has_nul(*v)) {
        problem = "NUL character in a string";
        return false;
      }
    } else if (v->IsArray()) {
      for (const rapidjson::Value& item : v->GetArray())
        pending.push_back(&item);
    } else if (v->IsObject()) {
      names.clear();
      for (const auto& m : v->GetObject()) {
        if (has_nul(m.name)) {
          problem = "NUL character in a string";
          return false;
        }
        names.emplace_back(m.name.GetString(), m.name.GetStringLength());
        pending.push_back(&m.value);
      }
      // Sorting makes the duplicate test O(n log n): an object of thousands of members stays cheap.
      std::sort(names.begin(), names.end());
      if (std::adjacent_find(names.begin(), names.end()) != names.end()) {
        problem = "duplicate member name";
        return false;
      }
    }
  }
  return true;
}

std::string_view iso8601_ms_view(int64_t ms) {
  thread_local char buf[80];
  thread_local int64_t formatted_sec = INT64_MIN;
  // Floor division: times before 1970 keep their second and a millisecond in 0..999.
  int64_t sec = ms / 1000, frac = ms % 1000;
  if (frac < 0) {
    frac += 1000;
    sec -= 1;
  }
  if (sec != formatted_sec) {
    const auto secs = static_cast<std::time_t>(sec);
    std::tm tm{};
    gmtime_r(&secs, &tm);
    std::snprintf(buf, sizeof buf, "%04d-%02d-%02dT%02d:%02d:%02d.000Z", tm.tm_year + 1900,
                  tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec);
    formatted_sec = sec;
  }
  buf[20] = static_cast<char>('0' + frac / 100);
  buf[21] = static_cast<char>('0' + frac / 10 % 10);
  buf[22] = static_cast<char>('0' + frac % 10);
  return {buf, 24};
}

int64_t now_unix_ms() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

std::string_view iso8601_now_ms_view() {
  return iso8601_ms_view(now_unix_ms());
}

std::string iso8601_now_ms() {
  return std::string(iso8601_now_ms_view());
}

}  // namespace zonegate::json
