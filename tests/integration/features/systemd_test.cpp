// Placeholder: the systemd feature tests are being written.
#include <catch2/catch.hpp>
