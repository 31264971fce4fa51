// Conv2d and ConvTranspose2d: against direct loops, adjointness, VJPs against finite
// differences, shape errors, initialisation and weights files.
#include <doctest/doctest.h>

#include <prilo/io/weights.hpp>
#include <prilo/nn.hpp>
#include <prilo/nn/conv.hpp>
#include <prilo/nn/state_io.hpp>
#include <prilo/testing/checkers.hpp>

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <limits>
#include <string>
#include <thread>
#include <utility>
#include <vector>

// Each test file in its own namespace, so that unity builds can combine them (tests/CMakeLists.txt).
namespace prilo_test_conv {

using namespace prilo;
using namespace prilo::nn;
using Index = Eigen::Index;

namespace {

/// Direct Conv2d, straight from PyTorch's definition, reading the weights by their torch
/// index [c_out, c_in, kh, kw] at the documented storage position.
template <class T, class Act = Identity>
Mat<T> direct_conv(const Mat<T>& x, Shape3 in, const Mat<T>& w, const Vec<T>& b, int k, int s, int p) {
  const Index co_n = w.cols(), ho = (in.height + 2 * p - k) / s + 1, wo = (in.width + 2 * p - k) / s + 1;
  Mat<T> y(co_n * ho * wo, x.cols());
  for (Index n = 0; n < x.cols(); ++n)
    for (Index co = 0; co < co_n; ++co)
      for (Index oh = 0; oh < ho; ++oh)
        for (Index ow = 0; ow < wo; ++ow) {
          double acc = double(b(co));
          for (Index ci = 0; ci < in.channels; ++ci)
            for (int kh = 0; kh < k; ++kh)
              for (int kw = 0; kw < k; ++kw) {
                const Index ih = oh * s - p + kh, iw = ow * s - p + kw;
                if (ih < 0 || ih >= in.height || iw < 0 || iw >= in.width) continue;
                const T wt = w.data()[((co * in.channels + ci) * k + kh) * k + kw];  // [co][ci][kh][kw]
                acc += double(wt) * double(x((ci * in.height + ih) * in.width + iw, n));
              }
          y((co * ho + oh) * wo + ow, n) = Act::value(T(acc));
        }
  return y;
}

/// Direct ConvTranspose2d as PyTorch defines it: every input pixel scatters its kernel
/// (weights [c_in, c_out, kh, kw]) into the output at (ih·s − p + kh, iw·s − p + kw).
template <class T, class Act = Identity>
Mat<T> direct_conv_transpose(const Mat<T>& x, Shape3 in, Index co_n, const Mat<T>& w, const Vec<T>& b, int k, int s,
                             int p, int op) {
  const Index ho = (in.height - 1) * s - 2 * p + k + op, wo = (in.width - 1) * s - 2 * p + k + op;
  Eigen::MatrixXd acc(co_n * ho * wo, x.cols());
  for (Index n = 0; n < x.cols(); ++n)
    for (Index co = 0; co < co_n; ++co) acc.col(n).segment(co * ho * wo, ho * wo).setConstant(double(b(co)));
  for (Index n = 0; n < x.cols(); ++n)
    for (Index ci = 0; ci < in.channels; ++ci)
      for (Index ih = 0; ih < in.height; ++ih)
        for (Index iw = 0; iw < in.width; ++iw)
          for (Index co = 0; co < co_n; ++co)
            for (int kh = 0; kh < k; ++kh)
              for (int kw = 0; kw < k; ++kw) {
                const Index oh = ih * s - p + kh, ow = iw * s - p + kw;
                if (oh < 0 || oh >= ho || ow < 0 || ow >= wo) continue;
                const T wt = w.data()[((ci * co_n + co) * k + kh) * k + kw];  // [ci][co][kh][kw]
                acc((co * ho + oh) * wo + ow, n) += double(wt) * double(x((ci * in.height + ih) * in.width + iw, n));
              }
  Mat<T> y = acc.cast<T>();
  for (Index i = 0; i < y.size(); ++i) y.data()[i] = Act::value(y.data()[i]);
  return y;
}

struct ConvCase {
  Shape3 in;
  Index out_channels;
  int k, s, p, op;
};

// stride 1/2/3, padding 0/1/2, output padding, odd sizes, C_in ≠ C_out, non-square maps
const std::vector<ConvCase> cases = {
    {{1, 5, 5}, 1, 3, 1, 0, 0}, {{2, 7, 6}, 3, 3, 1, 1, 0}, {{3, 9, 7}, 2, 4, 2, 1, 1},
    {{4, 7, 7}, 5, 4, 2, 1, 0}, {{2, 8, 5}, 3, 5, 2, 2, 1}, {{3, 6, 9}, 4, 3, 3, 2, 2},
    {{5, 4, 4}, 2, 2, 2, 0, 1}, {{1, 3, 3}, 2, 5, 1, 2, 0}, {{2, 11, 4}, 3, 1, 2, 0, 1},
};

std::string describe(const ConvCase& c) {
  return std::to_string(c.in.channels) + "x" + std::to_string(c.in.height) + "x" + std::to_string(c.in.width) + " -> " +
         std::to_string(c.out_channels) + " k" + std::to_string(c.k) + " s" + std::to_string(c.s) + " p" +
         std::to_string(c.p) + " op" + std::to_string(c.op);
}

template <class T>
double tolerance() {
  return std::is_same_v<T, float> ? 2e-5 : 1e-12;
}

double rel_diff(const auto& a, const auto& b) {
  return double((a - b).norm()) / (double(b.norm()) + 1e-300);
}

/// Checks the input and weight VJPs of a layer in double through L = ⟨c, layer(x)⟩: central
/// differences for the input (a few directions) and for every parameter tensor, and the
/// const input VJP against the mutating one, bit for bit.
template <class M>
void check_layer_vjps(M& m, Index batch, Rng& rng) {
  using T = double;
  const Mat<T> x = rng.normal_matrix<T>(m.input_size(), batch);
  Mat<T> y;
  m.forward(x, y);
  const Mat<T> c = rng.normal_matrix<T>(y.rows(), y.cols());
  auto loss = [&](const Mat<T>& v) {
    Mat<T> o;
    m.forward(v, o);
    return (o.array() * c.array()).sum();
  };
  auto grad = [&](const Mat<T>& v, Mat<T>& out) {
    Mat<T> o;
    m.forward(v, o);
    m.backward(v, o, c, &out, false);
  };
  const auto r = testing::check_gradient<T>(loss, grad, x, rng, 6, 1e-5, 1e-6);
  INFO("input VJP relative error " << r.max_rel_error);
  CHECK(r.ok);

  Mat<T> gx_full, gx_input, work;
  m.zero_grad();
  m.backward(x, y, c, &gx_full, true);
  std::as_const(m).backward_input(x, y, c, gx_input, work);
  CHECK(gx_input == gx_full);

  for (auto& p : m.parameters()) {
    const Mat<T> w0 = p.value, gw = p.grad;
    CHECK(gw.norm() > 0);
    auto fw = [&](const Mat<T>& w) {
      p.value = w;
      const T l = loss(x);
      p.value = w0;
      return l;
    };
    auto gwf = [&](const Mat<T>&, Mat<T>& out) { out = gw; };
    // eps 1e-5 as for the input: at 1e-6 the rounding alone was 0.47 of the tolerance
    const auto rw = testing::check_gradient<T>(fw, gwf, w0, rng, 6, 1e-5, 1e-6);
    INFO(p.name << " VJP relative error " << rw.max_rel_error);
    CHECK(rw.ok);
    // and a few single entries by central differences
    for (Index i : {Index(0), w0.size() / 2, w0.size() - 1}) {
      Mat<T> wp = w0, wm = w0;
      wp.data()[i] += 1e-6;
      wm.data()[i] -= 1e-6;
      const double fd = (fw(wp) - fw(wm)) / 2e-6;
      INFO(p.name << "[" << i << "]");
      CHECK(std::abs(fd - gw.data()[i]) <= 1e-6 * std::max(1.0, std::abs(fd)));
    }
  }
  // gradients accumulate: a second backward doubles them
  const Mat<T> once = m.parameters()[0].grad;
  m.backward(x, y, c, nullptr, true);
  CHECK(rel_diff(Mat<T>(m.parameters()[0].grad), Mat<T>(2 * once)) < 1e-14);
}

}  // namespace

TEST_CASE_TEMPLATE("Conv2d matches a direct convolution", T, float, double) {
  Rng rng(1);
  for (const auto& cs : cases) {
    INFO(describe(cs));
    Conv2d<T> conv(cs.in, cs.out_channels, cs.k, cs.s, cs.p, rng);
    const Mat<T> x = rng.normal_matrix<T>(cs.in.size(), 5);
    const Mat<T> ref = direct_conv<T>(x, cs.in, conv.weight(), conv.bias(), cs.k, cs.s, cs.p);
    const Shape3 out = conv.output_shape();
    CHECK(out.height == (cs.in.height + 2 * cs.p - cs.k) / cs.s + 1);
    CHECK(conv.output_size(cs.in.size()) == out.size());
    REQUIRE(ref.rows() == out.size());
    for (Index nb : {0, 1, 2, 3, 5}) {  // blocks of samples: any split gives the same result
      conv.set_block_samples(nb);
      Mat<T> y;
      conv.forward(x, y);
      INFO("block " << nb);
      CHECK(rel_diff(y, ref) < tolerance<T>());
    }
    for (ConvAlgorithm a : {ConvAlgorithm::im2col_gemm, ConvAlgorithm::direct}) {  // both CPU computations
      conv.set_algorithm(a);
      Mat<T> y;
      conv.forward(x, y);
      INFO("algorithm " << int(a));
      CHECK(rel_diff(y, ref) < tolerance<T>());
    }
  }
  // fused activations
  const ConvCase cs = cases[3];
  Conv2d<T, LeakyRelu> leaky(cs.in, cs.out_channels, cs.k, cs.s, cs.p, rng);
  Conv2d<T, Sigmoid> sig(cs.in, cs.out_channels, cs.k, cs.s, cs.p, rng);
  const Mat<T> x = rng.normal_matrix<T>(cs.in.size(), 3);
  Mat<T> y;
  leaky.forward(x, y);
  CHECK(rel_diff(y, direct_conv<T, LeakyRelu>(x, cs.in, leaky.weight(), leaky.bias(), cs.k, cs.s, cs.p)) <
        tolerance<T>());
  CHECK(y.minCoeff() < 0);
  sig.forward(x, y);
  CHECK(rel_diff(y, direct_conv<T, Sigmoid>(x, cs.in, sig.weight(), sig.bias(), cs.k, cs.s, cs.p)) < tolerance<T>());
  // and by the direct kernels (LeakyReLU applied in registers, sigmoid in a pass after them)
  leaky.set_algorithm(ConvAlgorithm::direct);
  sig.set_algorithm(ConvAlgorithm::direct);
  leaky.forward(x, y);
  CHECK(rel_diff(y, direct_conv<T, LeakyRelu>(x, cs.in, leaky.weight(), leaky.bias(), cs.k, cs.s, cs.p)) <
        tolerance<T>());
  sig.forward(x, y);
  CHECK(rel_diff(y, direct_conv<T, Sigmoid>(x, cs.in, sig.weight(), sig.bias(), cs.k, cs.s, cs.p)) < tolerance<T>());
}

TEST_CASE_TEMPLATE("Conv2d: the direct kernels and im2col + GEMM agree, forward and VJPs", T, float, double) {
  Rng rng(13);
  // the conv VAE's first layer (1×28×28 → 32×14×14), channel counts that are not whole SIMD
  // packets, strides 1–3, rows shorter and longer than a packet, a single output pixel
  const std::vector<ConvCase> shapes = {
      {{1, 28, 28}, 32, 4, 2, 1, 0}, {{1, 9, 13}, 5, 3, 1, 1, 0}, {{2, 11, 7}, 17, 4, 3, 2, 0},
      {{3, 5, 5}, 9, 3, 2, 0, 0},    {{1, 4, 4}, 3, 4, 1, 0, 0},  {{2, 20, 3}, 12, 2, 1, 0, 0},
  };
  for (const auto& cs : shapes) {
    INFO(describe(cs));
    Conv2d<T, LeakyRelu> conv(cs.in, cs.out_channels, cs.k, cs.s, cs.p, rng);
    for (Index n : {1, 3, 17}) {
      INFO("batch " << n);
      const Mat<T> x = rng.normal_matrix<T>(cs.in.size(), n);
      Mat<T> y[2], gy, gx[2], gw[2], gb[2], work;
      for (int a = 0; a < 2; ++a) {
        conv.set_algorithm(a == 0 ? ConvAlgorithm::im2col_gemm : ConvAlgorithm::direct);
        CHECK(conv.computes_directly() == (a == 1));
        conv.forward(x, y[a]);
        if (a == 0) gy = rng.normal_matrix<T>(y[0].rows(), n);
        conv.zero_grad();
        conv.backward(x, y[a], gy, &gx[a], true);
        gw[a] = conv.parameters()[0].grad;
        gb[a] = conv.parameters()[1].grad;
      }
      CHECK(rel_diff(y[1], y[0]) < tolerance<T>());
      CHECK(rel_diff(gx[1], gx[0]) < tolerance<T>());
      CHECK(rel_diff(gw[1], gw[0]) < tolerance<T>());
      CHECK(rel_diff(gb[1], gb[0]) < tolerance<T>());
      CHECK(rel_diff(y[0], direct_conv<T, LeakyRelu>(x, cs.in, conv.weight(), conv.bias(), cs.k, cs.s, cs.p)) <
            tolerance<T>());
    }
  }
  // automatic: direct for thin patches (C_in·k² ≤ conv_detail::direct_max_patch), else im2col + GEMM
  CHECK(Conv2d<T>({1, 28, 28}, 32, 4, 2, 1, rng).computes_directly());
  CHECK_FALSE(Conv2d<T>({32, 14, 14}, 64, 4, 2, 1, rng).computes_directly());
  Conv2d<T> forced({32, 14, 14}, 64, 4, 2, 1, rng);
  forced.set_algorithm(ConvAlgorithm::direct);
  CHECK(forced.computes_directly());
  CHECK(forced.algorithm() == ConvAlgorithm::direct);
}

TEST_CASE_TEMPLATE("activations' packet forms equal their scalar forms, NaN and signed zeros included", T, float,
                   double) {
  namespace ei = Eigen::internal;
  using P = typename ei::packet_traits<T>::type;
  constexpr int S = ei::packet_traits<T>::size;
  const T inf = std::numeric_limits<T>::infinity(), nan = std::numeric_limits<T>::quiet_NaN();
  std::vector<T> v = {T(-2), T(-0.5), T(-0.0), T(0), T(1e-30), T(3), -inf, inf, nan, -nan, T(-1e-30), T(0.25)};
  while (v.size() % S) v.push_back(T(7));
  auto same = [](T a, T b) {
    return (std::isnan(a) && std::isnan(b)) || (a == b && std::signbit(a) == std::signbit(b));
  };
  auto check = [&](auto act) {
    using A = decltype(act);
    for (std::size_t i = 0; i < v.size(); i += S) {
      T out[S];
      ei::pstoreu(out, A::template value_packet<T>(ei::ploadu<P>(v.data() + i)));
      for (int j = 0; j < S; ++j) {
        INFO(A::name << "(" << v[i + j] << ") = " << out[j] << ", scalar " << A::value(v[i + j]));
        CHECK(same(out[j], A::value(v[i + j])));
      }
    }
  };
  check(Identity{});
  check(Relu{});
  check(LeakyRelu{});
}

TEST_CASE_TEMPLATE("conv_detail::transpose_into transposes every shape exactly, in place of its packet tiles and edges",
                   T, float, double) {
  // sizes around the packet width (16 floats, 8 doubles with AVX-512): whole tiles, edges of
  // rows and of columns, both; leading dimensions larger than the sizes
  constexpr Index S = conv_detail::direct::lanes<T>;
  for (Index rows : {Index(1), S - 1, S, S + 1, 2 * S + 3})
    for (Index cols : {Index(1), S - 1, S, 3 * S, 3 * S + 2}) {
      if (rows < 1 || cols < 1) continue;
      const Index lds = rows + 3, ldd = cols + 5;
      std::vector<T> src(std::size_t(lds * cols)), dst(std::size_t(ldd * rows), T(-1));
      for (std::size_t i = 0; i < src.size(); ++i) src[i] = T(int(i % 1000) - 500);
      conv_detail::transpose_into(src.data(), lds, rows, cols, dst.data(), ldd);
      INFO(rows << " x " << cols);
      bool ok = true;
      for (Index i = 0; i < rows; ++i)
        for (Index j = 0; j < ldd; ++j)
          ok = ok && dst[std::size_t(j + i * ldd)] == (j < cols ? src[std::size_t(i + j * lds)] : T(-1));
      CHECK(ok);  // every element moved, the padding between rows untouched
    }
}

TEST_CASE_TEMPLATE("ConvTranspose2d matches a direct transposed convolution", T, float, double) {
  Rng rng(2);
  for (const auto& cs : cases) {
    INFO(describe(cs));
    ConvTranspose2d<T> tc(cs.in, cs.out_channels, cs.k, cs.s, cs.p, cs.op, rng);
    const Mat<T> x = rng.normal_matrix<T>(cs.in.size(), 5);
    const Mat<T> ref =
        direct_conv_transpose<T>(x, cs.in, cs.out_channels, tc.weight(), tc.bias(), cs.k, cs.s, cs.p, cs.op);
    const Shape3 out = tc.output_shape();
    CHECK(out.channels == cs.out_channels);
    CHECK(out.height == (cs.in.height - 1) * cs.s - 2 * cs.p + cs.k + cs.op);
    CHECK(out.width == (cs.in.width - 1) * cs.s - 2 * cs.p + cs.k + cs.op);
    CHECK(tc.output_size(cs.in.size()) == out.size());
    REQUIRE(ref.rows() == out.size());
    for (Index nb : {0, 1, 2, 4}) {
      tc.set_block_samples(nb);
      Mat<T> y;
      tc.forward(x, y);
      INFO("block " << nb);
      CHECK(rel_diff(y, ref) < tolerance<T>());
    }
    for (ConvAlgorithm a : {ConvAlgorithm::im2col_gemm, ConvAlgorithm::direct}) {  // both CPU computations
      tc.set_algorithm(a);
      Mat<T> y;
      tc.forward(x, y);
      INFO("algorithm " << int(a));
      CHECK(rel_diff(y, ref) < tolerance<T>());
    }
  }
  const ConvCase cs = cases[2];
  ConvTranspose2d<T, Tanh> th(cs.in, cs.out_channels, cs.k, cs.s, cs.p, cs.op, rng);
  ConvTranspose2d<T, Relu> re(cs.in, cs.out_channels, cs.k, cs.s, cs.p, cs.op, rng);
  const Mat<T> x = rng.normal_matrix<T>(cs.in.size(), 3);
  Mat<T> y;
  th.forward(x, y);
  CHECK(rel_diff(y, direct_conv_transpose<T, Tanh>(x, cs.in, cs.out_channels, th.weight(), th.bias(), cs.k, cs.s, cs.p,
                                                   cs.op)) < tolerance<T>());
  re.forward(x, y);
  CHECK(rel_diff(y, direct_conv_transpose<T, Relu>(x, cs.in, cs.out_channels, re.weight(), re.bias(), cs.k, cs.s, cs.p,
                                                   cs.op)) < tolerance<T>());
  CHECK(y.minCoeff() == 0);
}

TEST_CASE_TEMPLATE("ConvTranspose2d: the interleaved kernels and im2col + GEMM agree, forward and input VJP", T, float,
                   double) {
  Rng rng(17);
  // the conv VAE's two transposed layers; channel counts on both sides of the tiles' 8 and 16;
  // strides 1–3 with output padding; a kernel smaller than the stride (phases with no tap);
  // padding past the kernel's reach
  const std::vector<ConvCase> shapes = {
      {{64, 7, 7}, 32, 4, 2, 1, 0}, {{32, 14, 14}, 1, 4, 2, 1, 0}, {{3, 9, 7}, 17, 4, 2, 1, 1},
      {{5, 4, 6}, 9, 3, 3, 2, 2},   {{2, 5, 5}, 33, 1, 2, 0, 1},   {{4, 6, 6}, 8, 5, 1, 4, 0},
  };
  // a layer and its copy, on im2col + GEMM and on the interleaved kernels
  const auto both = [&]<class Act>(Act, const ConvCase& cs) {
    ConvTranspose2d<T, Act> gemm(cs.in, cs.out_channels, cs.k, cs.s, cs.p, cs.op, rng);
    ConvTranspose2d<T, Act> direct = gemm;
    gemm.set_algorithm(ConvAlgorithm::im2col_gemm);
    direct.set_algorithm(ConvAlgorithm::direct);
    return std::pair{gemm, direct};
  };
  struct Run {
    Mat<T> x, y, gy, gx;  // the interleaved kernels' y and gx
  };
  // the forward and the input VJP of both on a batch of n random samples
  const auto agree = [&]<class Act>(ConvTranspose2d<T, Act>& gemm, ConvTranspose2d<T, Act>& direct, Index n) {
    Run r;
    r.x = rng.normal_matrix<T>(gemm.input_size(), n);
    Mat<T> y0, gx0, work;
    gemm.forward(r.x, y0);
    direct.forward(r.x, r.y);
    CHECK(rel_diff(r.y, y0) < tolerance<T>());
    r.gy = rng.normal_matrix<T>(y0.rows(), n);
    gemm.backward_input(r.x, y0, r.gy, gx0, work);
    direct.backward_input(r.x, y0, r.gy, r.gx, work);  // work as the GEMM path left it
    CHECK(rel_diff(r.gx, gx0) < tolerance<T>());
    return r;
  };
  for (const auto& cs : shapes) {
    INFO(describe(cs));
    auto [gemm, direct] = both(Relu{}, cs);
    CHECK_FALSE(gemm.computes_directly());
    CHECK(direct.computes_directly());
    // 1 sample, a partial block, whole blocks of one and two packets with a partial one after
    for (Index n : {1, 3, 17, 33, 70}) {
      INFO("batch " << n);
      const Run r = agree(gemm, direct, n);
      CHECK(r.y.minCoeff() == 0);  // ReLU applied in registers
      // through views, as Carry runs them: rows of taller matrices, columns apart
      Mat<T> work, xs = Mat<T>::Zero(r.x.rows() + 5, n), ys = Mat<T>::Constant(r.y.rows() + 3, n, T(7)),
                   gxs = Mat<T>::Constant(r.x.rows() + 5, n, T(7));
      xs.bottomRows(r.x.rows()) = r.x;
      direct.forward_into(xs.bottomRows(r.x.rows()), ys.bottomRows(r.y.rows()));
      CHECK(ys.bottomRows(r.y.rows()) == r.y);
      CHECK((ys.topRows(3).array() == T(7)).all());
      direct.backward_input_into(xs.bottomRows(r.x.rows()), ys.bottomRows(r.y.rows()), r.gy, gxs.bottomRows(r.x.rows()),
                                 work);
      CHECK(gxs.bottomRows(r.x.rows()) == r.gx);
      CHECK((gxs.topRows(5).array() == T(7)).all());
    }
  }
  // an activation without a packet form (applied after the kernels) and the identity
  ConvTranspose2d<T, Sigmoid> sig({64, 7, 7}, 32, 4, 2, 1, 0, rng);
  ConvTranspose2d<T> lin({64, 7, 7}, 32, 4, 2, 1, 0, rng);
  const Mat<T> x = rng.normal_matrix<T>(sig.input_size(), 5);
  Mat<T> y;
  sig.forward(x, y);
  CHECK(rel_diff(y, direct_conv_transpose<T, Sigmoid>(x, {64, 7, 7}, 32, sig.weight(), sig.bias(), 4, 2, 1, 0)) <
        tolerance<T>());
  lin.forward(x, y);
  CHECK(rel_diff(y, direct_conv_transpose<T>(x, {64, 7, 7}, 32, lin.weight(), lin.bias(), 4, 2, 1, 0)) <
        tolerance<T>());
  // the input VJP's frame filled from whole blocks of columns with the cotangent taken on the
  // way (SampleFrame::fill_columns): the identity, ReLU and LeakyReLU's packet selects, the
  // sigmoid's packet product; a partial block after the whole ones (masked first, then filled)
  const auto fills = [&](const char* name, auto act) {
    INFO(name);
    auto [gemm, direct] = both(act, ConvCase{{5, 9, 7}, 17, 4, 2, 1, 1});
    agree(gemm, direct, 70);
  };
  fills("identity", Identity{});
  fills("ReLU", Relu{});
  fills("LeakyReLU", LeakyRelu{});
  fills("sigmoid", Sigmoid{});
  // automatic: the interleaved kernels from conv_detail::direct_min_transposed_channels channels
  // on the side each pass tiles: the forward's output channels, the input VJP's input channels;
  // a forward with fewer output channels one sample at a time (thin), also without a GEMM
  const auto takes = [&](Shape3 in, Index co) {
    const ConvTranspose2d<T> c(in, co, 4, 2, 1, 0, rng);
    return std::pair{c.computes_directly(), c.computes_input_vjp_directly()};
  };
  CHECK(takes({64, 7, 7}, 32) == std::pair{true, true});
  CHECK(takes({3, 5, 5}, 8) == std::pair{true, false});
  CHECK(takes({32, 14, 14}, 1) == std::pair{true, true});
  CHECK(takes({32, 14, 14}, 7) == std::pair{true, true});
  CHECK(takes({7, 14, 14}, 7) == std::pair{true, false});
  ConvTranspose2d<T> forced({7, 14, 14}, 1, 4, 2, 1, 0, rng);
  forced.set_algorithm(ConvAlgorithm::direct);
  CHECK((forced.computes_directly() && forced.computes_input_vjp_directly()));
  forced.set_algorithm(ConvAlgorithm::im2col_gemm);
  CHECK_FALSE((forced.computes_directly() || forced.computes_input_vjp_directly()));
}

TEST_CASE_TEMPLATE("ConvTranspose2d's thin forward (automatic, few output channels) agrees with im2col + GEMM", T,
                   float, double) {
  Rng rng(23);
  // the conv VAE's 32 -> 1 (196 input pixels: each channel's last packet reads into the next
  // channel); 3 and 7 output channels; strides 1-3 with output padding; a kernel smaller than
  // the stride; an odd kernel (k % 2 = 1: no paired taps); 8 x 8 input maps (64 pixels: whole
  // packets); inputs of 1, 3 and 4 values a column, shorter than a packet's overhang, where a
  // sample read in place reached past the batch's memory (heap overflow under ASan: the plain
  // matrices below are exactly sized)
  const std::vector<ConvCase> shapes = {
      {{32, 14, 14}, 1, 4, 2, 1, 0}, {{5, 9, 7}, 3, 4, 2, 1, 1}, {{4, 6, 6}, 7, 3, 3, 2, 2}, {{2, 5, 5}, 2, 1, 2, 0, 1},
      {{3, 7, 5}, 1, 5, 1, 2, 0},    {{6, 8, 8}, 2, 4, 2, 1, 0}, {{1, 1, 1}, 1, 4, 2, 1, 0}, {{1, 1, 3}, 2, 3, 1, 0, 0},
      {{1, 2, 2}, 1, 4, 2, 1, 0},    {{4, 1, 1}, 3, 2, 1, 0, 0},
  };
  for (const auto& cs : shapes) {
    INFO(describe(cs));
    ConvTranspose2d<T, Sigmoid> thin(cs.in, cs.out_channels, cs.k, cs.s, cs.p, cs.op, rng);
    ConvTranspose2d<T, Sigmoid> gemm = thin;
    gemm.set_algorithm(ConvAlgorithm::im2col_gemm);
    CHECK(thin.computes_directly());
    CHECK_FALSE(gemm.computes_directly());
    for (Index n : {1, 2, 5, 9}) {
      INFO("batch " << n);
      const Mat<T> x = rng.normal_matrix<T>(thin.input_size(), n);
      Mat<T> y[2];
      gemm.forward(x, y[0]);
      thin.forward(x, y[1]);
      CHECK(rel_diff(y[1], y[0]) < tolerance<T>());
      // through views whose columns are followed by NaN rows: what the product reads past a
      // column never reaches an output
      Mat<T> xs = Mat<T>::Constant(x.rows() + 20, n, std::numeric_limits<T>::quiet_NaN()),
             ys = Mat<T>::Constant(y[0].rows() + 3, n, T(7));
      xs.topRows(x.rows()) = x;
      thin.forward_into(xs.topRows(x.rows()), ys.bottomRows(y[0].rows()));
      // (not bit for bit: the sigmoid's vectorised pass splits an unaligned column differently)
      CHECK(ys.allFinite());
      CHECK(rel_diff(Mat<T>(ys.bottomRows(y[0].rows())), y[1]) < tolerance<T>());
      CHECK((ys.topRows(3).array() == T(7)).all());
    }
  }
}

TEST_CASE("ConvTranspose2d is the adjoint of Conv2d's input map with the same weights") {
  Rng rng(3);
  for (const auto& cs : cases) {
    INFO(describe(cs));
    // the transposed layer maps C_in × H × W to C_out × H_out × W_out; the Conv2d goes back
    ConvTranspose2d<double> tc(cs.in, cs.out_channels, cs.k, cs.s, cs.p, cs.op, rng);
    Conv2d<double> conv(tc.output_shape(), cs.in.channels, cs.k, cs.s, cs.p, rng);
    CHECK(conv.output_shape() == cs.in);
    REQUIRE(conv.weight().rows() == tc.weight().rows());
    REQUIRE(conv.weight().cols() == tc.weight().cols());
    conv.weight() = tc.weight();
    conv.bias().setZero();
    tc.bias().setZero();
    const Mat<double> u = rng.normal_matrix<double>(cs.in.size(), 3);
    const Mat<double> v = rng.normal_matrix<double>(tc.output_shape().size(), 3);
    Mat<double> tu, cv;
    tc.forward(u, tu);
    conv.forward(v, cv);
    const double lhs = (tu.array() * v.array()).sum(), rhs = (u.array() * cv.array()).sum();
    CHECK(std::abs(lhs - rhs) <= 1e-12 * tu.norm() * v.norm());
    // and the transposed layer's input VJP is the convolution itself
    Mat<double> gu, work;
    tc.backward_input(u, tu, v, gu, work);
    CHECK(rel_diff(gu, cv) < 1e-13);
  }
}

TEST_CASE("Conv2d and ConvTranspose2d: VJPs against finite differences (input, weights, bias)") {
  Rng rng(4);
  for (const auto& cs : {cases[1], cases[2], cases[4], cases[5]}) {
    INFO(describe(cs));
    for (ConvAlgorithm algorithm : {ConvAlgorithm::im2col_gemm, ConvAlgorithm::direct}) {
      INFO("algorithm " << int(algorithm));
      Conv2d<double> a(cs.in, cs.out_channels, cs.k, cs.s, cs.p, rng);
      a.set_algorithm(algorithm);
      check_layer_vjps(a, 3, rng);
      Conv2d<double, Tanh> b(cs.in, cs.out_channels, cs.k, cs.s, cs.p, rng);
      b.set_algorithm(algorithm);
      b.set_block_samples(2);  // stacked blocks, a partial last block
      check_layer_vjps(b, 3, rng);
    }
    for (ConvAlgorithm algorithm : {ConvAlgorithm::im2col_gemm, ConvAlgorithm::direct}) {
      INFO("transposed, algorithm " << int(algorithm));
      ConvTranspose2d<double> a(cs.in, cs.out_channels, cs.k, cs.s, cs.p, cs.op, rng);
      a.set_algorithm(algorithm);
      check_layer_vjps(a, 3, rng);
      ConvTranspose2d<double, Sigmoid> b(cs.in, cs.out_channels, cs.k, cs.s, cs.p, cs.op, rng);
      b.set_algorithm(algorithm);
      b.set_block_samples(2);
      check_layer_vjps(b, 3, rng);
    }
  }
}

TEST_CASE("conformance: a conv encoder and a transposed-conv decoder pass check_generator") {
  Rng rng(5);
  // the decoder shapes of the conv VAE, scaled down: 4×4×4 → 3×8×8 → 1×16×16 (and one odd one)
  auto dec = make_sequential(64, ConvTranspose2d<double, LeakyRelu>({4, 4, 4}, 3, 4, 2, 1, 0, rng),
                             ConvTranspose2d<double, Sigmoid>({3, 8, 8}, 1, 4, 2, 1, 0, rng));
  REQUIRE(dec.dim(1) == 3 * 8 * 8);
  REQUIRE(dec.dim(2) == 16 * 16);
  const auto r = testing::check_generator(dec, 3, rng);
  INFO(r.failures);
  CHECK(r.ok);

  auto enc = make_sequential(2 * 9 * 9, Conv2d<double, Relu>({2, 9, 9}, 4, 3, 2, 1, rng),
                             Conv2d<double, Tanh>({4, 5, 5}, 3, 3, 1, 0, rng),
                             ConvTranspose2d<double>({3, 3, 3}, 2, 3, 2, 1, 1, rng));
  REQUIRE(enc.dim(1) == 4 * 5 * 5);
  REQUIRE(enc.dim(3) == 2 * 6 * 6);
  const auto r2 = testing::check_generator(enc, 2, rng);
  INFO(r2.failures);
  CHECK(r2.ok);
}

TEST_CASE("Conv2d and ConvTranspose2d: const, thread-safe forward and input VJP") {
  Rng rng(6);
  const Conv2d<double, Relu> conv({3, 10, 10}, 4, 3, 2, 1, rng);
  const ConvTranspose2d<double, Tanh> tc({4, 5, 5}, 2, 4, 2, 1, 0, rng);
  const Mat<double> x = rng.normal_matrix<double>(conv.input_size(), 6);
  Mat<double> h, y, gy, gh, gx, w1, w2;
  conv.forward(x, h);
  tc.forward(h, y);
  gy = rng.normal_matrix<double>(y.rows(), y.cols());
  tc.backward_input(h, y, gy, gh, w1);
  conv.backward_input(x, h, gh, gx, w2);
  // the same calls on two threads at once on the shared layers, each with its own scratch
  auto run = [&](Mat<double>& out) {
    Mat<double> hh, yy, ggh, work;
    for (int it = 0; it < 20; ++it) {
      conv.forward(x, hh);
      tc.forward(hh, yy);
      tc.backward_input(hh, yy, gy, ggh, work);
      conv.backward_input(x, hh, ggh, out, work);
    }
  };
  Mat<double> o1, o2;
  std::thread t1(run, std::ref(o1)), t2(run, std::ref(o2));
  t1.join();
  t2.join();
  CHECK(o1 == gx);
  CHECK(o2 == gx);
  // the scratch keeps its storage between calls of one batch size
  const double* p = w2.data();
  conv.backward_input(x, h, gh, gx, w2);
  CHECK(w2.data() == p);
}

TEST_CASE("Conv2d and ConvTranspose2d reject bad shapes, naming the problem") {
  Rng rng(7);
  CHECK_THROWS_AS(Conv2d<float>({0, 4, 4}, 2, 3, 1, 0, rng), invalid_input);
  CHECK_THROWS_WITH(Conv2d<float>({1, 4, -1}, 2, 3, 1, 0, rng), doctest::Contains("shape must be positive"));
  CHECK_THROWS_WITH(Conv2d<float>({1, 4, 4}, 0, 3, 1, 0, rng), doctest::Contains("out_channels must be positive"));
  CHECK_THROWS_WITH(Conv2d<float>({1, 4, 4}, 2, 0, 1, 0, rng), doctest::Contains("kernel size must be positive"));
  CHECK_THROWS_WITH(Conv2d<float>({1, 4, 4}, 2, 3, 0, 0, rng), doctest::Contains("stride must be positive"));
  CHECK_THROWS_WITH(Conv2d<float>({1, 4, 4}, 2, 3, 1, -1, rng), doctest::Contains("padding must be non-negative"));
  // sizes whose geometry would overflow its ints (2·padding for 2^30)
  CHECK_THROWS_WITH(Conv2d<float>({1, 4, 4}, 2, 3, 1, 1 << 30, rng), doctest::Contains("must be at most 65536"));
  CHECK_THROWS_WITH(ConvTranspose2d<float>({1, 4, 4}, 2, 3, 1 << 20, 0, 0, rng), doctest::Contains("must be at most"));
  CHECK_THROWS_WITH(Conv2d<float>({1, 4, 6}, 2, 7, 1, 1, rng),
                    doctest::Contains("kernel 7 is larger than the padded input 6x8"));
  CHECK_NOTHROW(Conv2d<float>({1, 4, 6}, 2, 6, 1, 1, rng));
  CHECK_THROWS_WITH(ConvTranspose2d<float>({1, 4, 4}, 2, 3, 2, 1, 2, rng),
                    doctest::Contains("output_padding must be in [0, stride)"));
  CHECK_THROWS_WITH(ConvTranspose2d<float>({1, 4, 4}, 2, 3, 1, 0, 1, rng),
                    doctest::Contains("output_padding must be in [0, stride)"));
  CHECK_THROWS_WITH(ConvTranspose2d<float>({1, 4, 4}, 2, 3, 2, 0, -1, rng),
                    doctest::Contains("output_padding must be in [0, stride)"));
  CHECK_THROWS_WITH(ConvTranspose2d<float>({1, 1, 1}, 2, 2, 1, 1, 0, rng), doctest::Contains("leaves no output"));
  CHECK_THROWS_WITH(ConvTranspose2d<float>({2, 3, 3}, 0, 3, 1, 0, 0, rng),
                    doctest::Contains("out_channels must be positive"));
  CHECK_THROWS_WITH(ConvTranspose2d<float>({2, 0, 3}, 1, 3, 1, 0, 0, rng),
                    doctest::Contains("ConvTranspose2d input: feature-map shape must be positive"));

  Conv2d<double> conv({2, 5, 5}, 3, 3, 1, 1, rng);
  ConvTranspose2d<double> tc({2, 5, 5}, 3, 3, 2, 1, 1, rng);
  CHECK_THROWS_WITH(conv.output_size(49), doctest::Contains("Conv2d: expects 50 inputs (2x5x5), got 49"));
  CHECK_THROWS_WITH(tc.output_size(51), doctest::Contains("ConvTranspose2d: expects 50 inputs (2x5x5), got 51"));
  Mat<double> x = Mat<double>::Zero(49, 2), y, g, work;
  CHECK_THROWS_WITH(conv.forward(x, y), doctest::Contains("Conv2d input: expected a 50x2 matrix, got 49x2"));
  CHECK_THROWS_WITH(tc.forward(x, y), doctest::Contains("ConvTranspose2d input: expected a 50x2 matrix"));
  x = Mat<double>::Zero(50, 2);
  conv.forward(x, y);
  const Mat<double> bad = Mat<double>::Zero(y.rows() + 1, 2);
  CHECK_THROWS_WITH(conv.backward_input(x, y, bad, g, work), doctest::Contains("Conv2d output cotangent"));
  CHECK_THROWS_WITH(conv.backward(x, y, bad, &g, true), doctest::Contains("Conv2d output cotangent"));
  tc.forward(x, y);
  CHECK_THROWS_WITH(tc.backward_input(x, y, Mat<double>::Zero(y.rows(), 3), g, work),
                    doctest::Contains("ConvTranspose2d output"));
  // inside a Sequential the sizes are checked when it is built
  CHECK_THROWS_AS(make_sequential(49, Conv2d<double>({2, 5, 5}, 3, 3, 1, 1, rng)), invalid_input);
}

TEST_CASE("Conv2d and ConvTranspose2d initialise like PyTorch: U(±1/sqrt(fan_in))") {
  Rng rng(8);
  // Conv2d: fan_in = C_in·k² = 8·9
  Conv2d<double> conv({8, 6, 6}, 64, 3, 1, 1, rng);
  CHECK(conv.weight().rows() == 8 * 9);
  CHECK(conv.weight().cols() == 64);
  const double bc = 1 / std::sqrt(8.0 * 9);
  CHECK(conv.weight().cwiseAbs().maxCoeff() <= bc);
  CHECK(conv.weight().cwiseAbs().maxCoeff() > 0.95 * bc);
  CHECK(conv.bias().cwiseAbs().maxCoeff() <= bc);
  CHECK(std::abs(conv.weight().mean()) < 0.05 * bc);
  // ConvTranspose2d: PyTorch's fan_in is weight.size(1)·k² = C_out·k² (here 8·9, not 64·9)
  ConvTranspose2d<double> tc({64, 3, 3}, 8, 3, 1, 1, 0, rng);
  CHECK(tc.weight().rows() == 8 * 9);
  CHECK(tc.weight().cols() == 64);
  CHECK(tc.weight().cwiseAbs().maxCoeff() <= bc);
  CHECK(tc.weight().cwiseAbs().maxCoeff() > 0.95 * bc);
  CHECK(tc.bias().size() == 8);
  CHECK(tc.bias().cwiseAbs().maxCoeff() <= bc);
  // the same seed gives the same layer
  Rng r1(9), r2(9);
  CHECK(Conv2d<float>({2, 5, 5}, 3, 3, 1, 1, r1).weight() == Conv2d<float>({2, 5, 5}, 3, 3, 1, 1, r2).weight());
}

TEST_CASE("Conv2d and ConvTranspose2d: weights saved and loaded by name") {
  auto make = [](std::uint64_t seed) {
    Rng rng(seed);
    return make_sequential(2 * 6 * 6, Conv2d<double, Relu>({2, 6, 6}, 3, 4, 2, 1, rng),
                           ConvTranspose2d<double, Sigmoid>({3, 3, 3}, 2, 4, 2, 1, 0, rng));
  };
  auto net = make(10);
  std::vector<std::string> names;
  for (const auto& p : net.parameters()) names.push_back(p.name);
  CHECK(names == std::vector<std::string>{"0.weight", "0.bias", "1.weight", "1.bias"});
  io::WeightsFile<double> f;
  f.arch = "test-conv";
  write_state(f, net, "net.");
  REQUIRE(f.tensors.size() == 4);
  // PyTorch's element order: conv [3, 2, 4, 4], transposed [3, 2, 4, 4] (C_in, C_out, k, k)
  CHECK(f.tensors[0].value.size() == 3 * 2 * 16);
  CHECK(f.tensors[2].value.size() == 3 * 2 * 16);
  const auto dir = std::filesystem::temp_directory_path() / "prilo_test_conv_state";
  std::filesystem::create_directories(dir);
  const auto path = dir / "conv.prw";
  io::save_weights(path, f);
  auto g = io::load_weights<double>(path);
  std::filesystem::remove_all(dir);
  std::reverse(g.tensors.begin(), g.tensors.end());
  auto other = make(11);
  Rng zr(12);
  const Mat<double> z = zr.normal_matrix<double>(2 * 6 * 6, 3);
  CHECK(other(z) != net(z));
  read_state(g, other, "net.");
  CHECK(other(z) == net(z));
  // a file of another kernel size is rejected, naming the tensor
  for (auto& t : g.tensors)
    if (t.name == "net.1.weight") t.value = Mat<double>::Zero(2 * 9, 3);
  CHECK_THROWS_WITH(read_state(g, other, "net."), doctest::Contains("net.1.weight"));
}

TEST_CASE("Shapes whose element count exceeds Eigen::Index are refused where the layers take them") {
  Rng rng(31);
  constexpr Index most = std::numeric_limits<Index>::max(), big = Index(1) << 32;
  const auto beyond = doctest::Contains("the index type's range");
  // C·H·W = 2^64 wrapped to 0: the layers were built and their sizes were 0
  CHECK_THROWS_WITH_AS(Conv2d<float>({1, big, big}, 1, 1, 1, 0, rng),
                       doctest::Contains("Conv2d input: feature-map shape 1x4294967296x4294967296 has more elements"),
                       invalid_input);
  CHECK_THROWS_WITH_AS(ConvTranspose2d<float>({1, big, big}, 1, 1, 1, 0, 0, rng),
                       doctest::Contains("ConvTranspose2d input: feature-map shape"), invalid_input);
  CHECK_THROWS_WITH_AS(Reshape<float>(Shape3{big, 1, big}), doctest::Contains("Reshape: feature-map shape"),
                       invalid_input);
  CHECK_THROWS_WITH_AS(BatchNorm2d<float>(Shape3{2, big, big / 2}), doctest::Contains("BatchNorm2d: feature-map shape"),
                       invalid_input);
  // inputs that fit, outputs that do not: 4 channels of 2^31 × 2^31 pixels
  const Index half = Index(1) << 31;
  CHECK_THROWS_WITH_AS(Conv2d<float>({1, half, half}, 4, 1, 1, 0, rng),
                       doctest::Contains("Conv2d output: feature-map shape 4x2147483648x2147483648"), invalid_input);
  CHECK_THROWS_WITH_AS(ConvTranspose2d<float>({1, half, half}, 4, 1, 1, 0, 0, rng),
                       doctest::Contains("ConvTranspose2d output: feature-map shape 4x2147483648x2147483648"),
                       invalid_input);
  // extents whose geometry overflowed before the product: H + 2p, (H − 1)·s + k
  CHECK_THROWS_WITH_AS(Conv2d<float>({1, most, 1}, 1, 1, 1, 1, rng), beyond, invalid_input);
  CHECK_THROWS_WITH_AS(ConvTranspose2d<float>({1, Index(1) << 62, 1}, 1, 3, 4, 0, 0, rng), beyond, invalid_input);
  // patches C·k² beyond Index (2^40 · 4096² = 2^64 wrapped to 0: a 0-row weight matrix)
  CHECK_THROWS_WITH_AS(Conv2d<float>({Index(1) << 40, 1, 1}, 1, 4096, 1, 2048, rng),
                       doctest::Contains("Conv2d: a patch of 1099511627776 channels with kernel 4096"), invalid_input);
  CHECK_THROWS_WITH_AS(ConvTranspose2d<float>({1, 1, 1}, Index(1) << 40, 4096, 1, 0, 0, rng),
                       doctest::Contains("ConvTranspose2d: a patch of 1099511627776 channels"), invalid_input);
  // the largest counts still pass the shape check
  CHECK_NOTHROW(require_positive(Shape3{1, 1, most}, "most"));
  CHECK_NOTHROW(require_positive(Shape3{most / 6, 2, 3}, "most"));
  CHECK_THROWS_WITH_AS(require_positive(Shape3{most / 6 + 1, 2, 3}, "one more"), beyond, invalid_input);
}

TEST_CASE("Conv2d and ConvTranspose2d: a default-constructed layer refuses every pass, naming the problem") {
  Mat<double> y, gx, work;
  const Mat<double> empty(0, 3), x = Mat<double>::Ones(3, 2);
  const auto refuses = [&](auto& layer, const char* message) {
    const auto named = doctest::Contains(message);
    // an empty input gave an empty output, silently
    CHECK_THROWS_WITH_AS(layer.forward(empty, y), named, invalid_input);
    CHECK_THROWS_WITH_AS(layer.forward(x, y), named, invalid_input);
    CHECK_THROWS_WITH_AS(layer.forward(empty, y, work), named, invalid_input);
    Mat<double> out(0, 3);
    CHECK_THROWS_WITH_AS(layer.forward_into(empty, out), named, invalid_input);
    CHECK_THROWS_WITH_AS(layer.output_size(), named, invalid_input);
    CHECK_THROWS_WITH_AS(make_sequential(3, layer), named, invalid_input);
    // the VJPs: ConvTranspose2d's divided by zero (SIGFPE)
    CHECK_THROWS_WITH_AS(layer.backward_input(empty, empty, empty, gx, work), named, invalid_input);
    CHECK_THROWS_WITH_AS(layer.backward_input_into(empty, empty, empty, out, work), named, invalid_input);
    CHECK_THROWS_WITH_AS(layer.backward(empty, empty, empty, &gx, true), named, invalid_input);
    Eigen::Ref<Mat<double>> view(out);
    CHECK_THROWS_WITH_AS(layer.backward_into(empty, empty, empty, &view, true), named, invalid_input);
  };
  Conv2d<double, Relu> conv;
  ConvTranspose2d<double, Sigmoid> tc;
  refuses(conv, "Conv2d: the layer was default-constructed (no geometry or weights)");
  refuses(tc, "ConvTranspose2d: the layer was default-constructed (no geometry or weights)");
  // constructed layers still run
  Rng rng(32);
  Conv2d<double, Relu> ok({1, 3, 3}, 2, 3, 1, 1, rng);
  ok.forward(Mat<double>::Ones(9, 2), y);
  CHECK(y.rows() == 18);
}

}  // namespace prilo_test_conv
