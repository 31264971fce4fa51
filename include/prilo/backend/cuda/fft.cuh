// Batched 2-D real FFTs with cuFFT: RAII plans cached by batch size, and gpu::Fourier2d, the
// device counterpart of prilo::Fourier2d (same image and spectrum layouts).
#pragma once

#include "config.cuh"

#include <cufft.h>

#include <complex>
#include <cstdint>
#include <limits>
#include <map>
#include <memory>
#include <mutex>
#include <type_traits>
#include <utility>

#include "../../operators/fourier.hpp"
#include "device_matrix.cuh"
#include "error.cuh"
#include "executor.cuh"

namespace prilo::gpu {

/// Owns a cufftHandle. Move-only.
class FftPlan {
 public:
  FftPlan() = default;
  FftPlan(const FftPlan&) = delete;
  FftPlan& operator=(const FftPlan&) = delete;
  FftPlan(FftPlan&& o) noexcept : h_(std::exchange(o.h_, 0)), valid_(std::exchange(o.valid_, false)) {}
  FftPlan& operator=(FftPlan&& o) noexcept {
    if (this != &o) {
      reset();
      h_ = std::exchange(o.h_, 0);
      valid_ = std::exchange(o.valid_, false);
    }
    return *this;
  }
  ~FftPlan() { reset(); }

  /// A batched 2-D plan on h×w row-major images stored contiguously (the image at column j
  /// starts at j·h·w; its half spectrum, h×(w/2+1), at j·h·(w/2+1)).
  static FftPlan many_2d(int h, int w, cufftType type, int batch) {
    FftPlan p;
    int n[2] = {h, w};
    const int real_dist = h * w, half_dist = h * (w / 2 + 1);
    const bool forward = type == CUFFT_R2C || type == CUFFT_D2Z;
    const int idist = forward ? real_dist : half_dist, odist = forward ? half_dist : real_dist;
    PRILO_CUFFT_CHECK(cufftCreate(&p.h_));
    p.valid_ = true;  // from here on the destructor releases the handle, also when planning fails
    std::size_t work = 0;
    PRILO_CUFFT_CHECK(cufftMakePlanMany(p.h_, 2, n, nullptr, 1, idist, nullptr, 1, odist, type, batch, &work));
    return p;
  }

  cufftHandle get() const { return h_; }
  bool valid() const { return valid_; }
  void set_stream(cudaStream_t s) const { PRILO_CUFFT_CHECK(cufftSetStream(h_, s)); }

 private:
  void reset() noexcept {
    if (valid_) (void)cufftDestroy(h_);
    valid_ = false;
    h_ = 0;
  }
  cufftHandle h_ = 0;
  bool valid_ = false;
};

/// Forward (real → half spectrum) and backward (half spectrum → real) plans for h×w images,
/// created on first use for each batch size and kept. Thread-safe lookup; a plan must not be
/// executed concurrently from two host threads on different streams.
template <class T>
class FftPlanCache {
  static_assert(std::is_same_v<T, float> || std::is_same_v<T, double>, "FftPlanCache: float or double");

 public:
  static constexpr cufftType forward_type = std::is_same_v<T, float> ? CUFFT_R2C : CUFFT_D2Z;
  static constexpr cufftType backward_type = std::is_same_v<T, float> ? CUFFT_C2R : CUFFT_Z2D;

  FftPlanCache(int h, int w) : h_(h), w_(w) {}

  const FftPlan& forward(int batch) { return get(forward_, forward_type, batch); }
  const FftPlan& backward(int batch) { return get(backward_, backward_type, batch); }
  std::size_t size() const {
    std::lock_guard lock(mutex_);
    return forward_.size() + backward_.size();
  }

 private:
  const FftPlan& get(std::map<int, FftPlan>& plans, cufftType type, int batch) {
    std::lock_guard lock(mutex_);
    auto it = plans.find(batch);
    if (it == plans.end()) it = plans.emplace(batch, FftPlan::many_2d(h_, w_, type, batch)).first;
    return it->second;
  }
  int h_, w_;
  mutable std::mutex mutex_;
  std::map<int, FftPlan> forward_, backward_;
};

/// The 2-D DFT of h×w real images on the GPU. Images are stored row-major in a column (pixel
/// (r, c) at r·w + c), half spectra as h×(w/2+1) row-major ((k1, k2) at k1·(w/2+1) + k2) —
/// the layouts of prilo::Fourier2d. forward_half/backward_half are unscaled, like the CPU's.
/// Copies share the plan cache.
template <class T>
class Fourier2d {
 public:
  using scalar = T;
  using C = std::complex<T>;

  Fourier2d(int h, int w, FourierScaling scaling = FourierScaling::unitary, CudaExecutor ex = {})
      : h_(h), w_(w), scaling_(scaling), plans_(make_plans(h, w)), ex_(std::move(ex)) {}
  /// Same geometry and scaling as a CPU operator.
  explicit Fourier2d(const prilo::Fourier2d<T>& cpu, CudaExecutor ex = {})
      : Fourier2d(cpu.height(), cpu.width(), cpu.scaling(), std::move(ex)) {}

  /// The executor the operator's loss runs on (its stream and cuBLAS handle).
  CudaExecutor executor() const { return ex_; }

  int height() const { return h_; }
  int width() const { return w_; }
  Eigen::Index input_size() const { return Eigen::Index(h_) * w_; }
  Eigen::Index output_size() const { return input_size(); }
  Eigen::Index half_size() const { return Eigen::Index(h_) * (w_ / 2 + 1); }
  FourierScaling scaling() const { return scaling_; }
  T scale() const { return scaling_ == FourierScaling::unitary ? T(1) / std::sqrt(T(input_size())) : T(1); }
  FftPlanCache<T>& plans() const { return *plans_; }
  /// One application to a real column: one R2C of h·w points (the FLOP account).
  Flops flops() const { return {0.0, real_fft_flops(double(input_size()))}; }

  /// Half spectra (unscaled DFT) of a batch of real images.
  void forward_half(const DeviceMatrix<T>& x, DeviceMatrix<C>& half, cudaStream_t stream = nullptr) const {
    require_shape(x, input_size(), x.cols(), "gpu::Fourier2d::forward_half input");
    half.resize(half_size(), x.cols());
    if (x.cols() == 0) return;
    const FftPlan& p = plans_->forward(int(x.cols()));
    p.set_stream(stream);
    // cuFFT takes non-const input pointers but does not write to the input of an R2C/D2Z.
    T* in = const_cast<T*>(x.data());
    if constexpr (std::is_same_v<T, float>)
      PRILO_CUFFT_CHECK(cufftExecR2C(p.get(), in, reinterpret_cast<cufftComplex*>(half.data())));
    else
      PRILO_CUFFT_CHECK(cufftExecD2Z(p.get(), in, reinterpret_cast<cufftDoubleComplex*>(half.data())));
  }

  /// Real images from Hermitian half spectra (unscaled inverse DFT; `half` is overwritten).
  void backward_half(DeviceMatrix<C>& half, DeviceMatrix<T>& x, cudaStream_t stream = nullptr) const {
    require_shape(half, half_size(), half.cols(), "gpu::Fourier2d::backward_half input");
    x.resize(input_size(), half.cols());
    if (half.cols() == 0) return;
    const FftPlan& p = plans_->backward(int(half.cols()));
    p.set_stream(stream);
    if constexpr (std::is_same_v<T, float>)
      PRILO_CUFFT_CHECK(cufftExecC2R(p.get(), reinterpret_cast<cufftComplex*>(half.data()), x.data()));
    else
      PRILO_CUFFT_CHECK(cufftExecZ2D(p.get(), reinterpret_cast<cufftDoubleComplex*>(half.data()), x.data()));
  }

 private:
  static std::shared_ptr<FftPlanCache<T>> make_plans(int h, int w) {
    if (h <= 0 || w <= 0) ::prilo::detail::fail("gpu::Fourier2d: image size must be positive, got ", h, "x", w);
    // as on the CPU: pixel and bin indices are ints (cuFFT's plans, the loss's kernels)
    if (std::int64_t(h) * std::int64_t(w) > std::numeric_limits<int>::max())
      ::prilo::detail::fail("gpu::Fourier2d: image size ", h, "x", w, " has more than ",
                            std::numeric_limits<int>::max(), " pixels");
    return std::make_shared<FftPlanCache<T>>(h, w);
  }

  int h_, w_;
  FourierScaling scaling_;
  std::shared_ptr<FftPlanCache<T>> plans_;
  CudaExecutor ex_;
};

}  // namespace prilo::gpu
