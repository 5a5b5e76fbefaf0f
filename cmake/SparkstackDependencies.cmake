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
find_package(Boost 1.74 REQUIRED)
find_package(prometheus-cpp CONFIG REQUIRED)
if(SPARKSTACK_BUILD_TESTS)
  find_package(GTest REQUIRED)
endif()
