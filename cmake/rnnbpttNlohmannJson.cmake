# nlohmann_json >= 3.11: a private, build-only dependency (header-only; io/checkpoint/ and
# text.cpp parse JSON with it). Nothing installed needs it: the library links it through
# $<BUILD_INTERFACE:...>, so the exported targets and rnnbpttConfig.cmake do not mention it.
#
# Found in this order:
#   1. -DRNNBPTT_NLOHMANN_JSON_INCLUDE_DIR=<folder holding nlohmann/json.hpp>, when given;
#   2. find_package(nlohmann_json 3.11 CONFIG): Debian's nlohmann-json3-dev, vcpkg, conda, ...
#      (-DCMAKE_DISABLE_FIND_PACKAGE_nlohmann_json=ON skips it);
#   3. PyPI's nlohmann-json package (headers only, no CMake config; pyproject.toml's build
#      requirements and the test extra bring it): asked to the build's Python interpreter
#      (scikit-build-core's Python_EXECUTABLE, else -DPython3_EXECUTABLE=..., else the one
#      find_package(Python3) finds), then looked for in the site-packages folders that
#      CMAKE_PREFIX_PATH points into (scikit-build-core's build environment; cmeel's
#      <site-packages>/cmeel.prefix, which the tests pass for Eigen), then in system folders.
# Defines the imported INTERFACE target rnnbptt_nlohmann_json and RNNBPTT_NLOHMANN_JSON_SOURCE
# (what was used, for the configure log).
include_guard(DIRECTORY)

set(RNNBPTT_NLOHMANN_JSON_INCLUDE_DIR "" CACHE PATH
    "Folder holding nlohmann/json.hpp (>= 3.11); empty: find it (CMake package, then PyPI's nlohmann-json)")

# The version of the headers in `dir`, or "" when it cannot be read.
function(_rnnbptt_nlohmann_json_version dir out)
  set(version "")
  foreach(file IN ITEMS nlohmann/detail/abi_macros.hpp nlohmann/json.hpp)
    if(EXISTS "${dir}/${file}")
      file(STRINGS "${dir}/${file}" lines REGEX "^#define NLOHMANN_JSON_VERSION_(MAJOR|MINOR|PATCH) +[0-9]+")
      foreach(part IN ITEMS MAJOR MINOR PATCH)
        string(REGEX MATCH "NLOHMANN_JSON_VERSION_${part} +([0-9]+)" _ "${lines}")
        set(${part} "${CMAKE_MATCH_1}")
      endforeach()
      if(NOT MAJOR STREQUAL "" AND NOT MINOR STREQUAL "")
        set(version "${MAJOR}.${MINOR}.${PATCH}")
        break()
      endif()
    endif()
  endforeach()
  set(${out} "${version}" PARENT_SCOPE)
endfunction()

set(_rnnbptt_json_dir "")
set(RNNBPTT_NLOHMANN_JSON_SOURCE "")
if(RNNBPTT_NLOHMANN_JSON_INCLUDE_DIR)
  if(NOT EXISTS "${RNNBPTT_NLOHMANN_JSON_INCLUDE_DIR}/nlohmann/json.hpp")
    message(FATAL_ERROR "RNNBPTT_NLOHMANN_JSON_INCLUDE_DIR: expected a folder holding nlohmann/json.hpp, "
                        "got ${RNNBPTT_NLOHMANN_JSON_INCLUDE_DIR}")
  endif()
  set(_rnnbptt_json_dir "${RNNBPTT_NLOHMANN_JSON_INCLUDE_DIR}")
  set(RNNBPTT_NLOHMANN_JSON_SOURCE "RNNBPTT_NLOHMANN_JSON_INCLUDE_DIR")
else()
  find_package(nlohmann_json 3.11 CONFIG QUIET)
  if(TARGET nlohmann_json::nlohmann_json)
    set(RNNBPTT_NLOHMANN_JSON_SOURCE "CMake package ${nlohmann_json_DIR} (version ${nlohmann_json_VERSION})")
  else()
    # PyPI's package, through the interpreter of this build.
    set(_rnnbptt_python "")
    if(Python_EXECUTABLE)
      set(_rnnbptt_python "${Python_EXECUTABLE}")
    elseif(Python3_EXECUTABLE)
      set(_rnnbptt_python "${Python3_EXECUTABLE}")
    else()
      find_package(Python3 COMPONENTS Interpreter QUIET)
      if(Python3_Interpreter_FOUND)
        set(_rnnbptt_python "${Python3_EXECUTABLE}")
      endif()
    endif()
    if(_rnnbptt_python)
      execute_process(
        COMMAND "${_rnnbptt_python}" -c "import nlohmann_json; print(nlohmann_json.get_include())"
        RESULT_VARIABLE _rnnbptt_rc OUTPUT_VARIABLE _rnnbptt_out ERROR_QUIET OUTPUT_STRIP_TRAILING_WHITESPACE)
      if(_rnnbptt_rc EQUAL 0 AND EXISTS "${_rnnbptt_out}/nlohmann/json.hpp")
        set(_rnnbptt_json_dir "${_rnnbptt_out}")
        set(RNNBPTT_NLOHMANN_JSON_SOURCE "PyPI's nlohmann-json through ${_rnnbptt_python}")
      endif()
    endif()
    if(NOT _rnnbptt_json_dir)
      set(_rnnbptt_hints "")
      foreach(entry IN LISTS CMAKE_PREFIX_PATH)
        list(APPEND _rnnbptt_hints "${entry}/nlohmann_json/include" "${entry}/../nlohmann_json/include")
      endforeach()
      find_path(RNNBPTT_NLOHMANN_JSON_FOUND_DIR nlohmann/json.hpp HINTS ${_rnnbptt_hints}
                DOC "Where nlohmann/json.hpp was found (PyPI's nlohmann-json or a system folder)")
      mark_as_advanced(RNNBPTT_NLOHMANN_JSON_FOUND_DIR)
      if(RNNBPTT_NLOHMANN_JSON_FOUND_DIR)
        set(_rnnbptt_json_dir "${RNNBPTT_NLOHMANN_JSON_FOUND_DIR}")
        set(RNNBPTT_NLOHMANN_JSON_SOURCE "headers found in ${RNNBPTT_NLOHMANN_JSON_FOUND_DIR}")
      endif()
    endif()
  endif()
endif()

if(NOT TARGET nlohmann_json::nlohmann_json AND NOT _rnnbptt_json_dir)
  message(FATAL_ERROR
    "rnnbptt needs nlohmann_json >= 3.11 to build (header-only, build time only). Any one of:\n"
    "  - Debian/Ubuntu: apt-get install nlohmann-json3-dev (or another install with its CMake package);\n"
    "  - pip install nlohmann-json into the Python this build uses, and pass -DPython3_EXECUTABLE=<that python>\n"
    "    if CMake finds another one;\n"
    "  - -DRNNBPTT_NLOHMANN_JSON_INCLUDE_DIR=<folder holding nlohmann/json.hpp>.")
endif()

add_library(rnnbptt_nlohmann_json INTERFACE IMPORTED)
if(TARGET nlohmann_json::nlohmann_json)
  target_link_libraries(rnnbptt_nlohmann_json INTERFACE nlohmann_json::nlohmann_json)
else()
  _rnnbptt_nlohmann_json_version("${_rnnbptt_json_dir}" _rnnbptt_json_version)
  if(_rnnbptt_json_version STREQUAL "")
    message(FATAL_ERROR "nlohmann_json: cannot read the version of ${_rnnbptt_json_dir}/nlohmann/json.hpp")
  elseif(_rnnbptt_json_version VERSION_LESS 3.11)
    message(FATAL_ERROR "nlohmann_json: expected version 3.11 or later, got ${_rnnbptt_json_version} in "
                        "${_rnnbptt_json_dir} (${RNNBPTT_NLOHMANN_JSON_SOURCE})")
  endif()
  set(RNNBPTT_NLOHMANN_JSON_SOURCE "${RNNBPTT_NLOHMANN_JSON_SOURCE} (version ${_rnnbptt_json_version})")
  set_target_properties(rnnbptt_nlohmann_json PROPERTIES INTERFACE_INCLUDE_DIRECTORIES "${_rnnbptt_json_dir}")
endif()
message(STATUS "rnnbptt: nlohmann_json from ${RNNBPTT_NLOHMANN_JSON_SOURCE}")
