// DeviceMatrix<T>: a move-only, column-major batch in device memory (cudaMalloc, never managed).
#pragma once

#include "config.cuh"

#include <cuda_runtime.h>

#include <complex>
#include <cstddef>
#include <limits>
#include <type_traits>
#include <utility>

#include "../../core.hpp"
#include "error.cuh"

namespace prilo::gpu {

/// rows × cols matrix in device memory, column-major with leading dimension rows (one sample
/// per column, the layout of prilo::Mat). Move-only; the buffer is freed by the destructor.
/// T is float, double, std::complex<float> or std::complex<double> (complex values share the
/// layout of cufftComplex / cufftDoubleComplex). Transfers use the given stream (default: the
/// legacy default stream) and, for downloads, synchronise it before returning.
template <class T>
class DeviceMatrix {
  static_assert(std::is_trivially_copyable_v<T>, "DeviceMatrix holds trivially copyable scalars");

 public:
  using scalar = T;
  using index = Eigen::Index;

  DeviceMatrix() = default;
  DeviceMatrix(index rows, index cols) { resize(rows, cols); }
  /// Uploads a host matrix.
  explicit DeviceMatrix(const Mat<T>& host, cudaStream_t stream = nullptr) { upload(host, stream); }

  DeviceMatrix(const DeviceMatrix&) = delete;
  DeviceMatrix& operator=(const DeviceMatrix&) = delete;
  DeviceMatrix(DeviceMatrix&& o) noexcept
      : data_(std::exchange(o.data_, nullptr)),
        rows_(std::exchange(o.rows_, 0)),
        cols_(std::exchange(o.cols_, 0)),
        capacity_(std::exchange(o.capacity_, 0)) {}
  DeviceMatrix& operator=(DeviceMatrix&& o) noexcept {
    if (this != &o) {
      release();
      data_ = std::exchange(o.data_, nullptr);
      rows_ = std::exchange(o.rows_, 0);
      cols_ = std::exchange(o.cols_, 0);
      capacity_ = std::exchange(o.capacity_, 0);
    }
    return *this;
  }
  ~DeviceMatrix() { release(); }

  index rows() const { return rows_; }
  index cols() const { return cols_; }
  index size() const { return rows_ * cols_; }
  bool empty() const { return size() == 0; }
  std::size_t bytes() const { return std::size_t(size()) * sizeof(T); }
  T* data() { return data_; }
  const T* data() const { return data_; }
  T* col(index j) { return data_ + j * rows_; }
  const T* col(index j) const { return data_ + j * rows_; }

  /// Sets the shape; reallocates only when the buffer is too small (contents are then undefined).
  /// A negative shape, or one whose byte count overflows, is refused (invalid_input).
  void resize(index rows, index cols) {
    if (rows < 0 || cols < 0) ::prilo::detail::fail("DeviceMatrix: negative shape ", rows, "x", cols);
    if (cols > 0 && rows > std::numeric_limits<index>::max() / index(sizeof(T)) / cols)
      ::prilo::detail::fail("DeviceMatrix: shape ", rows, "x", cols, " of ", sizeof(T),
                            "-byte scalars overflows the size in bytes");
    const std::size_t need = std::size_t(rows) * std::size_t(cols);
    if (need > capacity_) {
      release();
      if (need > 0) {
        void* p = nullptr;
        PRILO_CUDA_CHECK(cudaMalloc(&p, need * sizeof(T)));
        data_ = static_cast<T*>(p);
        capacity_ = need;
      }
    }
    rows_ = rows;
    cols_ = cols;
  }

  /// Copies a host matrix (any shape) to the device.
  void upload(const Mat<T>& host, cudaStream_t stream = nullptr) {
    resize(host.rows(), host.cols());
    if (!empty()) PRILO_CUDA_CHECK(cudaMemcpyAsync(data_, host.data(), bytes(), cudaMemcpyHostToDevice, stream));
    PRILO_CUDA_CHECK(cudaStreamSynchronize(stream));  // the host buffer may go away after return
  }
  /// Copies the device matrix into `host` (resized); synchronises the stream.
  void download(Mat<T>& host, cudaStream_t stream = nullptr) const {
    host.resize(rows_, cols_);
    if (!empty()) PRILO_CUDA_CHECK(cudaMemcpyAsync(host.data(), data_, bytes(), cudaMemcpyDeviceToHost, stream));
    PRILO_CUDA_CHECK(cudaStreamSynchronize(stream));
  }
  Mat<T> download(cudaStream_t stream = nullptr) const {
    Mat<T> host;
    download(host, stream);
    return host;
  }

  /// Device-to-device copy of another matrix (resizes).
  void copy_from(const DeviceMatrix& src, cudaStream_t stream = nullptr) {
    if (&src == this) return;
    resize(src.rows(), src.cols());
    if (!empty()) PRILO_CUDA_CHECK(cudaMemcpyAsync(data_, src.data(), bytes(), cudaMemcpyDeviceToDevice, stream));
  }
  DeviceMatrix clone(cudaStream_t stream = nullptr) const {
    DeviceMatrix m;
    m.copy_from(*this, stream);
    return m;
  }

  /// All bytes zero (0.0 for every scalar type).
  void set_zero(cudaStream_t stream = nullptr) {
    if (!empty()) PRILO_CUDA_CHECK(cudaMemsetAsync(data_, 0, bytes(), stream));
  }
  static DeviceMatrix zeros(index rows, index cols, cudaStream_t stream = nullptr) {
    DeviceMatrix m(rows, cols);
    m.set_zero(stream);
    return m;
  }

 private:
  void release() noexcept {
    if (data_) (void)cudaFree(data_);  // never throws from a destructor
    data_ = nullptr;
    rows_ = cols_ = 0;
    capacity_ = 0;
  }

  T* data_ = nullptr;
  index rows_ = 0, cols_ = 0;
  std::size_t capacity_ = 0;
};

template <class T>
using DeviceComplexMatrix = DeviceMatrix<std::complex<T>>;

using ::prilo::require_shape;  // the host overload stays visible next to the device one

/// Throws invalid_input "<what>: expected R×C, got r×c" when a device matrix has the wrong shape.
template <class T>
void require_shape(const DeviceMatrix<T>& m, Eigen::Index rows, Eigen::Index cols, const char* what) {
  if (m.rows() != rows || m.cols() != cols)
    ::prilo::detail::fail(what, ": expected a ", rows, "x", cols, " matrix, got ", m.rows(), "x", m.cols());
}

}  // namespace prilo::gpu
