// Strict JSON field reading shared by the model and training configs.
#pragma once

#include <cstdint>
#include <limits>
#include <set>
#include <string>
#include <type_traits>
#include <utility>

#include <nlohmann/json.hpp>

#include "model/config/model_config.h"

namespace smx {

// Reads optional fields with type checks, and rejects unknown ones, so that a
// typo ("num_expert") is an error instead of a silently ignored setting.
class FieldReader {
 public:
  FieldReader(const nlohmann::json& j, std::string prefix) : j_(j), prefix_(std::move(prefix)) {
    if (!j_.is_object()) throw ConfigError("config " + (prefix_.empty() ? "" : "field '" + prefix_ + "' ") +
                                           "must be a JSON object, got " + std::string(j_.type_name()));
  }
  template <typename T>
  void read(const char* key, T& out) {
    seen_.insert(key);
    auto it = j_.find(key);
    if (it == j_.end()) return;
    const std::string field = prefix_ + key;
    if constexpr (std::is_same_v<T, bool>) {
      if (!it->is_boolean()) bad(field, *it, "a boolean");
      out = it->template get<bool>();
    } else if constexpr (std::is_integral_v<T>) {
      if (!it->is_number_integer()) bad(field, *it, "an integer");
      // get<T>() would wrap silently: 4294967297 threads is 1, -1 as a seed is 2^64 - 1.
      const bool fits = it->is_number_unsigned()
                            ? it->template get<uint64_t>() <= uint64_t(std::numeric_limits<T>::max())
                            : std::is_signed_v<T> && it->template get<int64_t>() >= int64_t(std::numeric_limits<T>::min());
      if (!fits)
        bad(field, *it, ("an integer in [" + std::to_string(std::numeric_limits<T>::min()) + ", " +
                         std::to_string(std::numeric_limits<T>::max()) + "]").c_str());
      out = it->template get<T>();
    } else if constexpr (std::is_floating_point_v<T>) {
      if (!it->is_number()) bad(field, *it, "a number");
      out = it->template get<T>();
    } else {
      if (!it->is_string()) bad(field, *it, "a string");
      out = it->template get<std::string>();
    }
  }
  template <typename Enum>
  void read_enum(const char* key, Enum& out, Enum (*parse)(const std::string&)) {
    std::string s;
    seen_.insert(key);
    auto it = j_.find(key);
    if (it == j_.end()) return;
    if (!it->is_string()) bad(prefix_ + key, *it, "a string");
    try {
      out = parse(it->template get<std::string>());
    } catch (const ConfigError& e) {
      throw ConfigError("config field '" + prefix_ + key + "': " + e.what());
    }
  }
  void mark(const char* key) { seen_.insert(key); }
  void reject_unknown() const {
    for (auto it = j_.begin(); it != j_.end(); ++it)
      if (!seen_.count(it.key())) throw ConfigError("unknown config field '" + prefix_ + it.key() + "'");
  }

 private:
  [[noreturn]] static void bad(const std::string& field, const nlohmann::json& v, const std::string& want) {
    throw ConfigError("config field '" + field + "' = " + v.dump() + ": must be " + want);
  }
  const nlohmann::json& j_;
  std::string prefix_;
  std::set<std::string> seen_;
};

/// Line and column (both from 1) of byte offset `pos` of `text`.
inline std::pair<size_t, size_t> line_and_column(const std::string& text, size_t pos) {
  size_t line = 1, column = 1;
  for (size_t i = 0; i < pos && i < text.size(); ++i) {
    if (text[i] == '\n') {
      ++line;
      column = 1;
    } else {
      ++column;
    }
  }
  return {line, column};
}

/// Parses JSON text. A syntax error, or a number no double holds (1e999), is a
/// ConfigError naming the line and column and what was expected, in our words
/// rather than the JSON library's ("[json.exception.out_of_range.406] ...").
inline nlohmann::json parse_json_text(const std::string& text) {
  try {
    return nlohmann::json::parse(text);
  } catch (const nlohmann::json::parse_error& e) {
    // e.byte: the position (from 1) of the last character read, where the parser stopped.
    const auto [line, column] = line_and_column(text, e.byte > 0 ? e.byte - 1 : 0);
    const std::string what = e.what();
    const size_t expected = what.find("; expected ");
    const size_t start = e.byte > 12 ? e.byte - 12 : 0;
    std::string near = text.substr(start, std::min<size_t>(e.byte - start, 24));
    for (auto& ch : near)
      if (ch == '\n' || ch == '\r' || ch == '\t') ch = ' ';
    throw ConfigError("not valid JSON at line " + std::to_string(line) + ", column " + std::to_string(column) +
                      (near.empty() ? std::string(" (the text is empty)") : " (after '" + near + "')") +
                      (expected == std::string::npos ? "" : ": expected " + what.substr(expected + 11)));
  } catch (const nlohmann::json::out_of_range& e) {
    // 406 "number overflow parsing '1e999'": find the number to say where it is.
    const std::string what = e.what();
    const size_t open = what.find('\''), close = what.rfind('\'');
    const std::string number = open != std::string::npos && close > open ? what.substr(open + 1, close - open - 1) : "";
    const size_t pos = number.empty() ? std::string::npos : text.find(number);
    std::string where;
    if (pos != std::string::npos) {
      const auto [line, column] = line_and_column(text, pos);
      where = "line " + std::to_string(line) + ", column " + std::to_string(column) + ": ";
    }
    throw ConfigError(where + "the number " + (number.empty() ? "" : number + " ") +
                      "is out of range: expected a number a double can hold (magnitude below 1.8e308)");
  } catch (const nlohmann::json::exception&) {
    throw ConfigError("not valid JSON");
  }
}

}  // namespace smx
