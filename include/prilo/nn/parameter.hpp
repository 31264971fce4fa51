// Named views of a module's tensors: trainable parameters (with gradients) and saved buffers.
#pragma once

#include <cmath>
#include <filesystem>
#include <string>
#include <utility>
#include <vector>

#include "../core.hpp"

namespace prilo::nn {

/// A module that can pack a snapshot of its weights for its products (nn::Dense on the CPU,
/// float, with oneDNN; Sequential and Carry pass it on).
template <class M>
concept PacksWeights = requires(M& m) {
  m.pack_weights();
};

/// A parameter tensor and its gradient buffer, both owned by a layer. Optimisers keep their
/// state by the parameter's position in a model's parameter list, never by address. `name`
/// is unique within the list that holds it: a layer's own names ("weight", "bias"), qualified
/// by containers ("0.weight" in a Sequential, "decoder.0.weight" in the VAE); weights files
/// store tensors under these names. The maps point into the owner: moving the owner
/// invalidates them.
template <class T>
struct ParamRef {
  std::string name;
  Eigen::Map<Mat<T>> value;
  Eigen::Map<Mat<T>> grad;
};

template <class T>
using ParamList = std::vector<ParamRef<T>>;

/// The parameter list of a layer with a weight matrix and a bias vector (Dense, Conv2d,
/// ConvTranspose2d, Modulate): "weight" and "bias" with their gradient buffers.
template <class T>
ParamList<T> weight_and_bias(Mat<T>& w, Mat<T>& gw, Vec<T>& b, Vec<T>& gb) {
  ParamList<T> p;
  p.push_back({"weight", Eigen::Map<Mat<T>>(w.data(), w.rows(), w.cols()),
               Eigen::Map<Mat<T>>(gw.data(), gw.rows(), gw.cols())});
  p.push_back({"bias", Eigen::Map<Mat<T>>(b.data(), b.rows(), 1), Eigen::Map<Mat<T>>(gb.data(), gb.rows(), 1)});
  return p;
}

/// A saved, non-trainable tensor of a layer (e.g. batch-norm running statistics): no
/// gradient, never seen by optimisers, but saved and loaded by name with the parameters.
template <class T>
struct BufferRef {
  std::string name;
  Eigen::Map<Mat<T>> value;
};

template <class T>
using BufferList = std::vector<BufferRef<T>>;

/// m.buffers(), or an empty list for a module or model without saved non-trainable tensors
/// (buffers() is optional: the current layers have none).
template <class M>
BufferList<typename M::scalar> buffers_of(M& m) {
  if constexpr (requires { m.buffers(); })
    return m.buffers();
  else
    return {};
}

/// A copy of the values of a parameter list, to return to: a training loop's best epoch.
template <class T>
class ParamSnapshot {
 public:
  /// Copies the values of `ps` (replacing an earlier copy).
  void take(const ParamList<T>& ps) {
    values_.clear();
    for (const auto& p : ps) values_.emplace_back(p.value);
  }
  bool empty() const { return values_.empty(); }
  /// Writes the copy back into `ps` (the same list, or one of a model of the same shapes); does
  /// nothing when no copy was taken.
  void restore(ParamList<T>& ps) const {
    if (values_.empty()) return;
    if (ps.size() != values_.size())
      detail::fail("ParamSnapshot: ", values_.size(), " tensors kept, the list has ", ps.size());
    for (std::size_t k = 0; k < ps.size(); ++k) {
      require_shape(ps[k].value, values_[k].rows(), values_[k].cols(), ("ParamSnapshot: " + ps[k].name).c_str());
      ps[k].value = values_[k];
    }
  }

 private:
  std::vector<Mat<T>> values_;
};

/// The name of the first tensor of `ps` that holds NaN or infinite values ("" when all are
/// finite): a trainer checks its model after each optimiser step, since a loss can stay finite
/// (a saturated sigmoid) while a huge learning rate has made the weights infinite.
template <class T>
std::string first_nonfinite_parameter(const ParamList<T>& ps) {
  for (const auto& p : ps)
    if (!p.value.allFinite()) return p.name;
  return {};
}

/// Fails with invalid_input "<trainer>: training diverged: <what> X holds NaN or infinite
/// values at epoch e, batch b (try a smaller <rate>)<files>": the trainers' one wording of it;
/// `files` says what the output holds.
[[noreturn]] inline void fail_diverged(const char* trainer, const char* what, const std::string& tensor, int e, long b,
                                       const char* rate, const std::string& files) {
  detail::fail(trainer, ": training diverged: ", what, " ", tensor, " holds NaN or infinite values at epoch ", e,
               ", batch ", b, " (try a smaller ", rate, ")", files);
}

/// fail_diverged for the first tensor of `ps` that is not finite, if there is one. `files()`
/// says what the output holds; it is called only then (it may first put a kept epoch's weights
/// back, as BestEpoch::check_parameters does). `what` names the tensors ("parameter", "critic
/// parameter") and `rate` the learning rate to lower.
template <class T, class Files>
void check_parameters_finite(const char* trainer, const ParamList<T>& ps, int e, long b, Files&& files,
                             const char* what = "parameter", const char* rate = "learning rate") {
  if (const std::string bad = first_nonfinite_parameter(ps); !bad.empty())
    fail_diverged(trainer, what, bad, e, b, rate, std::string(files()));
}

/// The weights of a trainer's best epoch so far (by its own validation), for the trainers that
/// keep that epoch (train_li_encoder, train_placement_scorer): end_epoch keeps the weights and
/// saves them to `output` (if one is set) whenever an epoch improves; restore puts them back,
/// when training ends, is interrupted, or diverges (check_loss, check_parameters). The model
/// starts as epoch 0: its initial weights are kept on construction, so a run that diverges or
/// is interrupted before any epoch improved gives them back (it left the first epoch's partly
/// trained, or NaN, weights).
template <class T>
class BestEpoch {
 public:
  BestEpoch(ParamList<T>& params, std::filesystem::path output) : params_(params), output_(std::move(output)) {
    snapshot_.take(params_);
  }

  /// The epoch whose weights are kept (0: none; the model's initial weights stand).
  int epoch() const { return epoch_; }
  /// Ends epoch e: when it improved, keeps its weights and calls save(output) if an output is set.
  template <class Save>
  void end_epoch(int e, bool improved, Save&& save) {
    if (!improved) return;
    epoch_ = e;
    snapshot_.take(params_);
    if (!output_.empty()) save(output_);
  }
  /// Puts the kept weights back (the initial ones when no epoch improved).
  void restore() { snapshot_.restore(params_); }
  /// A loss that is not finite in batch b of epoch e: the kept weights back, then invalid_input
  /// "<trainer>: training diverged in epoch e, batch b: the loss is …", saying what the output
  /// file holds.
  void check_loss(const char* trainer, double loss, int e, long b) {
    if (std::isfinite(loss)) return;
    restore();
    detail::fail(trainer, ": training diverged in epoch ", e, ", batch ", b, ": the loss is ", loss,
                 " (try a smaller learning rate)", output_status());
  }
  /// A tensor of `ps` (the model's parameters, or a critic's) that is not finite after the
  /// optimiser step of batch b in epoch e: the kept weights back, then check_parameters_finite's
  /// error, saying what the output file holds.
  template <class P>
  void check_parameters(const char* trainer, const ParamList<P>& ps, int e, long b, const char* what = "parameter",
                        const char* rate = "learning rate") {
    check_parameters_finite(
        trainer, ps, e, b,
        [&] {
          restore();
          return output_status();
        },
        what, rate);
  }
  /// "; <output> holds epoch k", "; <output> was not written", or "" without an output.
  std::string output_status() const {
    return output_.empty() ? std::string()
           : epoch_ > 0    ? "; " + output_.string() + " holds epoch " + std::to_string(epoch_)
                           : "; " + output_.string() + " was not written";
  }

 private:
  ParamList<T>& params_;
  std::filesystem::path output_;
  ParamSnapshot<T> snapshot_;
  int epoch_ = 0;
};

}  // namespace prilo::nn
