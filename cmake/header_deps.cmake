# The JSON, command-line and formatting libraries come from Debian's packages
# (nlohmann-json3-dev, libcli11-dev, libfmt-dev). A machine without them, such
# as the GPU machine, can use a folder holding their headers instead:
# -DSMX_HEADER_DEPS_DIR=DIR with DIR/nlohmann, DIR/CLI and DIR/fmt
# (bench/gpu/stage-deps.sh copies them there from this machine's packages).
# fmt is then compiled header-only.
set(SMX_HEADER_DEPS_DIR "" CACHE PATH "folder with nlohmann/, CLI/ and fmt/ headers, instead of their CMake packages")
if(SMX_HEADER_DEPS_DIR)
  foreach(dir nlohmann CLI fmt)
    if(NOT EXISTS "${SMX_HEADER_DEPS_DIR}/${dir}")
      message(FATAL_ERROR "SMX_HEADER_DEPS_DIR=${SMX_HEADER_DEPS_DIR} has no ${dir}/ (run bench/gpu/stage-deps.sh)")
    endif()
  endforeach()
  foreach(target nlohmann_json::nlohmann_json CLI11::CLI11 fmt::fmt)
    add_library(${target} INTERFACE IMPORTED GLOBAL)
    set_target_properties(${target} PROPERTIES INTERFACE_INCLUDE_DIRECTORIES "${SMX_HEADER_DEPS_DIR}"
                                               INTERFACE_SYSTEM_INCLUDE_DIRECTORIES "${SMX_HEADER_DEPS_DIR}")
  endforeach()
  set_target_properties(fmt::fmt PROPERTIES INTERFACE_COMPILE_DEFINITIONS FMT_HEADER_ONLY)
  message(STATUS "JSON, CLI11 and fmt headers from ${SMX_HEADER_DEPS_DIR}")
endif()
