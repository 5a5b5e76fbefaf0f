# Every dependency comes from the distribution (deploy/install-deps.sh installs them by name).
find_package(absl REQUIRED)
find_package(nlohmann_json 3.10 REQUIRED)
find_package(Threads REQUIRED)
find_package(PkgConfig REQUIRED)
find_package(CLI11 CONFIG REQUIRED)
find_package(spdlog REQUIRED)
pkg_check_modules(RE2 REQUIRED IMPORTED_TARGET re2)
# gRPC and Protobuf (control plane and inference API); protoc and grpc_cpp_plugin generate proto/.
find_package(Protobuf REQUIRED)
find_package(gRPC CONFIG REQUIRED)
# The HTTP API: Boost.Beast/Asio (header-only) and prometheus-cpp for /metrics.
if(CMAKE_CROSSCOMPILING)
  # The aarch64 cross build (.ci/cross-aarch64.sh) builds the CPU libraries and their tests only;
  # Debian's prometheus-cpp-dev is not multiarch, so the API servers are left out there.
  find_package(Boost 1.74 QUIET)
  find_package(prometheus-cpp CONFIG QUIET)
else()
  find_package(Boost 1.74 REQUIRED)
  find_package(prometheus-cpp CONFIG REQUIRED)
endif()
if(SPARKSTACK_BUILD_TESTS)
  find_package(GTest REQUIRED)
endif()
