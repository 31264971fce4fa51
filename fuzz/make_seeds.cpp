// Writes the seed corpus (fuzz/corpus/<harness>/) with the library's own writers:
// tiny IDX image and label files (raw and gzip), tiny weights files (float32, float64) and
// tiny VAEs (save_vae). scripts/fuzz.sh --seeds runs it; the output is committed.
// Usage: make_seeds <corpus-dir> <configs-dir>
#include <prilo/io/idx.hpp>
#include <prilo/io/weights.hpp>
#include <prilo/nn/vae_io.hpp>

#include <cstdio>
#include <filesystem>

namespace fs = std::filesystem;

int main(int argc, char** argv) {
  if (argc != 3) {
    std::fprintf(stderr, "usage: %s <corpus-dir> <configs-dir>\n", argv[0]);
    return 2;
  }
  const fs::path out = argv[1], configs = argv[2];
  for (const char* h : {"idx", "idx_gz", "weights", "vae", "config"}) fs::create_directories(out / h);

  // 3 images of 4x5 pixels, a ramp; 3 labels.
  prilo::Mat<double> imgs(20, 3);
  for (Eigen::Index i = 0; i < imgs.size(); ++i) imgs.data()[i] = double(i % 256) / 255.0;
  const std::vector<std::uint8_t> labels = {7, 2, 1};
  for (bool gz : {false, true}) {
    const std::string ext = gz ? ".gz" : "";
    prilo::io::write_idx_images(out / "idx" / ("images-idx3-ubyte" + ext), imgs, 4, 5, gz);
    prilo::io::write_idx_labels(out / "idx" / ("labels-idx1-ubyte" + ext), labels, gz);
  }
  // idx_gz: the harness compresses its input, so its seeds are the plain files.
  prilo::io::write_idx_images(out / "idx_gz" / "images-idx3-ubyte", imgs, 4, 5, false);
  prilo::io::write_idx_labels(out / "idx_gz" / "labels-idx1-ubyte", labels, false);

  // Weights: two tensors (one empty), the architecture the harness also checks for.
  auto weights = [](auto scalar) {
    using T = decltype(scalar);
    prilo::io::WeightsFile<T> w;
    w.arch = "vae-mlp";
    w.sizes = {6, 4, 2};
    w.add("w", prilo::Mat<T>{{T(1), T(-2), T(0.5)}, {T(3), T(4), T(-0.25)}});
    w.add("empty", prilo::Mat<T>(0, 3));
    return w;
  };
  prilo::io::save_weights(out / "weights" / "f32.prw", weights(float{}));
  prilo::io::save_weights(out / "weights" / "f64.prw", weights(double{}));

  // VAEs of sizes {6, 4, 2} (12 tensors), float32 and float64.
  prilo::nn::Vae<float> vf(6, 4, 2, 1);
  prilo::nn::Vae<double> vd(6, 4, 2, 2);
  prilo::nn::save_vae(out / "vae" / "vae-6-4-2-f32.prw", vf);
  prilo::nn::save_vae(out / "vae" / "vae-6-4-2-f64.prw", vd);
  prilo::nn::save_vae(out / "weights" / "vae-6-4-2-f32.prw", vf);

  // Config: the repository's configs and the smallest valid one.
  for (const auto& e : fs::directory_iterator(configs))
    if (e.path().extension() == ".json")
      fs::copy_file(e.path(), out / "config" / e.path().filename(), fs::copy_options::overwrite_existing);
  std::FILE* f = std::fopen((out / "config" / "empty.json").c_str(), "wb");
  if (!f) return 1;
  std::fputs("{}\n", f);
  std::fclose(f);
  std::printf("seed corpus written to %s\n", out.c_str());
  return 0;
}
