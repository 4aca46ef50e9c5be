#include "model/dist/dist_options.h"

#include <cstdlib>

#include "model/config/model_config.h"

namespace smx::dist {

namespace {

int integer_variable(const char* name, int fallback, long lo, long hi) {
  const char* v = std::getenv(name);
  if (!v || !*v) return fallback;
  char* end = nullptr;
  const long x = std::strtol(v, &end, 10);
  if (*end != '\0' || x < lo || x > hi)
    throw ConfigError(std::string("environment variable ") + name + "='" + v + "': expected a whole number in " +
                      std::to_string(lo) + ".." + std::to_string(hi));
  return static_cast<int>(x);
}

}  // namespace

DistOptions dist_options_from_environment(DistOptions o) {
  o.world_size = integer_variable("WORLD_SIZE", o.world_size, 1, 1 << 20);
  o.rank = integer_variable("RANK", o.rank, 0, (1 << 20) - 1);
  o.local_world_size = integer_variable("LOCAL_WORLD_SIZE", o.local_world_size, 1, 1 << 20);
  o.master_port = integer_variable("MASTER_PORT", o.master_port, 1, 65535);
  if (const char* a = std::getenv("MASTER_ADDR"); a && *a) o.master_addr = a;
  return o;
}

void validate(const DistOptions& o) {
  if (o.world_size < 1) throw ConfigError("--world-size " + std::to_string(o.world_size) + ": give at least 1");
  if (o.rank < 0 || o.rank >= o.world_size)
    throw ConfigError("--rank " + std::to_string(o.rank) + ": a run of " + std::to_string(o.world_size) +
                      " processes has ranks 0.." + std::to_string(o.world_size - 1));
  if (o.master_port < 1 || o.master_port > 65535)
    throw ConfigError("--master-port " + std::to_string(o.master_port) + ": give a port in 1..65535");
  if (o.master_addr.empty()) throw ConfigError("--master-addr: give the host name or address of rank 0's machine");
  if (o.backend != "auto" && o.backend != "gloo" && o.backend != "nccl")
    throw ConfigError("--backend '" + o.backend + "': give gloo, nccl or auto");
  if (!(o.timeout_seconds >= 1 && o.timeout_seconds <= 86400))
    throw ConfigError("--dist-timeout: give 1 to 86400 seconds");
  if (o.expert_parallel < 1 || o.world_size % o.expert_parallel != 0)
    throw ConfigError("--expert-parallel " + std::to_string(o.expert_parallel) + ": give a divisor of the " +
                      std::to_string(o.world_size) + " ranks (experts are spread over groups of that many ranks)");
  if (o.local_world_size < 1 || o.local_world_size > o.world_size)
    throw ConfigError("LOCAL_WORLD_SIZE " + std::to_string(o.local_world_size) + ": give 1.." + std::to_string(o.world_size));
}

}  // namespace smx::dist
