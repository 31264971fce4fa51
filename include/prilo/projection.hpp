// Umbrella header: the ProjectionPolicy concept and every projection policy (l1, l2, box, none).
#pragma once

#include "concepts/projection.hpp"
#include "projection/box.hpp"
#include "projection/l1_ball.hpp"
#include "projection/l2_ball.hpp"
#include "projection/none.hpp"
