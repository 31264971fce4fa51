// Umbrella header for the measurement operators and the magnitude loss.
#pragma once

#include "concepts/measurement_operator.hpp"
#include "operators/compose.hpp"
#include "operators/fourier.hpp"
#include "operators/gaussian.hpp"
#include "operators/magnitude_loss.hpp"
