# Writes ${CMAKE_BINARY_DIR}/generated/sparkstack/version.h for `sparkstack --version`: the project
# version, the git revision, the build type, CUDA and its architectures, sanitizers.
#
# The revision is read at configure time; so that it stays true, configuring depends on the files
# git moves when HEAD changes (a commit or checkout then re-runs configure on the next build).
find_package(Git QUIET)
set(SPARKSTACK_GIT_REVISION "unknown")
if(GIT_FOUND)
  execute_process(COMMAND ${GIT_EXECUTABLE} rev-parse --short=12 HEAD
                  WORKING_DIRECTORY ${PROJECT_SOURCE_DIR}
                  OUTPUT_VARIABLE revision OUTPUT_STRIP_TRAILING_WHITESPACE
                  RESULT_VARIABLE revision_result ERROR_QUIET)
  if(revision_result EQUAL 0 AND revision)
    set(SPARKSTACK_GIT_REVISION "${revision}")
    execute_process(COMMAND ${GIT_EXECUTABLE} rev-parse --absolute-git-dir --symbolic-full-name HEAD
                    WORKING_DIRECTORY ${PROJECT_SOURCE_DIR}
                    OUTPUT_VARIABLE git_lines OUTPUT_STRIP_TRAILING_WHITESPACE ERROR_QUIET)
    execute_process(COMMAND ${GIT_EXECUTABLE} rev-parse --path-format=absolute --git-common-dir
                    WORKING_DIRECTORY ${PROJECT_SOURCE_DIR}
                    OUTPUT_VARIABLE git_common_dir OUTPUT_STRIP_TRAILING_WHITESPACE ERROR_QUIET)
    string(REPLACE "\n" ";" git_lines "${git_lines}")
    list(LENGTH git_lines git_line_count)
    if(git_line_count EQUAL 2)
      list(GET git_lines 0 git_dir)
      list(GET git_lines 1 head_ref)
      foreach(watched "${git_dir}/HEAD" "${git_common_dir}/${head_ref}" "${git_common_dir}/packed-refs")
        if(EXISTS "${watched}" AND NOT IS_DIRECTORY "${watched}")
          set_property(DIRECTORY ${PROJECT_SOURCE_DIR} APPEND PROPERTY CMAKE_CONFIGURE_DEPENDS "${watched}")
        endif()
      endforeach()
    endif()
  endif()
endif()

if(SPARKSTACK_WITH_CUDA)
  set(SPARKSTACK_CUDA_SUMMARY "on (architectures ${CMAKE_CUDA_ARCHITECTURES})")
else()
  set(SPARKSTACK_CUDA_SUMMARY "off (built without CUDA; configured architectures ${CMAKE_CUDA_ARCHITECTURES})")
endif()
if(SPARKSTACK_SANITIZE)
  set(SPARKSTACK_SANITIZERS "address, undefined")
else()
  set(SPARKSTACK_SANITIZERS "none")
endif()
set(SPARKSTACK_BUILD_TYPE_NAME "${CMAKE_BUILD_TYPE}")
if(NOT SPARKSTACK_BUILD_TYPE_NAME)
  set(SPARKSTACK_BUILD_TYPE_NAME "multi-config")
endif()
configure_file(${PROJECT_SOURCE_DIR}/launcher/version.h.in
               ${CMAKE_BINARY_DIR}/generated/sparkstack/version.h @ONLY)
