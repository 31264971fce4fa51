// Tests of prilo/io: IDX reading/writing, weights files and PNG grids.
#include <doctest/doctest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <prilo/init/li.hpp>
#include <prilo/io/config.hpp>
#include <prilo/io/idx.hpp>
#include <prilo/io/models.hpp>
#include <prilo/io/png.hpp>
#include <prilo/io/weights.hpp>
#include <prilo/nn/checkpoint.hpp>
#include <prilo/nn/conv_vae_io.hpp>
#include <prilo/nn/style_vae_io.hpp>
#include <prilo/nn/vae_io.hpp>
#include <prilo/report.hpp>

#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <limits>
#include <set>
#include <string>
#include <vector>

#include <zlib.h>

#include "test_support.hpp"

#ifndef PRILO_TEST_TMPDIR
#define PRILO_TEST_TMPDIR "/tmp"
#endif

// Each test file in its own namespace, so that unity builds can combine them (tests/CMakeLists.txt).
namespace prilo_test_io {

namespace fs = std::filesystem;
using prilo::test_support::error_of;

namespace {

/// A fresh, empty directory for one test case.
fs::path io_tmpdir(const std::string& name) {
  const fs::path dir = fs::path(PRILO_TEST_TMPDIR) / ("prilo_test_io_" + name);
  fs::remove_all(dir);
  fs::create_directories(dir);
  return dir;
}

std::vector<unsigned char> read_bytes(const fs::path& p) {
  std::ifstream f(p, std::ios::binary);
  return std::vector<unsigned char>((std::istreambuf_iterator<char>(f)), std::istreambuf_iterator<char>());
}

void write_bytes(const fs::path& p, const std::vector<unsigned char>& b) {
  std::ofstream f(p, std::ios::binary | std::ios::trunc);
  f.write(reinterpret_cast<const char*>(b.data()), static_cast<std::streamsize>(b.size()));
}

void put_be32(std::vector<unsigned char>& out, std::uint32_t v) {
  for (int s = 24; s >= 0; s -= 8) out.push_back(static_cast<unsigned char>(v >> s));
}

/// Hand-built IDX image file: header + `data_bytes` bytes of pixels.
std::vector<unsigned char> idx_image_bytes(std::uint32_t magic, std::uint32_t n, std::uint32_t rows, std::uint32_t cols,
                                           std::size_t data_bytes) {
  std::vector<unsigned char> b;
  put_be32(b, magic);
  put_be32(b, n);
  put_be32(b, rows);
  put_be32(b, cols);
  for (std::size_t i = 0; i < data_bytes; ++i) b.push_back(static_cast<unsigned char>(i * 7 % 256));
  return b;
}

/// Images whose values are exact bytes/255: image k, pixel (r, c) = (k*31 + r*5 + c*3) % 256.
prilo::Mat<double> test_images(std::size_t rows, std::size_t cols, std::size_t n) {
  prilo::Mat<double> m(static_cast<Eigen::Index>(rows * cols), static_cast<Eigen::Index>(n));
  for (std::size_t k = 0; k < n; ++k)
    for (std::size_t r = 0; r < rows; ++r)
      for (std::size_t c = 0; c < cols; ++c)
        m(static_cast<Eigen::Index>(r * cols + c), static_cast<Eigen::Index>(k)) =
            ((k * 31 + r * 5 + c * 3) % 256) / 255.0;
  return m;
}

std::string idx_error(const fs::path& p) {
  try {
    (void)prilo::io::read_idx_images<double>(p);
  } catch (const prilo::file_error& e) {
    return e.what();
  }
  return "(no error)";
}

template <class T>
std::string weights_error(const fs::path& p) {
  try {
    (void)prilo::io::load_weights<T>(p);
  } catch (const prilo::file_error& e) {
    return e.what();
  }
  return "(no error)";
}

bool contains(const std::string& s, const std::string& part) {
  return s.find(part) != std::string::npos;
}

}  // namespace

TEST_CASE("io: IDX images round-trip, raw and gzip, with the documented layout") {
  const auto dir = io_tmpdir("idx_roundtrip");
  const std::size_t rows = 5, cols = 3, n = 7;
  const auto imgs = test_images(rows, cols, n);
  for (bool gz : {false, true}) {
    CAPTURE(gz);
    const fs::path p = dir / (gz ? "imgs.gz" : "imgs");
    prilo::io::write_idx_images(p, imgs, rows, cols, gz);
    const auto bytes = read_bytes(p);
    REQUIRE(bytes.size() > 2);
    CHECK((bytes[0] == 0x1f && bytes[1] == 0x8b) == gz);
    if (!gz) {
      CHECK(bytes.size() == 16 + rows * cols * n);
      CHECK(bytes[3] == 0x03);
      // pixel (r=1, c=2) of image 0 is byte 16 + 1*cols + 2
      CHECK(bytes[16 + 1 * cols + 2] == (1 * 5 + 2 * 3));
    }
    const auto d = prilo::io::read_idx_images<double>(p);
    CHECK(d.rows == rows);
    CHECK(d.cols == cols);
    CHECK(d.count() == n);
    CHECK(d.images == imgs);  // exact: byte/255 both ways
    const auto f = prilo::io::read_idx_images<float>(p);
    CHECK(f.images == imgs.cast<float>());
    CHECK(f.images.minCoeff() >= 0.0f);
    CHECK(f.images.maxCoeff() <= 1.0f);
  }
  // Values outside [0,1] are clamped; non-finite ones rejected.
  prilo::Mat<double> out(2, 1);
  out << -3.0, 7.0;
  prilo::io::write_idx_images(dir / "clamped", out, 1, 2);
  CHECK(prilo::io::read_idx_images<double>(dir / "clamped").images == prilo::Mat<double>{{0.0}, {1.0}});
  out(0, 0) = std::numeric_limits<double>::quiet_NaN();
  CHECK_THROWS_AS(prilo::io::write_idx_images(dir / "nan", out, 1, 2), prilo::invalid_input);
  CHECK_THROWS_AS(prilo::io::write_idx_images(dir / "shape", imgs, rows + 1, cols), prilo::invalid_input);
}

TEST_CASE("io: IDX subset reading") {
  const auto dir = io_tmpdir("idx_subset");
  const std::size_t rows = 4, cols = 6, n = 10;
  const auto imgs = test_images(rows, cols, n);
  std::vector<std::uint8_t> labels(n);
  for (std::size_t i = 0; i < n; ++i) labels[i] = static_cast<std::uint8_t>(i % 10);
  for (bool gz : {false, true}) {
    CAPTURE(gz);
    const fs::path pi = dir / (gz ? "i.gz" : "i"), pl = dir / (gz ? "l.gz" : "l");
    prilo::io::write_idx_images(pi, imgs, rows, cols, gz);
    prilo::io::write_idx_labels(pl, labels, gz);
    const auto sub = prilo::io::read_idx_images<double>(pi, 3, 4);
    CHECK(sub.count() == 4);
    CHECK(sub.images == imgs.middleCols(3, 4));
    CHECK(prilo::io::read_idx_images<double>(pi, 7).images == imgs.rightCols(3));
    CHECK(prilo::io::read_idx_images<double>(pi, 10).count() == 0);
    CHECK(prilo::io::read_idx_labels(pl, 3, 4) == std::vector<std::uint8_t>{3, 4, 5, 6});
    CHECK(prilo::io::read_idx_labels(pl) == labels);
    CHECK_THROWS_AS(prilo::io::read_idx_images<double>(pi, 8, 3), prilo::invalid_input);
    CHECK_THROWS_AS(prilo::io::read_idx_images<double>(pi, 11), prilo::invalid_input);
  }
}

TEST_CASE("io: IDX malformed files are rejected with a message naming the file and the problem") {
  const auto dir = io_tmpdir("idx_bad");
  const fs::path p = dir / "bad-images-idx3-ubyte";

  SUBCASE("not found") {
    const auto msg = idx_error(dir / "missing");
    CHECK(contains(msg, "missing"));
    CHECK(contains(msg, "not found"));
    CHECK_THROWS_AS(prilo::io::read_idx_labels(dir / "missing"), prilo::file_error);
  }
  SUBCASE("truncated data") {
    write_bytes(p, idx_image_bytes(0x803, 60000, 28, 28, 1000 - 16));
    const auto msg = idx_error(p);
    CHECK(contains(msg, p.string() + ": truncated"));
    CHECK(contains(msg, "expected 47040016 bytes"));
    CHECK(contains(msg, "got 1000"));
  }
  SUBCASE("truncated header") {
    write_bytes(p, {0, 0, 8, 3, 0, 0});
    CHECK(contains(idx_error(p), "truncated"));
  }
  SUBCASE("truncated gzip data") {
    const auto imgs = test_images(8, 8, 50);
    prilo::io::write_idx_images(p, imgs, 8, 8, true);
    auto b = read_bytes(p);
    b.resize(b.size() / 2);
    write_bytes(p, b);
    const auto msg = idx_error(p);
    CHECK(contains(msg, p.string()));
    CHECK(contains(msg, "truncated"));
  }
  SUBCASE("trailing bytes") {
    write_bytes(p, idx_image_bytes(0x803, 2, 3, 3, 18 + 5));
    const auto msg = idx_error(p);
    CHECK(contains(msg, "trailing data"));
    CHECK(contains(msg, "5 extra bytes"));
  }
  SUBCASE("trailing bytes inside a gzip stream") {
    const auto imgs = test_images(3, 3, 4);
    prilo::io::write_idx_images(p, imgs, 3, 3);
    auto b = read_bytes(p);
    b.push_back(42);  // a gzip file whose decompressed content is the image file plus one byte
    {
      gzFile f = gzopen(p.string().c_str(), "wb");
      REQUIRE(f != nullptr);
      gzwrite(f, b.data(), static_cast<unsigned>(b.size()));
      gzclose(f);
    }
    CHECK(contains(idx_error(p), "trailing data"));
  }
  SUBCASE("bytes after the gzip data, and a file of several gzip members") {
    const auto imgs = test_images(3, 3, 4);
    prilo::io::write_idx_images(p, imgs, 3, 3, true);
    const auto sound = read_bytes(p);
    // junk, and zeros, after the member: zlib's gzread skips them, the reader must not
    for (const std::vector<unsigned char>& tail :
         {std::vector<unsigned char>{'j', 'u', 'n', 'k'}, std::vector<unsigned char>(8, 0),
          std::vector<unsigned char>{0x1f}}) {
      auto b = sound;
      b.insert(b.end(), tail.begin(), tail.end());
      write_bytes(p, b);
      const auto msg = idx_error(p);
      CHECK(contains(msg, p.string() + ": trailing bytes: " + std::to_string(tail.size()) +
                              (tail.size() == 1 ? " byte" : " bytes") + " after the end of the gzip data (at byte " +
                              std::to_string(sound.size()) + " of " + std::to_string(b.size()) + ")"));
    }
    // the same bytes as two members (what `cat a.gz b.gz` makes): sound, read whole
    prilo::io::write_idx_images(p, imgs, 3, 3);
    const auto raw = read_bytes(p);
    std::vector<unsigned char> joined;
    for (const auto& [from, to] : {std::pair<std::size_t, std::size_t>{0, 10}, {10, raw.size()}}) {
      const fs::path part = dir / "part.gz";
      gzFile f = gzopen(part.string().c_str(), "wb");
      REQUIRE(f != nullptr);
      gzwrite(f, raw.data() + from, static_cast<unsigned>(to - from));
      gzclose(f);
      const auto b = read_bytes(part);
      joined.insert(joined.end(), b.begin(), b.end());
    }
    write_bytes(p, joined);
    CHECK(prilo::io::read_idx_images<double>(p).images == imgs);
    joined.push_back('!');  // and junk after the second member
    write_bytes(p, joined);
    CHECK(contains(idx_error(p), "trailing bytes: 1 byte after the end of the gzip data"));
  }
  SUBCASE("wrong magic") {
    write_bytes(p, idx_image_bytes(0x801, 1, 2, 2, 4));
    const auto msg = idx_error(p);
    CHECK(contains(msg, p.string() + ": bad magic number 0x00000801, expected 0x00000803"));
    CHECK(contains(msg, "label file"));
    // and the other way round
    write_bytes(p, idx_image_bytes(0x803, 1, 2, 2, 4));
    try {
      (void)prilo::io::read_idx_labels(p);
      FAIL("no error");
    } catch (const prilo::file_error& e) {
      CHECK(contains(e.what(), "bad magic number 0x00000803, expected 0x00000801"));
    }
    write_bytes(p, {'h', 'e', 'l', 'l', 'o', ' ', 'w', 'o', 'r', 'l', 'd', '!', '!', '!', '!', '!'});
    CHECK(contains(idx_error(p), "bad magic number"));
  }
  SUBCASE("zero and implausible dimensions") {
    write_bytes(p, idx_image_bytes(0x803, 3, 0, 28, 0));
    CHECK(contains(idx_error(p), "image dimension 1 is 0"));
    write_bytes(p, idx_image_bytes(0x803, 0, 28, 28, 0));
    CHECK(contains(idx_error(p), "item count is 0"));
    write_bytes(p, idx_image_bytes(0x803, 1, 0xffffffffu, 28, 16));
    CHECK(contains(idx_error(p), "implausible image dimension"));
  }
  SUBCASE("wrong size: the header promises more images than the file holds") {
    write_bytes(p, idx_image_bytes(0x803, 0x7fffffffu, 28, 28, 784 * 3));
    const auto msg = idx_error(p);
    CHECK(contains(msg, "truncated"));
    CHECK(contains(msg, "2147483647 images of 28x28"));
  }
}

TEST_CASE("io: load_dataset finds raw or gz files and checks that image and label counts agree") {
  const auto dir = io_tmpdir("dataset");
  fs::create_directories(dir / "mnist");
  fs::create_directories(dir / "fashion-mnist");
  const auto imgs = test_images(28, 28, 6);
  const std::vector<std::uint8_t> labels{0, 1, 2, 3, 4, 5};
  prilo::io::write_idx_images(dir / "mnist" / "train-images-idx3-ubyte", imgs, 28, 28);
  prilo::io::write_idx_labels(dir / "mnist" / "train-labels-idx1-ubyte", labels);
  prilo::io::write_idx_images(dir / "fashion-mnist" / "t10k-images-idx3-ubyte.gz", imgs.leftCols(4), 28, 28, true);
  prilo::io::write_idx_labels(dir / "fashion-mnist" / "t10k-labels-idx1-ubyte.gz", {9, 8, 7, 6}, true);

  const auto train = prilo::io::load_dataset<double>(dir, "mnist", "train");
  CHECK(train.count() == 6);
  CHECK(train.rows == 28);
  CHECK(train.cols == 28);
  CHECK(train.images == imgs);
  CHECK(train.labels == labels);
  const auto sub = prilo::io::load_dataset<float>(dir, "mnist", "train", 2, 3);
  CHECK(sub.images == imgs.middleCols(2, 3).cast<float>());
  CHECK(sub.labels == std::vector<std::uint8_t>{2, 3, 4});
  const auto test = prilo::io::load_dataset<double>(dir, "fashion-mnist", "test");
  CHECK(test.count() == 4);
  CHECK(test.labels == std::vector<std::uint8_t>{9, 8, 7, 6});
  CHECK(contains(test.images_path, ".gz"));
  // the counts by the headers alone (what the programs bound --first/--count with)
  CHECK(prilo::io::dataset_size(dir, "mnist", "train") == 6);
  CHECK(prilo::io::dataset_size(dir, "fashion-mnist", "test") == 4);
  CHECK_THROWS_WITH_AS((void)prilo::io::dataset_size(dir, "cifar", "train"),
                       doctest::Contains("dataset_size: name: expected"), prilo::invalid_input);

  // a missing split names the file tried
  try {
    (void)prilo::io::load_dataset<double>(dir, "mnist", "test");
    FAIL("no error");
  } catch (const prilo::file_error& e) {
    CHECK(contains(e.what(), "t10k-images-idx3-ubyte"));
    CHECK(contains(e.what(), "not found"));
  }
  CHECK_THROWS_AS((void)prilo::io::load_dataset<double>(dir, "cifar", "train"), prilo::invalid_input);
  CHECK_THROWS_AS((void)prilo::io::load_dataset<double>(dir, "mnist", "validation"), prilo::invalid_input);

  // count mismatch names both files
  prilo::io::write_idx_labels(dir / "mnist" / "train-labels-idx1-ubyte", {1, 2, 3});
  try {
    (void)prilo::io::load_dataset<double>(dir, "mnist", "train");
    FAIL("no error");
  } catch (const prilo::file_error& e) {
    const std::string msg = e.what();
    CHECK(contains(msg, "mismatch"));
    CHECK(error_of([&] { (void)prilo::io::dataset_size(dir, "mnist", "train"); }) == msg);
    CHECK(contains(msg, "train-images-idx3-ubyte has 6 images"));
    CHECK(contains(msg, "train-labels-idx1-ubyte has 3 labels"));
  }
}

TEST_CASE("io: load_dataset refuses images that are not 28x28, naming the file and its sides") {
  // the same pixel count (784) as MNIST's: every later size check would pass
  const auto dir = io_tmpdir("dataset_dims");
  fs::create_directories(dir / "mnist");
  prilo::io::write_idx_images(dir / "mnist" / "t10k-images-idx3-ubyte", test_images(56, 14, 3), 56, 14);
  prilo::io::write_idx_labels(dir / "mnist" / "t10k-labels-idx1-ubyte", {1, 2, 3});
  try {
    (void)prilo::io::load_dataset<float>(dir, "mnist", "test");
    FAIL("no error");
  } catch (const prilo::file_error& e) {
    CHECK(contains(e.what(), "t10k-images-idx3-ubyte: images of 56x14 pixels, but mnist's are 28x28"));
  }
}

TEST_CASE("io: a folder or a device given as a config or weights file is refused by name, without reading it all") {
  const auto dir = io_tmpdir("folder_inputs");
  try {
    (void)prilo::io::load_reconstruction_config<float>(dir);
    FAIL("no error");
  } catch (const prilo::file_error& e) {
    CHECK(contains(e.what(), dir.string() + ": is a directory, not a config file"));
  }
  // /dev/zero has no end: the magic number is checked before the rest is read
  if (fs::exists("/dev/zero")) CHECK(contains(weights_error<float>("/dev/zero"), "/dev/zero: bad magic"));
  CHECK(contains(weights_error<float>(dir), "is a directory"));
}

TEST_CASE("io: trainers' checks name a learning rate beyond float's range and the first non-finite parameter") {
  // a learning rate finite as a double is infinite as a float (1e39) or 0 (1e-50): named
  CHECK_THROWS_WITH_AS(prilo::nn::check_learning_rate_fits<float>("train_x", "learning rate", 1e39),
                       doctest::Contains("train_x: the learning rate 1e+39 is not a positive finite float"),
                       prilo::invalid_input);
  CHECK_THROWS_AS(prilo::nn::check_learning_rate_fits<float>("train_x", "learning rate", 1e-50), prilo::invalid_input);
  CHECK_NOTHROW(prilo::nn::check_learning_rate_fits<double>("train_x", "learning rate", 1e39));
  prilo::Mat<float> a = prilo::Mat<float>::Ones(2, 2), b = a, ga = a, gb = a;
  prilo::nn::ParamList<float> ps{{"a", {a.data(), 2, 2}, {ga.data(), 2, 2}},
                                 {"b", {b.data(), 2, 2}, {gb.data(), 2, 2}}};
  CHECK(prilo::nn::first_nonfinite_parameter(ps).empty());
  int asked = 0;  // what the files hold is worked out only for the error
  const auto files = [&] {
    ++asked;
    return std::string("; out.prw holds epoch 1");
  };
  CHECK_NOTHROW(prilo::nn::check_parameters_finite("train_x", ps, 1, 1, files));
  CHECK(asked == 0);
  b(1, 0) = std::numeric_limits<float>::infinity();
  CHECK(prilo::nn::first_nonfinite_parameter(ps) == "b");
  CHECK_THROWS_WITH_AS(
      prilo::nn::check_parameters_finite("train_x", ps, 2, 5, files),
      "train_x: training diverged: parameter b holds NaN or infinite values at epoch 2, batch 5 (try a smaller "
      "learning rate); out.prw holds epoch 1",
      prilo::invalid_input);
  CHECK(asked == 1);
  // BestEpoch: the kept epoch's weights back before the error, which says what the output holds
  b(1, 0) = 1;
  prilo::nn::BestEpoch<float> best(ps, "out.prw");
  best.end_epoch(3, true, [](const auto&) {});
  b(0, 1) = std::numeric_limits<float>::quiet_NaN();
  CHECK_THROWS_WITH_AS(best.check_parameters("train_x", ps, 4, 2, "critic parameter", "critic learning rate"),
                       "train_x: training diverged: critic parameter b holds NaN or infinite values at epoch 4, batch "
                       "2 (try a smaller critic learning rate); out.prw holds epoch 3",
                       prilo::invalid_input);
  CHECK(prilo::nn::first_nonfinite_parameter(ps).empty());  // epoch 3's weights, restored
}

TEST_CASE("io: default_data_dir honours PRILO_DATA") {
  const char* old = std::getenv("PRILO_DATA");
  const std::string saved = old ? old : "";
  ::setenv("PRILO_DATA", "/some/where", 1);
  CHECK(prilo::io::default_data_dir() == "/some/where");
  ::unsetenv("PRILO_DATA");
  CHECK(prilo::io::default_data_dir() == "data");
  if (old) ::setenv("PRILO_DATA", saved.c_str(), 1);
}

namespace {
template <class T>
prilo::io::WeightsFile<T> sample_weights() {
  prilo::io::WeightsFile<T> w;
  w.arch = "vae-mlp";
  w.sizes = {784, 400, 20};
  prilo::Mat<T> a = prilo::Mat<T>::Random(7, 5);
  a(0, 0) = std::numeric_limits<T>::denorm_min();
  a(1, 0) = -T(0);
  a(2, 0) = std::numeric_limits<T>::max();
  a(3, 0) = std::numeric_limits<T>::infinity();
  a(4, 0) = std::numeric_limits<T>::quiet_NaN();
  w.add("enc.0.weight", a);
  w.add("enc.0.bias", prilo::Mat<T>::Random(5, 1));
  w.add("empty", prilo::Mat<T>(0, 3));
  return w;
}

template <class T>
bool bit_equal(const prilo::Mat<T>& a, const prilo::Mat<T>& b) {
  return a.rows() == b.rows() && a.cols() == b.cols() &&
         (a.size() == 0 || std::memcmp(a.data(), b.data(), sizeof(T) * static_cast<std::size_t>(a.size())) == 0);
}
}  // namespace

TEST_CASE_TEMPLATE("io: weights save/load round-trip is bit-exact", T, float, double) {
  const auto dir = io_tmpdir(std::string("weights_rt_") + (sizeof(T) == 4 ? "f" : "d"));
  const auto w = sample_weights<T>();
  const fs::path p = dir / "model.prilo";
  prilo::io::save_weights(p, w);
  const auto bytes = read_bytes(p);
  REQUIRE(bytes.size() > 8);
  CHECK(std::string(bytes.begin(), bytes.begin() + 8) == "PRILOWTS");
  CHECK(bytes[12] == (sizeof(T) == 4 ? 1 : 2));

  const auto r = prilo::io::load_weights<T>(p);
  CHECK(r.arch == "vae-mlp");
  CHECK(r.sizes == std::vector<std::uint32_t>{784, 400, 20});
  REQUIRE(r.tensors.size() == 3);
  for (std::size_t i = 0; i < 3; ++i) {
    CHECK(r.tensors[i].name == w.tensors[i].name);
    CHECK(bit_equal(r.tensors[i].value, w.tensors[i].value));
  }
  CHECK(r.at("enc.0.bias", 5, 1).size() == 5);
  CHECK(r.find("nope") == nullptr);
  CHECK_THROWS_AS((void)r.at("nope"), prilo::invalid_input);
  CHECK_THROWS_AS((void)r.at("enc.0.bias", 4, 1), prilo::invalid_input);

  const auto info = prilo::io::read_weights_info(p);
  CHECK(info.version == 1);
  CHECK(info.tensor_count == 3);
  CHECK(info.header_bytes + info.payload_bytes == bytes.size());

  // no temporary file left behind
  std::size_t files = 0;
  for (const auto& e : fs::directory_iterator(dir)) files += e.is_regular_file() ? 1 : 0;
  CHECK(files == 1);

  // with the expected architecture
  CHECK(prilo::io::load_weights<T>(p, "vae-mlp", {784, 400, 20}).tensors.size() == 3);
}

TEST_CASE("io: weights convert between stored scalar types") {
  const auto dir = io_tmpdir("weights_convert");
  prilo::io::WeightsFile<float> wf;
  wf.arch = "x";
  wf.add("a", prilo::Mat<float>::Random(3, 4));
  prilo::io::save_weights(dir / "f.bin", wf);
  const auto d = prilo::io::load_weights<double>(dir / "f.bin");
  CHECK(d.at("a") == wf.at("a").cast<double>());  // float -> double is exact

  prilo::io::WeightsFile<double> wd;
  wd.arch = "x";
  wd.add("a", prilo::Mat<double>::Random(3, 4));
  prilo::io::save_weights(dir / "d.bin", wd);
  const auto f = prilo::io::load_weights<float>(dir / "d.bin");
  CHECK(f.at("a") == wd.at("a").cast<float>());

  // invalid contents are refused on save
  prilo::io::WeightsFile<double> dup;
  dup.add("a", prilo::Mat<double>(1, 1));
  dup.add("a", prilo::Mat<double>(1, 1));
  CHECK_THROWS_AS(prilo::io::save_weights(dir / "dup.bin", dup), prilo::invalid_input);
  prilo::io::WeightsFile<double> unnamed;
  unnamed.add("", prilo::Mat<double>(1, 1));
  CHECK_THROWS_AS(prilo::io::save_weights(dir / "unnamed.bin", unnamed), prilo::invalid_input);
}

TEST_CASE("io: damaged or mismatched weights files are rejected with clear messages") {
  const auto dir = io_tmpdir("weights_bad");
  const fs::path p = dir / "model.prilo";
  prilo::io::save_weights(p, sample_weights<double>());
  const auto good = read_bytes(p);
  const auto info = prilo::io::read_weights_info(p);

  SUBCASE("wrong architecture") {
    try {
      (void)prilo::io::load_weights<double>(p, "vae-mlp", {784, 256, 20});
      FAIL("no error");
    } catch (const prilo::file_error& e) {
      const std::string msg = e.what();
      CHECK(contains(msg, p.string() + ": architecture mismatch"));
      CHECK(contains(msg, "expected \"vae-mlp\" [784, 256, 20]"));
      CHECK(contains(msg, "found \"vae-mlp\" [784, 400, 20]"));
    }
    CHECK_THROWS_AS((void)prilo::io::load_weights<double>(p, "dcgan", {784, 400, 20}), prilo::file_error);
  }
  SUBCASE("truncated") {
    for (std::size_t keep : {std::size_t(0), std::size_t(5), std::size_t(20),
                             static_cast<std::size_t>(info.header_bytes), good.size() - 1}) {
      CAPTURE(keep);
      write_bytes(p, std::vector<unsigned char>(good.begin(), good.begin() + static_cast<std::ptrdiff_t>(keep)));
      const auto msg = weights_error<double>(p);
      CHECK(contains(msg, p.string() + ": truncated"));
      // the header alone is read_weights_info's: a cut payload is load_weights' to find
      if (keep >= info.header_bytes)
        CHECK(prilo::io::read_weights_info(p).header_bytes == info.header_bytes);
      else
        CHECK_THROWS_AS((void)prilo::io::read_weights_info(p), prilo::file_error);
    }
  }
  SUBCASE("trailing bytes") {
    auto b = good;
    b.push_back(0);
    write_bytes(p, b);
    CHECK(contains(weights_error<double>(p), "trailing data"));
    CHECK(prilo::io::read_weights_info(p).payload_bytes == info.payload_bytes);
  }
  SUBCASE("a header with a long architecture tag and many sizes, read alone") {
    prilo::io::WeightsFile<float> w;
    w.arch = std::string(4096, 'a');
    w.sizes.assign(1u << 16, 7u);
    w.add("t", prilo::Mat<float>::Ones(300, 300));  // a payload longer than the largest header
    prilo::io::save_weights(p, w);
    const auto big = prilo::io::read_weights_info(p);
    CHECK(big.arch == w.arch);
    CHECK(big.sizes == w.sizes);
    CHECK(big.header_bytes + big.payload_bytes == fs::file_size(p));
  }
  SUBCASE("corrupted payload byte") {
    auto b = good;
    b[static_cast<std::size_t>(info.header_bytes) + 40] ^= 0x10;
    write_bytes(p, b);
    const auto msg = weights_error<double>(p);
    CHECK(contains(msg, p.string() + ": bad checksum"));
    CHECK(contains(msg, "corrupt"));
  }
  SUBCASE("bad magic") {
    auto b = good;
    b[0] = 'X';
    write_bytes(p, b);
    CHECK(contains(weights_error<float>(p), p.string() + ": bad magic"));
  }
  SUBCASE("unsupported version") {
    auto b = good;
    b[8] = 2;
    write_bytes(p, b);
    CHECK(contains(weights_error<double>(p), "unsupported format version 2"));
  }
  SUBCASE("payload size mismatch with a valid checksum") {
    // A file whose payload is internally inconsistent (tensor count says 4, payload holds 3)
    auto b = good;
    const std::size_t count_at = static_cast<std::size_t>(info.header_bytes) - 16;  // u32 count, u64 size, u32 crc
    b[count_at] = 4;
    write_bytes(p, b);
    CHECK(contains(weights_error<double>(p), "payload size mismatch"));
  }
  SUBCASE("not found") {
    CHECK(contains(weights_error<double>(dir / "nothing.prilo"), "not found"));
  }
}

namespace {
/// Loads one shipped VAE file by name and saves it again: the new file must be byte for
/// byte the old one (same tensor names, order, shapes, scalar type and values).
template <class T>
void check_vae_file(const fs::path& file, const fs::path& dir) {
  const auto raw = prilo::io::load_weights<T>(file);
  auto vae = prilo::nn::load_vae<T>(file);
  // every tensor of the file is a parameter of the model under the same name, and back
  std::set<std::string> file_names, model_names;
  for (const auto& t : raw.tensors) file_names.insert(t.name);
  for (const auto& p : vae.parameters()) {
    model_names.insert(p.name);
    const auto* m = raw.find(p.name);
    REQUIRE(m != nullptr);
    CHECK(bit_equal(*m, prilo::Mat<T>(p.value)));
  }
  CHECK(file_names == model_names);
  CHECK(file_names.count("decoder.0.weight") == 1);
  CHECK(vae.buffers().empty());
  const fs::path again = dir / file.filename();
  prilo::nn::save_vae(again, vae);
  CHECK(read_bytes(again) == read_bytes(file));
}
/// A model of another architecture (conv or style VAE, LI encoder): loaded by its own loader,
/// saved back byte for byte.
template <class Load, class Save>
void check_model_file(const fs::path& file, const fs::path& dir, Load load, Save save) {
  auto model = load(file);
  const fs::path again = dir / file.filename();
  save(again, model);
  CHECK(read_bytes(again) == read_bytes(file));
}

template <class T>
void check_any_file(const fs::path& file, const fs::path& dir, const std::string& arch) {
  if (arch == prilo::nn::vae_arch_tag)
    check_vae_file<T>(file, dir);
  else if (arch == prilo::nn::conv_vae_arch_tag)
    check_model_file(
        file, dir, [](const fs::path& f) { return prilo::nn::load_conv_vae<T>(f); },
        [](const fs::path& f, auto& m) { prilo::nn::save_conv_vae(f, m); });
  else if (arch == prilo::nn::style_vae_arch_tag)
    check_model_file(
        file, dir, [](const fs::path& f) { return prilo::nn::load_style_vae<T>(f); },
        [](const fs::path& f, auto& m) { prilo::nn::save_style_vae(f, m); });
  else if (arch == prilo::li_arch_tag)
    check_model_file(
        file, dir, [](const fs::path& f) { return prilo::load_li_encoder<T>(f); },
        [](const fs::path& f, auto& m) { prilo::save_li_encoder(f, m); });
  else
    FAIL("no loader for architecture \"" << arch << "\"");
}
}  // namespace

TEST_CASE("io: every weights file in models/ loads by name and saves back byte for byte") {
  const auto dir = io_tmpdir("models");
  int files = 0;
  for (const auto& e : fs::directory_iterator(fs::path(PRILO_SOURCE_DIR) / "models")) {
    if (!e.is_regular_file()) continue;
    CAPTURE(e.path().string());
    const auto info = prilo::io::read_weights_info(e.path());
    if (info.scalar == prilo::io::WeightsScalar::float32)
      check_any_file<float>(e.path(), dir, info.arch);
    else
      check_any_file<double>(e.path(), dir, info.arch);
    ++files;
  }
  CHECK(files >= 5);  // the MLP and conv VAEs, the LI encoders
}

TEST_CASE("io: a VAE is checked against its generator name and its images; outputs against each other and inputs") {
  const prilo::io::AnyVae<float> mlp = prilo::nn::Vae<float>(784, 16, 4, 1);
  const prilo::io::AnyVae<float> conv = prilo::nn::ConvVae<float>({.image = {1, 28, 28}, .latent = 4}, 1);
  CHECK(prilo::io::generator_name(mlp) == "mlp");
  CHECK(prilo::io::generator_name(conv) == "conv");
  CHECK_NOTHROW(prilo::io::check_vae_fits(mlp, "m.prw", "mlp", 28, 28));
  CHECK_NOTHROW(prilo::io::check_vae_fits(mlp, "m.prw", "mlp", 14, 56));  // an MLP fixes the pixel count only
  CHECK_NOTHROW(prilo::io::check_vae_fits(conv, "c.prw", "conv", 28, 28));
  CHECK_THROWS_WITH_AS(prilo::io::check_vae_fits(mlp, "m.prw", "conv", 28, 28),
                       "weights m.prw hold the mlp VAE, not the conv one (--generator mlp reads them, with its own "
                       "config)",
                       prilo::invalid_input);
  CHECK_THROWS_WITH_AS(prilo::io::check_vae_fits(conv, "c.prw", "conv", 14, 56),
                       "weights c.prw are for images of 28x28, not 14x56", prilo::invalid_input);
  CHECK_THROWS_WITH_AS(prilo::io::check_vae_fits(mlp, "m.prw", "mlp", 28, 27),
                       "weights m.prw are for images of 784 pixels, not 28x27", prilo::invalid_input);

  const auto dir = io_tmpdir("distinct_outputs");
  const std::string a = (dir / "a.json").string(), b = (dir / "b.png").string();
  CHECK_NOTHROW(prilo::check_distinct_outputs({{"--json", a}, {"--png", b}, {"--trace", ""}}, {{"--config", ""}}));
  CHECK_THROWS_WITH_AS(prilo::check_distinct_outputs({{"--json", a}, {"--png", (dir / "." / "a.json").string()}}, {}),
                       doctest::Contains("--json and --png name the same file"), prilo::file_error);
  const std::string same_as_input = "--json " + a + " is the --config file the program reads";
  CHECK_THROWS_WITH_AS(prilo::check_distinct_outputs({{"--json", a}}, {{"--config", a}}),
                       doctest::Contains(same_as_input.c_str()), prilo::file_error);
  const auto data = prilo::io::dataset_files(dir, "mnist");
  CHECK(data.size() == 8u);
  CHECK_THROWS_WITH_AS(
      prilo::check_distinct_outputs({{"--png", data[1].string()}}, prilo::with_files({}, data, "data set's")),
      doctest::Contains("is the data set's file the program reads"), prilo::file_error);
  // "q.json" and "./q.json" before either exists: weakly_canonical left the first relative
  const std::string fresh = "prilo-test-distinct-" + std::to_string(::getpid()) + ".json";
  REQUIRE_FALSE(fs::exists(fresh));
  CHECK_THROWS_WITH_AS(prilo::check_distinct_outputs({{"--json", fresh}, {"--png", "./" + fresh}}, {}),
                       doctest::Contains("--json and --png name the same file"), prilo::file_error);
  CHECK_THROWS_AS(
      prilo::check_distinct_outputs({{"--json", fresh}, {"--trace", (fs::current_path() / fresh).string()}}, {}),
      prilo::file_error);
}

TEST_CASE("io: a write to a device, pipe or socket is refused; to a symbolic link, it replaces the link's target") {
  const auto dir = io_tmpdir("write_targets");
  const fs::path fifo = dir / "pipe";
  REQUIRE(::mkfifo(fifo.c_str(), 0600) == 0);
  const unsigned char bytes[3] = {1, 2, 3};
  // the rename replaced the pipe (or, as root, /dev/null) with a regular file
  CHECK_THROWS_WITH_AS(prilo::io::detail::write_file_atomic(fifo, bytes, 3),
                       doctest::Contains("pipe: cannot write: not a regular file"), prilo::file_error);
  CHECK(fs::is_fifo(fifo));
  CHECK_THROWS_WITH_AS(prilo::check_output_path(fifo.string(), "--json"),
                       doctest::Contains(("--json " + fifo.string() + ": exists and is not a regular file").c_str()),
                       prilo::file_error);
  const fs::path link = dir / "link.json", target = dir / "target.json", to_pipe = dir / "to_pipe";
  fs::create_symlink("target.json", link);  // relative, as ln -s makes it
  prilo::io::detail::write_file_atomic(link, bytes, 3);
  CHECK(fs::is_symlink(fs::symlink_status(link)));
  CHECK(read_bytes(target) == std::vector<unsigned char>{1, 2, 3});
  fs::create_symlink(fifo, to_pipe);
  CHECK_THROWS_WITH_AS(prilo::io::detail::write_file_atomic(to_pipe, bytes, 3),
                       doctest::Contains("named by a symbolic link"), prilo::file_error);
  CHECK(fs::is_symlink(fs::symlink_status(to_pipe)));
  const fs::path loop = dir / "loop";
  fs::create_symlink("loop", loop);
  CHECK_THROWS_WITH_AS(prilo::io::detail::write_file_atomic(loop, bytes, 3),
                       doctest::Contains("too many levels of symbolic links"), prilo::file_error);
}

TEST_CASE("io: PNG grid is written with a valid signature") {
  const auto dir = io_tmpdir("png");
  const auto imgs = test_images(28, 28, 10);
  const fs::path p = dir / "grid.png";
  prilo::io::write_png_grid(p, imgs, 28, 28, 2, 5, {2, 3, 1.0});
  const auto b = read_bytes(p);
  REQUIRE(b.size() > 33);
  const unsigned char sig[8] = {0x89, 'P', 'N', 'G', '\r', '\n', 0x1a, '\n'};
  CHECK(std::memcmp(b.data(), sig, 8) == 0);
  // IHDR: width and height (big-endian) at bytes 16..23; 1 channel, 8 bits
  auto be32 = [&](std::size_t at) {
    return (std::uint32_t(b[at]) << 24) | (std::uint32_t(b[at + 1]) << 16) | (std::uint32_t(b[at + 2]) << 8) |
           std::uint32_t(b[at + 3]);
  };
  CHECK(be32(16) == (5 * 28 + 4 * 2) * 3);
  CHECK(be32(20) == (2 * 28 + 1 * 2) * 3);
  CHECK(b[24] == 8);  // bit depth
  CHECK(b[25] == 0);  // grayscale

  // automatic grid, single image, float input
  prilo::io::write_png_grid(dir / "auto.png", imgs.cast<float>(), 28, 28);
  CHECK(fs::file_size(dir / "auto.png") > 0);
  prilo::io::write_png(dir / "one.png", imgs.col(0), 28, 28, 2);
  CHECK(fs::file_size(dir / "one.png") > 0);

  CHECK_THROWS_AS(prilo::io::write_png_grid(dir / "x.png", imgs, 28, 28, 2, 2), prilo::invalid_input);
  CHECK_THROWS_AS(prilo::io::write_png_grid(dir / "x.png", imgs, 27, 28, 2, 5), prilo::invalid_input);
  CHECK_THROWS_AS(prilo::io::write_png_grid(dir / "no-such-dir" / "x.png", imgs, 28, 28), prilo::file_error);
}

TEST_CASE("io: PNG sizes whose products would wrap are refused by name; a matrix is not taken for an image") {
  const auto dir = io_tmpdir("png_sizes");
  const auto imgs = test_images(28, 28, 2);
  const auto error = [&](std::size_t h, std::size_t w, std::size_t rows, std::size_t cols,
                         const prilo::io::PngGridOptions& o) {
    return error_of([&] { prilo::io::write_png_grid(dir / "x.png", imgs, h, w, rows, cols, o); });
  };
  // each used to wrap in size_t and pass the picture's side limit: a heap overflow, a wrong
  // picture, a crash, an image count that matched
  CHECK(error(28, 28, 1, 2, {std::size_t(-30), 1, 1.0}).find("padding: 18446744073709551586 is above the limit") !=
        std::string::npos);
  CHECK(error(28, 28, 1, 2, {std::size_t(-1), 1, 1.0}).find("padding: ") != std::string::npos);
  CHECK(error(28, 28, 1, std::size_t(1) << 62, {0, 1, 1.0}).find("grid columns: 4611686018427387904 is above") !=
        std::string::npos);
  CHECK(error(28, 28, 1, 2, {2, std::size_t(1) << 32, 1.0}).find("scale: 4294967296 is above") != std::string::npos);
  const prilo::Mat<double> none(0, 1);
  CHECK(error_of([&] {
          prilo::io::write_png_grid(dir / "x.png", none, std::size_t(1) << 32, std::size_t(1) << 32);
        }).find("image height: 4294967296 is above the limit of 32768") != std::string::npos);
  CHECK_FALSE(std::filesystem::exists(dir / "x.png"));
  // write_png takes one image as a vector of h*w values; a 28x28 matrix came out transposed
  const prilo::Mat<double> square = imgs.col(0).reshaped(28, 28);
  CHECK(error_of([&] {
          prilo::io::write_png(dir / "m.png", square, 28, 28);
        }).find("write_png: image: expected a vector of h*w values (pixel r*w + c), got a 28x28 matrix") !=
        std::string::npos);
  prilo::io::write_png(dir / "row.png", imgs.col(0).transpose(), 28, 28);  // a row vector is a vector
  // Arrays and array expressions are images too
  prilo::io::write_png(dir / "array.png", imgs.col(0).array() * 0.5, 28, 28);
  prilo::io::write_png_grid(dir / "arrays.png", imgs.array().sqrt(), 28, 28);
  prilo::io::write_idx_images(dir / "arrays.idx", imgs.array().square(), 28, 28);
  CHECK(std::filesystem::file_size(dir / "array.png") > 0);
  CHECK(prilo::io::read_idx_images<float>(dir / "arrays.idx").images.cols() == 2);
}

template <class W>
concept finds = requires {
  std::declval<W>().find("w");
};

TEST_CASE("io: a tensor of a temporary weights file is returned by value, not as a reference to freed memory") {
  using F = prilo::io::WeightsFile<float>;
  static_assert(std::is_same_v<decltype(std::declval<const F&>().at("w")), const prilo::Mat<float>&>);
  static_assert(std::is_same_v<decltype(std::declval<F>().at("w")), prilo::Mat<float>>);
  static_assert(std::is_same_v<decltype(std::declval<F>().at("w", 1, 1)), prilo::Mat<float>>);
  static_assert(finds<const F&>);
  static_assert(!finds<F>);  // a pointer into a temporary: refused
  const auto dir = io_tmpdir("weights_temporary");
  F f;
  f.arch = "test";
  f.add("w", prilo::Mat<float>::Constant(2, 3, 1.5f));
  prilo::io::save_weights(dir / "w.prw", f);
  const auto& w = prilo::io::load_weights<float>(dir / "w.prw").at("w");  // lifetime extended: a value
  CHECK(w.rows() == 2);
  CHECK(w(1, 2) == 1.5f);
  // load_any_vae names every architecture it reads, not only the MLP VAE's
  CHECK(error_of([&] {
          (void)prilo::io::load_any_vae<float>(dir / "w.prw");
        }).find("w.prw: \"test\" is not a VAE (expected \"vae-mlp\", \"vae-conv\" or \"vae-style\")") !=
        std::string::npos);
}

TEST_CASE("print_results refuses a method named twice: its report is keyed by name and would keep one") {
  using T = float;
  prilo::MethodResult<T> a;
  a.method = "dpr";
  a.best.x = prilo::Mat<T>::Constant(64, 2, 0.5f);
  a.best.magnitude_error = prilo::Vec<T>::Zero(2);
  a.seconds = 1;
  const prilo::Mat<T> truth = prilo::Mat<T>::Constant(64, 2, 0.5f);
  std::FILE* sink = std::tmpfile();
  REQUIRE(sink);
  prilo::MethodResult<T> b = a;
  b.method = "hio";
  CHECK(
      prilo::print_results(sink, std::vector<prilo::MethodResult<T>>{a, b}, truth, 8, 8, false, prilo::Peak{}).size() ==
      2);
  CHECK_THROWS_WITH_AS(
      prilo::print_results(sink, std::vector<prilo::MethodResult<T>>{a, b, a}, truth, 8, 8, false, prilo::Peak{}),
      doctest::Contains("method \"dpr\" is listed twice (results 0 and 2)"), prilo::invalid_input);
  std::fclose(sink);
}

}  // namespace prilo_test_io
