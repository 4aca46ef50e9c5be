// The key of a parameter in a LibTorch optimizer's state map, which differs by
// version: a string of the parameter's TensorImpl address in LibTorch 1.x (what
// c10::guts::to_string wrote), the TensorImpl pointer itself in 2.x (where
// c10::guts::to_string is gone). Key is the map's key_type.
#pragma once

#include <sstream>
#include <string>
#include <type_traits>

#include <torch/torch.h>

namespace smx {

template <class Key>
Key optimizer_state_key(const torch::Tensor& p) {
  if constexpr (std::is_same_v<Key, std::string>) {
    std::ostringstream s;
    s << p.unsafeGetTensorImpl();
    return s.str();
  } else {
    return static_cast<Key>(p.unsafeGetTensorImpl());
  }
}

}  // namespace smx
