# Resolves SPARKSTACK_CUDA (AUTO/ON/OFF) into SPARKSTACK_WITH_CUDA and enables the CUDA language.
if(NOT SPARKSTACK_CUDA MATCHES "^(AUTO|ON|OFF)$")
  message(FATAL_ERROR "SPARKSTACK_CUDA must be AUTO, ON or OFF, not '${SPARKSTACK_CUDA}'")
endif()

set(SPARKSTACK_WITH_CUDA OFF)
if(NOT SPARKSTACK_CUDA STREQUAL "OFF")
  if(NOT CMAKE_CUDA_COMPILER AND EXISTS /usr/local/cuda/bin/nvcc)
    set(CMAKE_CUDA_COMPILER /usr/local/cuda/bin/nvcc)
  endif()
  include(CheckLanguage)
  check_language(CUDA)
  if(CMAKE_CUDA_COMPILER)
    enable_language(CUDA)
    find_package(CUDAToolkit REQUIRED)
    set(SPARKSTACK_WITH_CUDA ON)
  elseif(SPARKSTACK_CUDA STREQUAL "ON")
    message(FATAL_ERROR "SPARKSTACK_CUDA=ON but no CUDA compiler (nvcc) was found")
  endif()
endif()
message(STATUS "sparkstack: CUDA ${SPARKSTACK_WITH_CUDA} (archs: ${CMAKE_CUDA_ARCHITECTURES})")

# sparkstack_ptxas_check(TARGET <library> BUDGET_TOOL <executable>
#                        [PTX_SOURCE <file.cu> PTX_ARCH <arch> PTX_EXPECT <text>])
# A build check of the CUDA kernels of <library>: its .cu objects keep their `ptxas -v` report
# (<object>.ptxas.txt, written by the compiler launcher cmake/ptxas_capture.cmake, so nothing is
# compiled twice), and the target <library>_ptxas_check (part of `all`; its ctest test comes from
# sparkstack_add_ptxas_check_test) runs cmake/ptxas_check.cmake over them. It fails when a
# kernel spills registers, when an entry function's static shared memory plus the dynamic shared
# memory BUDGET_TOOL lists for it exceeds 101,376 bytes (GB10's limit per block), or when the
# compute_<PTX_ARCH> PTX of PTX_SOURCE does not contain PTX_EXPECT. BUDGET_TOOL writes
# "<mangled-name fragment> <bytes>" lines to the file named by its argument.
function(sparkstack_ptxas_check)
  cmake_parse_arguments(ARG "" "TARGET;BUDGET_TOOL;PTX_SOURCE;PTX_ARCH;PTX_EXPECT" "" ${ARGN})
  set(dir ${CMAKE_CURRENT_BINARY_DIR}/${ARG_TARGET}_ptxas)
  target_compile_options(${ARG_TARGET} PRIVATE $<$<COMPILE_LANGUAGE:CUDA>:-Xptxas=-v>)
  set_property(TARGET ${ARG_TARGET} PROPERTY CUDA_COMPILER_LAUNCHER
    ${CMAKE_COMMAND} -P ${PROJECT_SOURCE_DIR}/cmake/ptxas_capture.cmake -- ${CMAKE_CUDA_COMPILER_LAUNCHER})

  add_custom_command(OUTPUT ${dir}/smem_budget.txt
    COMMAND ${CMAKE_COMMAND} -E make_directory ${dir}
    COMMAND ${ARG_BUDGET_TOOL} ${dir}/smem_budget.txt
    DEPENDS ${ARG_BUDGET_TOOL}
    COMMENT "Dynamic shared memory of the kernels of ${ARG_TARGET}"
    VERBATIM)
  set(check_args
    -DREPORTS=$<JOIN:$<TARGET_OBJECTS:${ARG_TARGET}>,|> -DBUDGET=${dir}/smem_budget.txt
    -DLIMIT=101376)
  set(check_depends ${ARG_TARGET} ${dir}/smem_budget.txt)
  if(ARG_PTX_SOURCE)
    get_filename_component(ptx_name ${ARG_PTX_SOURCE} NAME_WE)
    set(ptx ${dir}/${ptx_name}.compute_${ARG_PTX_ARCH}.ptx)
    file(GLOB_RECURSE ptx_headers CONFIGURE_DEPENDS ${PROJECT_SOURCE_DIR}/kernels/*.h
         ${PROJECT_SOURCE_DIR}/kernels/*.cuh)
    add_custom_command(OUTPUT ${ptx}
      COMMAND ${CMAKE_COMMAND} -E make_directory ${dir}
      COMMAND ${CMAKE_CUDA_COMPILER} -ptx -std=c++17 --expt-relaxed-constexpr
              -I${PROJECT_SOURCE_DIR} -arch=compute_${ARG_PTX_ARCH} -o ${ptx}
              ${CMAKE_CURRENT_SOURCE_DIR}/${ARG_PTX_SOURCE}
      DEPENDS ${ARG_PTX_SOURCE} ${ptx_headers}
      COMMENT "PTX of ${ARG_PTX_SOURCE} for compute_${ARG_PTX_ARCH}"
      VERBATIM)
    list(APPEND check_args -DPTX=${ptx} -DPTX_EXPECT=${ARG_PTX_EXPECT})
    list(APPEND check_depends ${ptx})
  endif()
  add_custom_command(OUTPUT ${dir}/check.stamp
    COMMAND ${CMAKE_COMMAND} ${check_args} -DSTAMP=${dir}/check.stamp
            -P ${PROJECT_SOURCE_DIR}/cmake/ptxas_check.cmake
    DEPENDS ${check_depends} ${PROJECT_SOURCE_DIR}/cmake/ptxas_check.cmake
    COMMENT "ptxas check of ${ARG_TARGET}: spills, shared memory, FP4 MMA in the PTX"
    VERBATIM)
  add_custom_target(${ARG_TARGET}_ptxas_check ALL DEPENDS ${dir}/check.stamp)
  set_property(TARGET ${ARG_TARGET}_ptxas_check PROPERTY SPARKSTACK_PTXAS_CHECK_ARGS ${check_args})
endfunction()

# sparkstack_add_ptxas_check_test(<library>): the ctest test <library>_ptxas_check (labels cuda,
# build_check) that reruns the check of sparkstack_ptxas_check(TARGET <library> ...) on the built
# objects; called from tests/, where testing is enabled.
function(sparkstack_add_ptxas_check_test library)
  get_property(check_args TARGET ${library}_ptxas_check PROPERTY SPARKSTACK_PTXAS_CHECK_ARGS)
  add_test(NAME ${library}_ptxas_check
           COMMAND ${CMAKE_COMMAND} ${check_args} -P ${PROJECT_SOURCE_DIR}/cmake/ptxas_check.cmake)
  set_tests_properties(${library}_ptxas_check PROPERTIES LABELS "cuda;build_check")
endfunction()
