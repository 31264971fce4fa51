// A view of one trainable tensor and its gradient, as optimisers see it.
#pragma once

#include <string>
#include <vector>

#include "../core.hpp"

namespace prilo::nn {

/// A parameter tensor and its gradient buffer, both owned by a layer. Optimisers keep their
/// state by the parameter's position in a model's parameter list, never by address.
template <class T>
struct ParamRef {
  std::string name;
  Eigen::Map<Mat<T>> value;
  Eigen::Map<Mat<T>> grad;
};

template <class T>
using ParamList = std::vector<ParamRef<T>>;

}  // namespace prilo::nn
