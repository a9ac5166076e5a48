# Makes the target rnnbptt::rnnbptt available to a project built on its own (an example, the
# C++ test suite), in one of two ways:
#   -DRNNBPTT_SOURCE_DIR=<rnnbptt source tree>   compile the library with this project, as
#                                                add_subdirectory does for an embedded copy;
#   otherwise                                    find_package(rnnbptt), an installed package
#                                                (CMAKE_PREFIX_PATH or rnnbptt_DIR).
# Include it only when the target does not exist yet: inside rnnbptt's own build (the
# RNNBPTT_BUILD_TESTS and RNNBPTT_BUILD_EXAMPLES options) the target is already there.
include_guard(GLOBAL)

set(RNNBPTT_SOURCE_DIR "" CACHE PATH "Embed rnnbptt from this source tree instead of find_package")
if(RNNBPTT_SOURCE_DIR)
  # An embedded copy builds the library only: no install rules, tests or examples of its own
  # (the including project is the one being built; the test suite adds the examples itself).
  set(RNNBPTT_INSTALL OFF)
  set(RNNBPTT_BUILD_TESTS OFF)
  set(RNNBPTT_BUILD_EXAMPLES OFF)
  add_subdirectory(${RNNBPTT_SOURCE_DIR} rnnbptt)
else()
  find_package(rnnbptt 0.1 CONFIG REQUIRED)
endif()
