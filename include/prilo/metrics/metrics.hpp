// Umbrella header for prilo::metrics: PSNR, SSIM, summary statistics and shift/reflection alignment.
#pragma once

#include "prilo/metrics/align.hpp"
#include "prilo/metrics/psnr.hpp"
#include "prilo/metrics/ssim.hpp"
#include "prilo/metrics/stats.hpp"
