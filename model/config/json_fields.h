// Strict JSON field reading shared by the model and training configs.
#pragma once

#include <set>
#include <string>
#include <type_traits>

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
  [[noreturn]] static void bad(const std::string& field, const nlohmann::json& v, const char* want) {
    throw ConfigError("config field '" + field + "' = " + v.dump() + ": must be " + want);
  }
  const nlohmann::json& j_;
  std::string prefix_;
  std::set<std::string> seen_;
};


}  // namespace smx
