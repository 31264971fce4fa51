// Grayscale PNG output: a grid of images (one per matrix column) written with stb_image_write.
#pragma once

#include "../core.hpp"
#include "file.hpp"

#include <algorithm>
#include <cerrno>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <random>
#include <string>
#include <system_error>
#include <utility>
#include <vector>

// stb_image_write, compiled privately: its functions are `static` inside
// prilo::io::detail::stbiw, so this header can be included in any number of translation
// units, and next to a program's own (global) copy of stb_image_write. The C headers it
// includes are included first, outside the namespace, so their include guards keep them out.
#include <assert.h>
#include <math.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

#pragma push_macro("INCLUDE_STB_IMAGE_WRITE_H")
#pragma push_macro("STB_IMAGE_WRITE_IMPLEMENTATION")
#pragma push_macro("STB_IMAGE_WRITE_STATIC")
#pragma push_macro("STBI_WRITE_NO_STDIO")
#pragma push_macro("STBIWDEF")
#pragma push_macro("STBIW_ASSERT")
#undef INCLUDE_STB_IMAGE_WRITE_H
#undef STBIWDEF
#undef STBIW_ASSERT
#define STB_IMAGE_WRITE_IMPLEMENTATION
#define STB_IMAGE_WRITE_STATIC
#define STBI_WRITE_NO_STDIO
#define STBIW_ASSERT(x) assert(x)
#if defined(__clang__)
#pragma clang diagnostic push
#pragma clang diagnostic ignored "-Weverything"
#elif defined(__GNUC__)
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wunused-function"
#pragma GCC diagnostic ignored "-Wunused-parameter"
#pragma GCC diagnostic ignored "-Wunused-but-set-variable"
#pragma GCC diagnostic ignored "-Wsign-compare"
#pragma GCC diagnostic ignored "-Wmissing-field-initializers"
#pragma GCC diagnostic ignored "-Wimplicit-fallthrough"
#pragma GCC diagnostic ignored "-Wpedantic"
#pragma GCC diagnostic ignored "-Wconversion"
#pragma GCC diagnostic ignored "-Wsign-conversion"
#pragma GCC diagnostic ignored "-Wdouble-promotion"
#pragma GCC diagnostic ignored "-Wold-style-cast"
#pragma GCC diagnostic ignored "-Wuseless-cast"
#pragma GCC diagnostic ignored "-Wcast-qual"
#pragma GCC diagnostic ignored "-Wshadow"
#elif defined(_MSC_VER)
#pragma warning(push, 0)
#endif
namespace prilo::io::detail::stbiw {
#include <stb/stb_image_write.h>
}  // namespace prilo::io::detail::stbiw
#if defined(__clang__)
#pragma clang diagnostic pop
#elif defined(__GNUC__)
#pragma GCC diagnostic pop
#elif defined(_MSC_VER)
#pragma warning(pop)
#endif
#undef STB_IMAGE_WRITE_IMPLEMENTATION
#undef STB_IMAGE_WRITE_STATIC
#undef STBI_WRITE_NO_STDIO
#undef STBIWDEF
#undef STBIW_ASSERT
#undef INCLUDE_STB_IMAGE_WRITE_H
#pragma pop_macro("STBIW_ASSERT")
#pragma pop_macro("STBIWDEF")
#pragma pop_macro("STBI_WRITE_NO_STDIO")
#pragma pop_macro("STB_IMAGE_WRITE_STATIC")
#pragma pop_macro("STB_IMAGE_WRITE_IMPLEMENTATION")
#pragma pop_macro("INCLUDE_STB_IMAGE_WRITE_H")

namespace prilo::io {

/// Layout of a PNG grid.
struct PngGridOptions {
  std::size_t padding = 2;  ///< pixels between neighbouring tiles (before scaling)
  std::size_t scale = 1;    ///< nearest-neighbour upscaling factor (>= 1)
  double background = 1.0;  ///< gray level of the padding and of empty tiles, in [0,1]
};

namespace detail {
/// The most pixels a written picture has per side, and so the most any factor of a side may be.
inline constexpr std::size_t png_max_side = std::size_t(1) << 15;
inline void png_collect(void* context, void* data, int size) {
  auto* out = static_cast<std::vector<unsigned char>*>(context);
  const auto* p = static_cast<const unsigned char*>(data);
  out->insert(out->end(), p, p + size);
}
}  // namespace detail

/// The sides {width, height} of the picture write_png_grid makes of a `grid_rows` x
/// `grid_cols` grid of h x w tiles with `opt`'s padding and scale; invalid_input naming the
/// factor or the side beyond the limit (32768 pixels a side). A program can call it before
/// the work whose images it will draw.
inline std::pair<std::size_t, std::size_t> png_grid_size(std::size_t h, std::size_t w, std::size_t grid_rows,
                                                         std::size_t grid_cols, const PngGridOptions& opt = {}) {
  // every factor within the side limit first, so no product below can wrap
  constexpr std::size_t max_side = detail::png_max_side;
  const auto check_side = [&](std::size_t v, const char* what) {
    if (v > max_side) prilo::detail::fail("write_png_grid: ", what, ": ", v, " is above the limit of ", max_side);
  };
  check_side(h, "image height");
  check_side(w, "image width");
  check_side(opt.padding, "padding");
  check_side(opt.scale, "scale");
  check_side(grid_rows, "grid rows");
  check_side(grid_cols, "grid columns");
  if (h == 0 || w == 0) prilo::detail::fail("write_png_grid: image size: expected h, w > 0, got ", h, "x", w);
  if (opt.scale == 0) prilo::detail::fail("write_png_grid: scale: must be at least 1");
  if (grid_rows == 0 || grid_cols == 0)
    prilo::detail::fail("write_png_grid: grid: expected at least one row and column, got ", grid_rows, "x", grid_cols);
  const std::size_t width = (grid_cols * w + (grid_cols - 1) * opt.padding) * opt.scale;
  const std::size_t height = (grid_rows * h + (grid_rows - 1) * opt.padding) * opt.scale;
  if (width > max_side || height > max_side)
    prilo::detail::fail("write_png_grid: the picture would be ", width, "x", height, " pixels (limit ", max_side,
                        " per side)");
  return {width, height};
}

/// Writes a grayscale PNG of `grid_rows` x `grid_cols` tiles: column k of `images` is an h x w
/// image (pixel (r, c) at index r*w + c, as read by read_idx_images), values clamped to
/// [0,1], placed at tile (k / grid_cols, k % grid_cols). A grid dimension of 0 is chosen
/// automatically (both 0: a near-square grid). Throws invalid_input for bad arguments
/// (shape, non-finite values, more images than tiles) and file_error when the file can't be
/// written.
template <class Derived>
void write_png_grid(const std::filesystem::path& path, const Eigen::DenseBase<Derived>& images, std::size_t h,
                    std::size_t w, std::size_t grid_rows = 0, std::size_t grid_cols = 0,
                    const PngGridOptions& opt = {}) {
  (void)png_grid_size(h, w, 1, 1, opt);  // the tile's factors, before h * w
  require_shape(images, static_cast<Eigen::Index>(h * w), images.cols(), "write_png_grid: images");
  require_finite(images, "write_png_grid: images");
  if (!(opt.background >= 0.0 && opt.background <= 1.0))
    prilo::detail::fail("write_png_grid: background: expected a value in [0,1], got ", opt.background);
  const std::size_t n = static_cast<std::size_t>(images.cols());
  if (grid_rows == 0 && grid_cols == 0) {
    grid_cols = std::max<std::size_t>(1, static_cast<std::size_t>(std::ceil(std::sqrt(static_cast<double>(n)))));
    grid_rows = std::max<std::size_t>(1, (n + grid_cols - 1) / grid_cols);
  } else if (grid_rows == 0) {
    grid_rows = std::max<std::size_t>(1, (n + grid_cols - 1) / grid_cols);
  } else if (grid_cols == 0) {
    grid_cols = std::max<std::size_t>(1, (n + grid_rows - 1) / grid_rows);
  }
  const auto [width, height] = png_grid_size(h, w, grid_rows, grid_cols, opt);
  if (n > grid_rows * grid_cols)
    prilo::detail::fail("write_png_grid: images: ", n, " images do not fit a ", grid_rows, "x", grid_cols, " grid");

  const std::size_t s = opt.scale;

  auto to_byte = [](double v) { return static_cast<unsigned char>(std::lround(std::clamp(v, 0.0, 1.0) * 255.0)); };
  std::vector<unsigned char> pixels(width * height, to_byte(opt.background));
  for (std::size_t k = 0; k < n; ++k) {
    const std::size_t y0 = (k / grid_cols) * (h + opt.padding) * s;
    const std::size_t x0 = (k % grid_cols) * (w + opt.padding) * s;
    for (std::size_t r = 0; r < h; ++r)
      for (std::size_t c = 0; c < w; ++c) {
        const unsigned char b =
            to_byte(static_cast<double>(images(static_cast<Eigen::Index>(r * w + c), static_cast<Eigen::Index>(k))));
        for (std::size_t dy = 0; dy < s; ++dy)
          std::fill_n(pixels.begin() + static_cast<std::ptrdiff_t>((y0 + r * s + dy) * width + x0 + c * s), s, b);
      }
  }

  std::vector<unsigned char> png;
  if (!detail::stbiw::stbi_write_png_to_func(&detail::png_collect, &png, static_cast<int>(width),
                                             static_cast<int>(height), 1, pixels.data(), static_cast<int>(width)))
    throw file_error(path.string() + ": PNG encoding failed");

  detail::write_file_atomic(path, png.data(), png.size());
}

/// Writes one h x w image (a vector of h*w values, pixel r*w + c) as a grayscale PNG. A matrix
/// that is not a vector is refused (its column-major values would come out transposed).
template <class Derived>
void write_png(const std::filesystem::path& path, const Eigen::DenseBase<Derived>& image, std::size_t h, std::size_t w,
               std::size_t scale = 1) {
  if (image.rows() != 1 && image.cols() != 1)
    prilo::detail::fail("write_png: image: expected a vector of h*w values (pixel r*w + c), got a ", image.rows(), "x",
                        image.cols(), " matrix");
  if (h > detail::png_max_side || w > detail::png_max_side)
    prilo::detail::fail("write_png: image size ", h, "x", w, " is above the limit of ", detail::png_max_side,
                        " per side");
  if (image.size() != static_cast<Eigen::Index>(h * w))
    prilo::detail::fail("write_png: image: expected ", h * w, " values (", h, "x", w, "), got ", image.size());
  const auto column = image.reshaped(static_cast<Eigen::Index>(h * w), 1);
  write_png_grid(path, column, h, w, 1, 1, PngGridOptions{0, scale, 1.0});
}

}  // namespace prilo::io
