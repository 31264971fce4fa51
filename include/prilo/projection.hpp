// Umbrella header: the ProjectionPolicy concept and every projection policy (l1, l2, box, none).
#pragma once

#include <prilo/concepts/projection.hpp>
#include <prilo/projection/box.hpp>
#include <prilo/projection/l1_ball.hpp>
#include <prilo/projection/l2_ball.hpp>
#include <prilo/projection/none.hpp>
