// Placeholder: the aggregation feature tests are being written.
#include <catch2/catch.hpp>
