// The learned initialisation (LI, the paper's Section 2.2 and Eq. 9): an encoder E from
// magnitudes y to a latent z0 = E(y), trained through the frozen generator G with the image MSE
// and a Wasserstein adversarial term with gradient penalty (a critic D on images); its weights
// files; and the starts of the latent solvers (restart 0 at E(y), the others perturbed).
#pragma once

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <filesystem>
#include <limits>
#include <optional>
#include <string>
#include <type_traits>
#include <vector>

#include "../concepts/generator.hpp"
#include "../core.hpp"
#include "../flops.hpp"
#include "../io/weights.hpp"
#include "../nn/linear.hpp"
#include "../nn/sequential.hpp"
#include "../nn/state_io.hpp"
#include "../operators/fourier.hpp"
#include "../operators/gaussian.hpp"
#include "../operators/magnitude_loss.hpp"
#include "../random.hpp"

namespace prilo {

/// The measurement operator an encoder was trained on (its input must come from the same one).
enum class LiOperator : std::uint32_t { fourier = 0, gaussian_real = 1, gaussian_complex = 2 };

inline const char* li_operator_name(LiOperator k) {
  switch (k) {
    case LiOperator::fourier: return "fourier";
    case LiOperator::gaussian_real: return "gaussian-real";
    case LiOperator::gaussian_complex: return "gaussian-complex";
  }
  return "?";
}

/// The fixed element-wise map applied to the (reduced) magnitudes before standardisation:
/// none, or log(1 + v) (compresses the large low-frequency DFT magnitudes).
enum class LiTransform : std::uint32_t { identity = 0, log1p = 1 };

inline const char* li_transform_name(LiTransform t) {
  return t == LiTransform::log1p ? "log1p" : "identity";
}

namespace nn {
template <class T>
class Vae;
template <class T>
class ConvVae;
template <class T>
class StyleVae;
}  // namespace nn

/// The generator an encoder was trained through (its latent is only meaningful for that
/// decoder): the VAEs prilo ships, named by their weights files' architecture tags.
enum class LiDecoder : std::uint32_t { vae_mlp = 0, vae_conv = 1, vae_style = 2 };

inline const char* li_decoder_name(LiDecoder d) {
  switch (d) {
    case LiDecoder::vae_mlp: return "vae-mlp";
    case LiDecoder::vae_conv: return "vae-conv";
    case LiDecoder::vae_style: return "vae-style";
  }
  return "?";
}

/// The LiDecoder of a VAE type; std::nullopt for a user's own model (not checked).
template <class V>
constexpr std::optional<LiDecoder> li_decoder_of() {
  using T = typename V::scalar;
  if constexpr (std::is_base_of_v<nn::Vae<T>, V>) return LiDecoder::vae_mlp;
  if constexpr (std::is_base_of_v<nn::ConvVae<T>, V>) return LiDecoder::vae_conv;
  if constexpr (std::is_base_of_v<nn::StyleVae<T>, V>) return LiDecoder::vae_style;
  return std::nullopt;
}

/// What an encoder is built for: the operator (kind, image size h×w, m measurements for the
/// Gaussian ones, the seed the Gaussian matrix was drawn with: prilo-reconstruct draws it with
/// --seed + 7), the input transform, the network's sizes and the decoder it was trained through.
struct LiSpec {
  LiOperator op = LiOperator::fourier;
  int height = 28, width = 28;
  Eigen::Index measurements = 0;    ///< m (Gaussian); the DFT has h·w
  std::uint64_t operator_seed = 0;  ///< Gaussian operators only (information; the probe checks it)
  LiTransform transform = LiTransform::identity;
  Eigen::Index hidden = 500, latent = 100;
  LiDecoder decoder = LiDecoder::vae_mlp;

  Eigen::Index image_size() const { return Eigen::Index(height) * width; }
  /// Rows of y: h·w for the DFT, m otherwise.
  Eigen::Index measurement_rows() const { return op == LiOperator::fourier ? image_size() : measurements; }
  /// Encoder inputs: the h·(w/2+1) half spectrum ȳ for the DFT (the magnitudes of a real image
  /// are point-symmetric, so the other half repeats it), the m magnitudes otherwise.
  Eigen::Index input_size() const {
    return op == LiOperator::fourier ? Eigen::Index(height) * (width / 2 + 1) : measurements;
  }
};

/// The LI encoder E: y → z0. The input is fixed and documented: y is reduced (DFT: the
/// symmetrised half spectrum ȳ_k = (y_k + y_{−k})/2 on k2 < w/2+1, the same ȳ as
/// MagnitudeLoss<Fourier2d>::half_measurements(); Gaussian: y itself), mapped by the transform
/// (identity or log1p), then standardised per input with the training set's mean and standard
/// deviation (stored in the weights file as "input.mean" and "input.scale"). The network is an
/// MLP input → hidden → hidden → latent with ReLU hidden layers and a linear output.
///
/// The file also stores "operator.probe": |A p| for a fixed probe image p, so that an encoder is
/// never used with measurements of another operator (e.g. a Gaussian matrix of another seed).
template <class T>
class LiEncoder {
 public:
  using scalar = T;
  using Network = nn::Sequential<T, nn::Dense<T, nn::Relu>, nn::Dense<T, nn::Relu>, nn::Linear<T>>;

  LiEncoder() = default;
  LiEncoder(const LiSpec& spec, std::uint64_t seed) : spec_(spec) {
    check_spec(spec);
    Rng rng(seed);
    const Eigen::Index d = spec.input_size(), h = spec.hidden, z = spec.latent;
    net_ = Network(d, nn::Dense<T, nn::Relu>(d, h, rng), nn::Dense<T, nn::Relu>(h, h, rng), nn::Linear<T>(h, z, rng));
    mean_ = Mat<T>::Zero(d, 1);
    scale_ = Mat<T>::Ones(d, 1);
    probe_ = Mat<T>::Zero(spec.measurement_rows(), 1);
  }

  const LiSpec& spec() const { return spec_; }
  Eigen::Index input_size() const { return spec_.input_size(); }
  Eigen::Index latent_dim() const { return spec_.latent; }
  Network& network() { return net_; }
  const Network& network() const { return net_; }
  const Mat<T>& input_mean() const { return mean_; }
  const Mat<T>& input_scale() const { return scale_; }

  /// The reduced, transformed measurements (input_size × B), before standardisation.
  Mat<T> reduce(const Mat<T>& y) const {
    require_shape(y, spec_.measurement_rows(), y.cols(), "LI encoder measurements y");
    Mat<T> r;
    if (spec_.op == LiOperator::fourier) {
      const int h = spec_.height, w = spec_.width, wh = w / 2 + 1;
      r.resize(input_size(), y.cols());
      for (Eigen::Index j = 0; j < y.cols(); ++j)
        for (int k1 = 0; k1 < h; ++k1)
          for (int k2 = 0; k2 < wh; ++k2)
            r(k1 * wh + k2, j) = (y(k1 * w + k2, j) + y(((h - k1) % h) * w + (w - k2) % w, j)) / 2;
    } else {
      r = y;
    }
    if (spec_.transform == LiTransform::log1p) r = r.array().max(T(0)).log1p().matrix();
    return r;
  }
  /// Sets the standardisation from reduced training measurements (columns): per input, the
  /// mean and the standard deviation (at least 1e-3 of the largest one, so that a constant
  /// input does not blow up).
  void fit_standardisation(const Mat<T>& reduced) {
    require_shape(reduced, input_size(), reduced.cols(), "LI standardisation data");
    if (reduced.cols() < 2) detail::fail("LI standardisation: needs at least 2 columns, got ", reduced.cols());
    for (Eigen::Index j = 0; j < reduced.cols(); ++j)
      if (!reduced.col(j).allFinite())
        detail::fail("LI standardisation: column ", j, " of the data is not finite (NaN or inf)");
    const Mat<double> r = reduced.template cast<double>();
    const Vec<double> mu = r.rowwise().mean();
    Vec<double> sd = ((r.colwise() - mu).array().square().rowwise().sum() / double(r.cols() - 1)).sqrt().matrix();
    const double floor = std::max(1e-12, 1e-3 * sd.maxCoeff());
    sd = sd.cwiseMax(floor);
    mean_ = mu.cast<T>();
    scale_ = sd.cast<T>();
  }
  /// The network's input: (reduce(y) − mean) / scale.
  Mat<T> features(const Mat<T>& y) const { return standardise(reduce(y)); }
  Mat<T> standardise(const Mat<T>& reduced) const {
    if (mean_.size() == 0)
      detail::fail(
          "LiEncoder: an encoder made by its default constructor has no weights (construct it from a LiSpec, "
          "or load one with load_li_encoder)");
    require_shape(reduced, input_size(), reduced.cols(), "LI reduced measurements");
    return ((reduced.colwise() - mean_.col(0)).array().colwise() / scale_.col(0).array()).matrix();
  }
  /// z0 = E(y) for every column of y; invalid_input when a column of y holds a NaN or inf.
  Mat<T> encode(const Mat<T>& y) const {
    for (Eigen::Index j = 0; j < y.cols(); ++j)
      if (!y.col(j).allFinite())
        detail::fail("LiEncoder::encode: measurement column ", j, " is not finite (NaN or inf)");
    return net_(features(y));
  }

  /// Products of one encoding (one column): the network's dense layers.
  double flops_per_column() const { return forward_flops(net_, 0, net_.depth()); }

  /// The probe image p (h·w, values in [0, 1] from a fixed stream) whose magnitudes identify
  /// the operator.
  Mat<T> probe_image() const {
    Rng rng(0x4c49u);
    Mat<T> p(spec_.image_size(), 1);
    for (Eigen::Index i = 0; i < p.rows(); ++i) p(i, 0) = T(rng.uniform());
    return p;
  }
  /// Records |A p| of the operator the encoder is trained on.
  template <MeasurementOperator Op>
  void set_operator(const Op& op) {
    check_operator_shape(op);
    probe_ = measure(op, probe_image());
  }
  /// invalid_input unless op is the operator the encoder was trained on: same kind, sizes and
  /// (through the probe's magnitudes, relative difference ≤ 1e-4) the same matrix.
  template <MeasurementOperator Op>
  void check_operator(const Op& op, const std::string& what = "LI encoder") const {
    check_operator_shape(op, what);
    if (probe_.size() == 0 || probe_.isZero(0))  // a new encoder: set_operator was never called
      detail::fail(what, ": the encoder records no measurement operator (set_operator was never called)");
    const double gap = relative_gap(measure(op, probe_image()), probe_);
    if (!(gap <= 1e-4)) {
      // the seed prilo-reconstruct would need (its operator is drawn with --seed + 7), when there is one
      const std::string seed_hint = spec_.operator_seed >= 7 ? "; prilo-reconstruct draws it with --seed + 7, so run "
                                                               "with --seed " +
                                                                   std::to_string(spec_.operator_seed - 7) + " or"
                                                             : ";";
      std::string hint = spec_.op == LiOperator::fourier
                             ? ""
                             : " (it was trained on the matrix drawn with seed " + std::to_string(spec_.operator_seed) +
                                   seed_hint + " train an encoder for this seed)";
      detail::fail(what, ": trained on another measurement operator: its probe magnitudes differ by ", gap,
                   " (relative)", hint);
    }
  }

  /// invalid_input unless `vae` is the model whose decoder the encoder was trained through:
  /// the same latent size; for the VAEs prilo ships (li_decoder_of), the same kind; and where
  /// the encoder records its decoder's image of a fixed probe latent (decoder_probe(): encoders
  /// trained since prilo keeps it, or given it by prilo-train-li --record-decoder), the same
  /// weights, through that image (relative difference ≤ 1e-3: an encoder trained through
  /// Fashion-MNIST's VAE is refused with MNIST's). A user's own VaeModel is checked by its latent
  /// size, and by the probe when its decoder runs on host matrices.
  template <class V>
  void check_decoder(const V& vae, const std::string& what = "LI encoder") const {
    if (vae.latent_dim() != spec_.latent)
      detail::fail(what, ": encodes to a latent of ", spec_.latent, ", the generator's latent has ", vae.latent_dim());
    if constexpr (constexpr auto kind = li_decoder_of<V>(); kind.has_value())
      if (*kind != spec_.decoder)
        detail::fail(what, ": trained through the ", li_decoder_name(spec_.decoder), " decoder, the generator is a ",
                     li_decoder_name(*kind), " (prilo-train-li --generator trains one for it)");
    if (decoder_probe_.size() == 0) return;
    if (const std::optional<Mat<T>> img = decoded_probe(vae)) {
      if (img->rows() != decoder_probe_.rows())
        detail::fail(what, ": trained through a decoder of ", decoder_probe_.rows(),
                     "-pixel images, the generator's has ", img->rows());
      const double gap = relative_gap(*img, decoder_probe_);
      if (!(gap <= 1e-3))
        detail::fail(
            what, ": trained through another ", li_decoder_name(spec_.decoder),
            " decoder's weights: its image of a fixed probe latent differs by ", gap,
            " (relative) from this generator's (prilo-train-li --weights <these weights> trains one for them)");
    }
  }

  /// The probe latent (latent × 1, N(0, I) from a fixed stream) whose decoded image identifies
  /// the decoder's weights.
  Mat<T> decoder_probe_latent() const {
    Rng rng(0x4c4944u);
    Mat<T> z(spec_.latent, 1);
    for (Eigen::Index i = 0; i < z.rows(); ++i) z(i, 0) = T(rng.normal());
    return z;
  }
  /// G(z_p) for the probe latent, where vae's decoder runs on host matrices (nullopt otherwise).
  template <class V>
  std::optional<Mat<T>> decoded_probe(const V& vae) const {
    using G = std::decay_t<decltype(vae.decoder())>;
    if constexpr (std::is_same_v<generator_matrix_t<G>, Mat<T>>) {
      const G& g = vae.decoder();
      return Mat<T>(g.forward(0, g.depth(), decoder_probe_latent()));
    } else {
      return std::nullopt;
    }
  }
  /// Records the decoder the encoder is trained through (train_li_encoder calls it): checks its
  /// kind and latent size, then keeps its image of the probe latent for check_decoder.
  template <class V>
  void set_decoder(const V& vae) {
    decoder_probe_.resize(0, 0);
    check_decoder(vae, "LI encoder");
    if (std::optional<Mat<T>> img = decoded_probe(vae)) decoder_probe_ = std::move(*img);
  }
  /// The recorded image of the probe latent (empty: none recorded; check_decoder then checks
  /// the kind and the latent size only).
  const Mat<T>& decoder_probe() const { return decoder_probe_; }
  /// Sets it as read from a file (load_li_encoder); an image-sized column of finite values.
  void set_decoder_probe(Mat<T> image) {
    if (image.size() != 0 && (image.cols() != 1 || image.rows() != spec_.image_size() || !image.allFinite()))
      detail::fail("LI encoder: a decoder probe must be ", spec_.image_size(), "x1 and finite, got ", image.rows(), "x",
                   image.cols());
    decoder_probe_ = std::move(image);
  }

  /// The network's tensors, named "encoder.<module>.<name>".
  nn::ParamList<T> parameters() {
    nn::ParamList<T> p;
    for (auto& q : net_.parameters()) p.push_back({"encoder." + q.name, q.value, q.grad});
    return p;
  }
  /// The standardisation and the operator probe, saved with the weights.
  nn::BufferList<T> buffers() {
    return {{"input.mean", Eigen::Map<Mat<T>>(mean_.data(), mean_.rows(), 1)},
            {"input.scale", Eigen::Map<Mat<T>>(scale_.data(), scale_.rows(), 1)},
            {"operator.probe", Eigen::Map<Mat<T>>(probe_.data(), probe_.rows(), 1)}};
  }
  void zero_grad() { net_.zero_grad(); }

  static void check_spec(const LiSpec& s) {
    if (s.height < 1 || s.width < 1)
      detail::fail("LI encoder: image size must be positive, got ", s.height, "x", s.width);
    if (s.op != LiOperator::fourier && s.measurements < 1)
      detail::fail("LI encoder: a Gaussian operator needs m >= 1 measurements, got ", s.measurements);
    if (s.hidden < 1 || s.latent < 1)
      detail::fail("LI encoder: hidden and latent sizes must be positive, got ", s.hidden, " and ", s.latent);
    // the weights file keeps the sizes as 32-bit words and the image sides up to 2^16
    if (s.height > (1 << 16) || s.width > (1 << 16))
      detail::fail("LI encoder: image sides must be at most 65536, got ", s.height, "x", s.width);
    constexpr Eigen::Index most = std::numeric_limits<std::int32_t>::max();
    if (s.measurements > most || s.hidden > most || s.latent > most || s.input_size() > most)
      detail::fail("LI encoder: sizes must be below 2^31 (measurements ", s.measurements, ", hidden ", s.hidden,
                   ", latent ", s.latent, ", inputs ", s.input_size(), ")");
  }

 private:
  template <class Op>
  void check_operator_shape(const Op& op, const std::string& what = "LI encoder") const {
    LiOperator kind = LiOperator::fourier;
    if constexpr (std::is_same_v<Op, Fourier2d<T>>) {
      if (op.height() != spec_.height || op.width() != spec_.width)
        detail::fail(what, ": trained for ", spec_.height, "x", spec_.width, " DFT measurements, the operator is ",
                     op.height(), "x", op.width());
    } else if constexpr (std::is_same_v<Op, GaussianReal<T>>) {
      kind = LiOperator::gaussian_real;
    } else if constexpr (std::is_same_v<Op, GaussianComplex<T>>) {
      kind = LiOperator::gaussian_complex;
    } else {
      detail::fail(what, ": LI knows the operators Fourier2d, GaussianReal and GaussianComplex");
    }
    if (kind != spec_.op)
      detail::fail(what, ": trained for the ", li_operator_name(spec_.op), " operator, not ", li_operator_name(kind));
    if (op.input_size() != spec_.image_size() || op.output_size() != spec_.measurement_rows())
      detail::fail(what, ": trained for ", spec_.measurement_rows(), " measurements of ", spec_.image_size(),
                   "-pixel images, the operator has ", op.output_size(), " of ", op.input_size());
  }

  /// ‖now − recorded‖ / ‖recorded‖: how far a probe's result is from the one the file records
  /// (check_operator's and check_decoder's measure).
  static double relative_gap(const Mat<T>& now, const Mat<T>& recorded) {
    return double((now - recorded).norm()) / std::max(1e-30, double(recorded.norm()));
  }

  LiSpec spec_{};
  Network net_;
  Mat<T> mean_, scale_, probe_;
  Mat<T> decoder_probe_;  ///< G(z_p) of the decoder trained through (empty: not recorded)
};

// ---------------------------------------------------------------------------------------------
// Weights files

inline constexpr const char* li_arch_tag = "li-mlp";

/// Writes the encoder (architecture "li-mlp"; sizes: input, hidden, latent, operator, transform,
/// height, width, m, seed low and high 32 bits), every tensor by name: "encoder.0.weight" …
/// "encoder.2.bias", "input.mean", "input.scale", "operator.probe", and "decoder.probe" when
/// the encoder records its decoder (LiEncoder::decoder_probe).
template <class T>
void save_li_encoder(const std::filesystem::path& path, LiEncoder<T>& e) {
  const LiSpec& s = e.spec();
  io::WeightsFile<T> f;
  f.arch = li_arch_tag;
  f.sizes = {std::uint32_t(s.input_size()),
             std::uint32_t(s.hidden),
             std::uint32_t(s.latent),
             std::uint32_t(s.op),
             std::uint32_t(s.transform),
             std::uint32_t(s.height),
             std::uint32_t(s.width),
             std::uint32_t(s.measurements),
             std::uint32_t(s.operator_seed & 0xffffffffu),
             std::uint32_t(s.operator_seed >> 32)};
  // an 11th size names the decoder unless it is the MLP VAE's (the files written before the
  // decoder was recorded, which stay byte for byte as they were)
  if (s.decoder != LiDecoder::vae_mlp) f.sizes.push_back(std::uint32_t(s.decoder));
  nn::write_state(f, e);
  if (e.decoder_probe().size() != 0) f.add("decoder.probe", e.decoder_probe());
  io::save_weights(path, f);
}

/// Reads an encoder, every tensor by name and checked against the sizes first; file_error or
/// invalid_input naming the file and the problem (missing file, another architecture, bad sizes,
/// missing or misshapen tensors).
template <class T>
LiEncoder<T> load_li_encoder(const std::filesystem::path& path) {
  auto f = io::load_weights<T>(path);
  const std::string name = path.string();
  if (f.arch != li_arch_tag)
    throw file_error(name + ": architecture \"" + f.arch + "\" is not an LI encoder (expected \"" + li_arch_tag +
                     "\")");
  // 11 sizes: the last names the decoder (LiDecoder); files with 10 are the MLP VAE's
  if (f.sizes.size() != 10 && f.sizes.size() != 11)
    throw file_error(name + ": an LI encoder needs 10 or 11 sizes, found " + std::to_string(f.sizes.size()));
  if (f.sizes.size() == 11 && f.sizes[10] > 2)
    throw file_error(name + ": corrupt: unknown decoder code " + std::to_string(f.sizes[10]));
  LiSpec s;
  if (f.sizes[3] > 2) throw file_error(name + ": corrupt: unknown operator code " + std::to_string(f.sizes[3]));
  if (f.sizes[4] > 1) throw file_error(name + ": corrupt: unknown input transform code " + std::to_string(f.sizes[4]));
  s.hidden = f.sizes[1];
  s.latent = f.sizes[2];
  s.op = LiOperator(f.sizes[3]);
  s.transform = LiTransform(f.sizes[4]);
  s.height = int(std::min<std::uint32_t>(f.sizes[5], 1u << 16));
  s.width = int(std::min<std::uint32_t>(f.sizes[6], 1u << 16));
  s.measurements = f.sizes[7];
  s.operator_seed = std::uint64_t(f.sizes[8]) | (std::uint64_t(f.sizes[9]) << 32);
  s.decoder = f.sizes.size() == 11 ? LiDecoder(f.sizes[10]) : LiDecoder::vae_mlp;
  try {
    LiEncoder<T>::check_spec(s);
  } catch (const invalid_input& e) {
    throw file_error(name + ": corrupt: " + e.what());
  }
  if (Eigen::Index(f.sizes[0]) != s.input_size())
    throw file_error(name + ": corrupt: input size " + std::to_string(f.sizes[0]) + " but the operator needs " +
                     std::to_string(s.input_size()));
  const Eigen::Index d = s.input_size(), h = s.hidden, z = s.latent, m = s.measurement_rows();
  const std::pair<const char*, std::array<Eigen::Index, 2>> shapes[] = {
      {"encoder.0.weight", {h, d}}, {"encoder.0.bias", {h, 1}},   {"encoder.1.weight", {h, h}},
      {"encoder.1.bias", {h, 1}},   {"encoder.2.weight", {z, h}}, {"encoder.2.bias", {z, 1}},
      {"input.mean", {d, 1}},       {"input.scale", {d, 1}},      {"operator.probe", {m, 1}}};
  for (const auto& [tname, rc] : shapes) {
    const Mat<T>* t = f.find(tname);
    if (!t) throw file_error(name + ": no tensor named \"" + tname + "\" (an LI encoder needs 9)");
    if (t->rows() != rc[0] || t->cols() != rc[1])
      throw file_error(name + ": corrupt: tensor \"" + tname + "\" is " + std::to_string(t->rows()) + "x" +
                       std::to_string(t->cols()) + ", expected " + std::to_string(rc[0]) + "x" + std::to_string(rc[1]));
  }
  // the decoder's probe image: optional (encoders written before prilo kept it have none)
  Mat<T> decoder_probe;
  for (auto it = f.tensors.begin(); it != f.tensors.end(); ++it)
    if (it->name == "decoder.probe") {
      decoder_probe = std::move(it->value);
      f.tensors.erase(it);
      break;
    }
  LiEncoder<T> e(s, 0);
  nn::read_state_from(name, f, e);
  try {
    e.set_decoder_probe(std::move(decoder_probe));
  } catch (const invalid_input& err) {
    throw file_error(name + ": corrupt: " + err.what());
  }
  // (a NaN or an infinity is refused by load_weights)
  if (!(e.input_scale().minCoeff() > T(0))) throw file_error(name + ": corrupt: \"input.scale\" must be positive");
  return e;
}

// ---------------------------------------------------------------------------------------------
// Starts

/// The largest σ of a perturbation of latent starts (LI's restarts, li.sigma; -polish's,
/// polish.sigma). The latents' prior is N(0, I), so a σ of 100 already starts far outside it;
/// a larger one is a typo (and in float, σ·ε near 10³⁸ overflows the decoder to inf and NaN).
inline constexpr double max_start_sigma = 100;

/// LI's starts for `restarts` restarts of every measurement column of y (column r·B + j for
/// restart r of image j): restart 0 starts at E(y_j) itself, the encoder's best guess; restarts
/// 1 … R−1 at E(y_j) + σ·ε with ε ~ N(0, I) (the paper's perturbation, σ = 0.05), so that
/// restarts explore around it and one restart keeps the unperturbed prediction.
template <class T>
Mat<T> li_latents(const LiEncoder<T>& enc, const std::type_identity_t<Mat<T>>& y, int restarts, double sigma,
                  Rng& rng) {
  if (restarts < 1) detail::fail("li_latents: restarts must be >= 1, got ", restarts);
  if (!(sigma >= 0 && sigma <= max_start_sigma))
    detail::fail("li_latents: sigma must be in [0, ", max_start_sigma, "], got ", sigma);
  const Mat<T> z = enc.encode(y);
  const Eigen::Index B = y.cols();
  Mat<T> out(z.rows(), B * restarts);
  for (int r = 0; r < restarts; ++r) {
    out.middleCols(r * B, B) = z;
    if (r > 0) out.middleCols(r * B, B) += rng.normal_matrix<T>(z.rows(), B, sigma);
  }
  return out;
}

// ---------------------------------------------------------------------------------------------
// Training: the critic and the encoder's loss (the paper's Eq. 9 without the LPIPS term)

/// The WGAN-GP critic D on images: an MLP n → H → H → 1 with LeakyReLU(slope) hidden layers,
/// D(x) = w3ᵀ σ(W2 σ(W1 x + b1) + b2) + b3. Its loss on real images x and fakes x̂ (a batch each):
///   L_D = mean D(x̂) − mean D(x) + λ mean_j (‖∇ D(x̃_j)‖ − 1)²,  x̃_j = t_j x_j + (1 − t_j) x̂_j.
/// The gradient penalty needs ∂/∂(weights) of an input-gradient norm. D is piecewise linear, so
/// with the activation masks d1 = σ'(a1), d2 = σ'(a2) of x̃ held fixed (they are constant on the
/// open pieces; the kinks have measure zero) the input gradient is a product of matrices:
///   g = ∇ D = W1ᵀ u1,  u1 = d1 ⊙ v1,  v1 = W2ᵀ u2,  u2 = d2 ⊙ w3,
/// and with r = ∂P/∂g = 2λ(‖g‖ − 1) g/‖g‖ (0 at g = 0) the chain rule through this backward
/// pass gives, per sample,
///   ∂P/∂W1 = u1 rᵀ,  s1 = W1 r,  t1 = d1 ⊙ s1,  ∂P/∂W2 = u2 t1ᵀ,  ∂P/∂w3 = d2 ⊙ (W2 t1),
/// and no gradient for the biases (they enter g only through the masks).
template <class T>
class WganCritic {
 public:
  using scalar = T;

  struct Loss {
    T total = 0;        ///< L_D
    T wasserstein = 0;  ///< mean D(x̂) − mean D(x)
    T penalty = 0;      ///< λ mean (‖∇D(x̃)‖ − 1)²
  };

  WganCritic() = default;
  WganCritic(Eigen::Index in, Eigen::Index hidden, std::uint64_t seed, T slope = T(0.2)) : slope_(slope) {
    if (in < 1 || hidden < 1) detail::fail("WganCritic: sizes must be positive, got ", in, " and ", hidden);
    Rng rng(seed);
    auto init = [&](Eigen::Index r, Eigen::Index c, Eigen::Index fan_in) {
      const double bound = 1.0 / std::sqrt(double(fan_in));
      Mat<T> m(r, c);
      for (Eigen::Index j = 0; j < c; ++j)
        for (Eigen::Index i = 0; i < r; ++i) m(i, j) = T((2 * rng.uniform() - 1) * bound);
      return m;
    };
    w_ = {init(hidden, in, in),    init(hidden, 1, in),     init(hidden, hidden, hidden),
          init(hidden, 1, hidden), init(1, hidden, hidden), init(1, 1, hidden)};
    for (const auto& m : w_) g_.push_back(Mat<T>::Zero(m.rows(), m.cols()));
  }

  Eigen::Index input_size() const {
    if (w_.empty())
      detail::fail("WganCritic: a critic made by its default constructor has no weights (construct it with its sizes)");
    return w_[0].cols();
  }
  T slope() const { return slope_; }

  /// D(x) per column (1×B).
  Mat<T> score(const Mat<T>& x) const {
    Pass p;
    run(x, p);
    return p.d;
  }
  /// ∇_x D per column (n×B).
  Mat<T> input_gradient(const Mat<T>& x) const {
    Pass p;
    run(x, p);
    return input_gradient(p);
  }

  /// L_D on real x and fakes xf (n×B each) with interpolation weights t (B, in [0, 1]) and
  /// penalty weight lambda; with `accumulate`, adds ∂L_D/∂(weights) to the gradient buffers.
  Loss loss(const Mat<T>& x, const Mat<T>& xf, const Vec<T>& t, T lambda, bool accumulate) {
    require_shape(x, input_size(), x.cols(), "critic real images");
    require_shape(xf, input_size(), x.cols(), "critic fake images");
    require_shape(t, x.cols(), 1, "critic interpolation weights");
    const Eigen::Index B = x.cols();
    if (B < 1) detail::fail("WganCritic::loss: needs at least one image, got an empty batch");
    if (!(std::isfinite(double(lambda)) && lambda >= T(0)))
      detail::fail("WganCritic::loss: the penalty weight must be finite and >= 0, got ", lambda);
    for (Eigen::Index j = 0; j < B; ++j)
      if (!(t(j) >= T(0) && t(j) <= T(1)))
        detail::fail("WganCritic::loss: interpolation weight ", j, " is ", t(j), " (must lie in [0, 1])");
    Loss out;
    Pass pr, pf, pi;
    run(x, pr);
    run(xf, pf);
    out.wasserstein = pf.d.mean() - pr.d.mean();
    const Mat<T> xi = (xf + (x - xf) * t.asDiagonal()).eval();
    run(xi, pi);
    const Mat<T> g = input_gradient(pi);  // n×B
    Mat<T> r(g.rows(), B);
    T pen = 0;
    for (Eigen::Index j = 0; j < B; ++j) {
      const T nu = g.col(j).norm();
      pen += (nu - 1) * (nu - 1);
      r.col(j) = nu > T(0) ? Vec<T>(g.col(j) * (T(2) * lambda * (nu - 1) / nu / T(B))) : Vec<T>::Zero(g.rows());
    }
    out.penalty = lambda * pen / T(B);
    out.total = out.wasserstein + out.penalty;
    if (accumulate) {
      backprop_score(pf, Mat<T>::Constant(1, B, T(1) / T(B)));
      backprop_score(pr, Mat<T>::Constant(1, B, T(-1) / T(B)));
      // the penalty through the input-gradient pass, masks of x̃ held fixed
      const Mat<T>& W1 = w_[0];
      const Mat<T>& W2 = w_[2];
      const Mat<T> u2 = (pi.m2.array().colwise() * w_[4].row(0).transpose().array()).matrix();  // H×B
      const Mat<T> u1 = pi.m1.cwiseProduct(W2.transpose() * u2);                                // H×B
      g_[0].noalias() += u1 * r.transpose();
      const Mat<T> t1 = pi.m1.cwiseProduct(W1 * r);  // H×B
      g_[2].noalias() += u2 * t1.transpose();
      g_[4].noalias() += (pi.m2.cwiseProduct(W2 * t1)).rowwise().sum().transpose();
    }
    return out;
  }

  /// The weights with their gradients: W1, b1, W2, b2, w3 (1×H), b3.
  nn::ParamList<T> parameters() {
    static const char* names[] = {"0.weight", "0.bias", "1.weight", "1.bias", "2.weight", "2.bias"};
    nn::ParamList<T> p;
    for (std::size_t k = 0; k < w_.size(); ++k)
      p.push_back({names[k], Eigen::Map<Mat<T>>(w_[k].data(), w_[k].rows(), w_[k].cols()),
                   Eigen::Map<Mat<T>>(g_[k].data(), g_[k].rows(), g_[k].cols())});
    return p;
  }
  void zero_grad() {
    for (auto& g : g_) g.setZero();
  }

 private:
  struct Pass {
    const Mat<T>* x = nullptr;
    Mat<T> h1, h2, m1, m2, d;  // activations, masks σ'(a), scores
  };
  void run(const Mat<T>& x, Pass& p) const {
    require_shape(x, input_size(), x.cols(), "critic input");
    p.x = &x;
    const T s = slope_;
    auto act = [&](Mat<T>& a, Mat<T>& mask) {
      mask = a.unaryExpr([s](T v) { return v > T(0) ? T(1) : s; });
      a = a.cwiseProduct(mask);
    };
    p.h1.noalias() = w_[0] * x;
    p.h1.colwise() += w_[1].col(0);
    act(p.h1, p.m1);
    p.h2.noalias() = w_[2] * p.h1;
    p.h2.colwise() += w_[3].col(0);
    act(p.h2, p.m2);
    p.d.noalias() = w_[4] * p.h2;
    p.d.array() += w_[5](0, 0);
  }
  Mat<T> input_gradient(const Pass& p) const {
    const Mat<T> u2 = (p.m2.array().colwise() * w_[4].row(0).transpose().array()).matrix();
    const Mat<T> u1 = p.m1.cwiseProduct(w_[2].transpose() * u2);
    return w_[0].transpose() * u1;
  }
  /// Adds Σ_j c_j ∂D(x_j)/∂(weights) (c: 1×B).
  void backprop_score(const Pass& p, const Mat<T>& c) {
    g_[4].noalias() += c * p.h2.transpose();
    g_[5](0, 0) += c.sum();
    const Mat<T> ga2 = (w_[4].transpose() * c).cwiseProduct(p.m2);  // H×B
    g_[2].noalias() += ga2 * p.h1.transpose();
    g_[3] += ga2.rowwise().sum();
    const Mat<T> ga1 = (w_[2].transpose() * ga2).cwiseProduct(p.m1);
    g_[0].noalias() += ga1 * p.x->transpose();
    g_[1] += ga1.rowwise().sum();
  }

  T slope_ = T(0.2);
  std::vector<Mat<T>> w_, g_;
};

/// The encoder's training loss on a batch (the paper's Eq. 9 without LPIPS):
///   L = ‖G(E(y)) − x‖² / (B·n) + λ_adv · (−mean_j D(G(E(y_j)))),
/// the mean squared pixel error through the frozen generator G and the Wasserstein adversarial
/// term (only with a critic and λ_adv > 0).
template <class T>
struct LiLoss {
  T total = 0, mse = 0, adversarial = 0;  ///< adversarial: −mean D(x̂) (unweighted)
};

/// L for standardised inputs `features` (LiEncoder::standardise) and true images x; with
/// `accumulate`, adds ∂L/∂(encoder weights) to the encoder's gradient buffers (the generator and
/// the critic are not changed). `fake`, when given, receives x̂ = G(E(y)) for the critic's step.
template <class T, Generator G>
LiLoss<T> li_encoder_loss(LiEncoder<T>& enc, const G& gen, const WganCritic<T>* critic, const Mat<T>& features,
                          const Mat<T>& x, T adversarial_weight, bool accumulate, Mat<T>* fake = nullptr) {
  require_shape(features, enc.input_size(), features.cols(), "LI encoder features");
  require_shape(x, gen.dim(gen.depth()), features.cols(), "LI training images");
  if (gen.dim(0) != enc.latent_dim())
    detail::fail("LI: the encoder's latent has ", enc.latent_dim(), " entries, the generator's ", gen.dim(0));
  const Eigen::Index B = x.cols(), n = x.rows();
  if (B < 1) detail::fail("li_encoder_loss: needs at least one image, got an empty batch");
  if (!std::isfinite(double(adversarial_weight)))
    detail::fail("li_encoder_loss: the adversarial weight must be finite, got ", adversarial_weight);
  nn::Trace<T> etr, gtr;
  enc.network().forward(0, enc.network().depth(), features, etr);
  gen.forward(0, gen.depth(), etr.output(), gtr);
  const Mat<T>& xh = gtr.output();
  LiLoss<T> out;
  Mat<T> gx = (xh - x) * (T(2) / T(B * n));
  out.mse = (xh - x).squaredNorm() / T(B * n);
  const bool adv = critic && adversarial_weight != T(0);
  if (adv) {
    out.adversarial = -critic->score(xh).mean();
    gx -= critic->input_gradient(xh) * (adversarial_weight / T(B));
  }
  out.total = out.mse + (adv ? adversarial_weight * out.adversarial : T(0));
  if (accumulate) enc.network().vjp_weights(etr, gen.vjp_input(gtr, gx));
  if (fake) *fake = xh;
  return out;
}

}  // namespace prilo
