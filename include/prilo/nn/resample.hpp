// Feature-map resampling (Upsample2d, nearest and bilinear) and Reshape, a view change.
#pragma once

#include <algorithm>
#include <cmath>
#include <limits>
#include <vector>

#include "../core.hpp"
#include "parameter.hpp"
#include "shape.hpp"

namespace prilo::nn {

enum class Interpolation { nearest, bilinear };

/// Upsampling of C feature maps of H×W pixels by an integer factor s ≥ 1 to sH×sW, with
/// PyTorch's nn.Upsample(scale_factor=s) semantics:
///  * nearest: output pixel (h, w) copies input pixel (⌊h/s⌋, ⌊w/s⌋);
///  * bilinear, align_corners=False: along each axis the output index o reads the source
///    coordinate t = (o + ½)/s − ½, clamped below at 0, and interpolates linearly between
///    ⌊t⌋ and min(⌊t⌋ + 1, n − 1) (the border pixels repeat).
/// Both are linear maps without weights; the VJP is their transpose (a scatter-add).
template <class T>
class Upsample2d {
 public:
  using scalar = T;

  Upsample2d() = default;
  Upsample2d(Shape3 in, int scale, Interpolation mode = Interpolation::nearest) : in_(in), scale_(scale), mode_(mode) {
    require_positive(in, "Upsample2d");
    if (scale < 1) detail::fail("Upsample2d: scale factor must be at least 1, got ", scale);
    if (std::max(in.height, in.width) > std::numeric_limits<Eigen::Index>::max() / scale)
      detail::fail("Upsample2d: a ", in.height, "x", in.width, " input scaled by ", scale,
                   " exceeds the index type's range");
    out_ = {in.channels, in.height * scale, in.width * scale};
    require_positive(out_, "Upsample2d output");
    rows_ = axis(in.height);
    cols_ = axis(in.width);
  }

  Shape3 input_shape() const { return in_; }
  Shape3 output_shape() const { return out_; }
  int scale() const { return scale_; }
  Interpolation mode() const { return mode_; }
  /// No products (prilo/flops.hpp counts matrix products): Sequential::flops adds 0 here, not
  /// the dense count it assumes for a module that does not say.
  double flops_per_sample() const { return 0; }
  Eigen::Index output_size(Eigen::Index in) const {
    if (in != in_.size())
      detail::fail("Upsample2d: expects ", in_.size(), " inputs (", in_.channels, "x", in_.height, "x", in_.width,
                   "), got ", in);
    return out_.size();
  }

  void forward(const Mat<T>& x, Mat<T>& y) const {
    check(x, in_, "Upsample2d input");
    y.resize(out_.size(), x.cols());
    const Eigen::Index H = in_.height, W = in_.width, OH = out_.height, OW = out_.width;
    for (Eigen::Index j = 0; j < x.cols(); ++j)
      for (Eigen::Index c = 0; c < in_.channels; ++c) {
        const T* src = x.col(j).data() + c * H * W;
        T* dst = y.col(j).data() + c * OH * OW;
        for (Eigen::Index oh = 0; oh < OH; ++oh) {
          const Tap& r = rows_[std::size_t(oh)];
          const T* r0 = src + r.i0 * W;
          const T* r1 = src + r.i1 * W;
          for (Eigen::Index ow = 0; ow < OW; ++ow) {
            const Tap& q = cols_[std::size_t(ow)];
            dst[oh * OW + ow] = r.w0 * (q.w0 * r0[q.i0] + q.w1 * r0[q.i1]) + r.w1 * (q.w0 * r1[q.i0] + q.w1 * r1[q.i1]);
          }
        }
      }
  }

  /// gx = Uᵀ gy: each output cotangent goes back to the input pixels it was read from.
  void backward_input(const Mat<T>&, const Mat<T>&, const Mat<T>& gy, Mat<T>& gx, Mat<T>&) const {
    check(gy, out_, "Upsample2d output cotangent");
    gx.setZero(in_.size(), gy.cols());
    const Eigen::Index H = in_.height, W = in_.width, OH = out_.height, OW = out_.width;
    for (Eigen::Index j = 0; j < gy.cols(); ++j)
      for (Eigen::Index c = 0; c < in_.channels; ++c) {
        T* dst = gx.col(j).data() + c * H * W;
        const T* src = gy.col(j).data() + c * OH * OW;
        for (Eigen::Index oh = 0; oh < OH; ++oh) {
          const Tap& r = rows_[std::size_t(oh)];
          T* r0 = dst + r.i0 * W;
          T* r1 = dst + r.i1 * W;
          for (Eigen::Index ow = 0; ow < OW; ++ow) {
            const Tap& q = cols_[std::size_t(ow)];
            const T g = src[oh * OW + ow];
            r0[q.i0] += r.w0 * q.w0 * g;
            r0[q.i1] += r.w0 * q.w1 * g;
            r1[q.i0] += r.w1 * q.w0 * g;
            r1[q.i1] += r.w1 * q.w1 * g;
          }
        }
      }
  }
  void backward(const Mat<T>& x, const Mat<T>& y, const Mat<T>& gy, Mat<T>* gx, bool) {
    Mat<T> unused;
    if (gx) backward_input(x, y, gy, *gx, unused);
  }
  ParamList<T> parameters() { return {}; }
  void zero_grad() {}

 private:
  /// Output index o along an axis reads w0·in[i0] + w1·in[i1].
  struct Tap {
    Eigen::Index i0 = 0, i1 = 0;
    T w0 = 1, w1 = 0;
  };
  std::vector<Tap> axis(Eigen::Index n) const {
    std::vector<Tap> taps(std::size_t(n * scale_));
    for (Eigen::Index o = 0; o < n * scale_; ++o) {
      Tap& t = taps[std::size_t(o)];
      if (mode_ == Interpolation::nearest) {
        t.i0 = t.i1 = o / scale_;
      } else {
        const double src = std::max(0.0, (double(o) + 0.5) / double(scale_) - 0.5);
        t.i0 = std::min(Eigen::Index(src), n - 1);
        t.i1 = std::min(t.i0 + 1, n - 1);
        t.w1 = T(src - double(t.i0));
        t.w0 = T(1) - t.w1;
      }
    }
    return taps;
  }
  static void check(const Mat<T>& m, const Shape3& s, const char* what) {
    if (s.size() == 0) detail::fail("Upsample2d: the layer was default-constructed (no shape)");
    require_shape(m, s.size(), m.cols(), what);
  }

  Shape3 in_, out_;
  int scale_ = 1;
  Interpolation mode_ = Interpolation::nearest;
  std::vector<Tap> rows_, cols_;
};

/// A reshape between a flat vector of size C·H·W and C feature maps of H×W (or between any two
/// shapes of one size). With one sample per column in (c, h, w) order the data do not move:
/// forward and its VJP copy, and the layer checks the size and carries the shape that a
/// convolution after it is built from (output_shape()).
template <class T>
class Reshape {
 public:
  using scalar = T;

  Reshape() = default;
  explicit Reshape(Shape3 out) : out_(out) { require_positive(out, "Reshape"); }
  /// From a flat input of `in` values: fails unless in = out.size().
  Reshape(Eigen::Index in, Shape3 out) : Reshape(out) { output_size(in); }

  Shape3 output_shape() const { return out_; }
  /// No products (prilo/flops.hpp counts matrix products): Sequential::flops adds 0 here, not
  /// the dense count it assumes for a module that does not say.
  double flops_per_sample() const { return 0; }
  Eigen::Index output_size(Eigen::Index in) const {
    if (in != out_.size())
      detail::fail("Reshape: ", in, " inputs cannot form ", out_.channels, "x", out_.height, "x", out_.width, " = ",
                   out_.size(), " values");
    return in;
  }
  void forward(const Mat<T>& x, Mat<T>& y) const {
    output_size(x.rows());
    y = x;
  }
  void backward_input(const Mat<T>&, const Mat<T>&, const Mat<T>& gy, Mat<T>& gx, Mat<T>&) const {
    output_size(gy.rows());
    gx = gy;
  }
  void backward(const Mat<T>& x, const Mat<T>& y, const Mat<T>& gy, Mat<T>* gx, bool) {
    Mat<T> unused;
    if (gx) backward_input(x, y, gy, *gx, unused);
  }
  ParamList<T> parameters() { return {}; }
  void zero_grad() {}

 private:
  Shape3 out_;
};

}  // namespace prilo::nn
