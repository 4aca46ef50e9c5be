#include "model/inspect/runtime.h"

#include <cstdio>
#include <fstream>
#include <thread>

#include <torch/torch.h>

#if defined(SMX_WITH_CUDA)
#include <ATen/cuda/CUDAContext.h>
#endif

#include "model/config/cost.h"
#include "model/config/train_config.h"

namespace smx::inspect {

std::string default_device() { return torch::cuda::is_available() ? "cuda" : "cpu"; }

std::string libtorch_version() {
  return std::to_string(TORCH_VERSION_MAJOR) + "." + std::to_string(TORCH_VERSION_MINOR) + "." +
         std::to_string(TORCH_VERSION_PATCH);
}

std::string runtime_description() {
  return "LibTorch " + libtorch_version() + ", CUDA " + (default_device() == "cuda" ? "available" : "not available");
}

namespace {

// The processor's name as /proc/cpuinfo gives it ("model name"), or empty.
std::string cpu_name() {
  std::ifstream in("/proc/cpuinfo");
  std::string line;
  while (std::getline(in, line)) {
    if (line.rfind("model name", 0) != 0) continue;
    const auto colon = line.find(':');
    if (colon == std::string::npos) break;
    std::string name = line.substr(colon + 1);
    const auto first = name.find_first_not_of(" \t");
    return first == std::string::npos ? std::string() : name.substr(first);
  }
  return {};
}

int cuda_devices() { return torch::cuda::is_available() ? static_cast<int>(torch::cuda::device_count()) : 0; }

std::string count_text(int n) {
  return n == 0 ? "no CUDA device" : n == 1 ? "1 CUDA device (cuda:0)" : std::to_string(n) + " CUDA devices (cuda:0 .. cuda:" + std::to_string(n - 1) + ")";
}

}  // namespace

std::vector<DeviceInfo> list_devices() {
  std::vector<DeviceInfo> devices;
  const unsigned threads = std::thread::hardware_concurrency();
  std::string cpu = cpu_name();
  if (threads > 0) cpu += (cpu.empty() ? "" : ", ") + std::to_string(threads) + " threads";
  devices.push_back({"cpu", cpu, physical_memory_bytes()});
  const int n = cuda_devices();
  for (int i = 0; i < n; ++i) {
    DeviceInfo d;
    d.id = "cuda:" + std::to_string(i);
#if defined(SMX_WITH_CUDA)
    if (const auto* p = at::cuda::getDeviceProperties(i)) {
      d.name = p->name;
      d.memory_bytes = static_cast<double>(p->totalGlobalMem);
    }
#endif
    devices.push_back(d);
  }
  return devices;
}

std::string describe_device(const DeviceInfo& device) {
  std::string line = device.id == "cpu" ? "CPU" : device.id;
  if (!device.name.empty()) line += " · " + device.name;
  if (device.memory_bytes > 0) {
    char buf[32];
    std::snprintf(buf, sizeof buf, " · %.1f GiB", device.memory_bytes / double(1ull << 30));
    line += buf;
  }
  return line;
}

std::string resolve_device(const std::string& field) {
  const int n = cuda_devices();
  if (field == "cpu") return "cpu";
  if (field == "auto") return n > 0 ? "cuda:0" : "cpu";
  int index = -1;
  if (field == "cuda") {
    index = 0;
  } else if (field.rfind("cuda:", 0) == 0 && field.size() > 5 && field.size() <= 8 &&
             field.find_first_not_of("0123456789", 5) == std::string::npos) {
    index = std::stoi(field.substr(5));
  } else {
    throw ConfigError("device '" + field + "': give auto, cpu, cuda or cuda:N (a GPU's index)");
  }
  if (index >= n)
    throw ConfigError("device '" + field + "' is not on this machine: it has " + count_text(n) +
                      (n == 0 ? " (" + runtime_description() + "); choose cpu or auto" : ""));
  return "cuda:" + std::to_string(index);
}

}  // namespace smx::inspect
