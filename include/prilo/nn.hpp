// Umbrella header for the neural-network layers, containers and the VAE.
#pragma once

#include "concepts/generator.hpp"
#include "nn/activations.hpp"
#include "nn/batchnorm.hpp"
#include "nn/conv.hpp"
#include "nn/conv_vae.hpp"
#include "nn/linear.hpp"
#include "nn/parameter.hpp"
#include "nn/resample.hpp"
#include "nn/sequential.hpp"
#include "nn/style.hpp"
#include "nn/style_vae.hpp"
#include "nn/vae.hpp"
