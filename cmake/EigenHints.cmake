# Where Eigen may be: a system install needs no hint; PyPI's cmeel-eigen installs its
# Eigen3Config.cmake under <site-packages>/cmeel.prefix, and scikit-build-core puts the build
# environment's site-packages on CMAKE_PREFIX_PATH. For a plain CMake build the caller can
# pass -DCMAKE_PREFIX_PATH="$(python -m cmeel cmake)".
set(RNNBPTT_EIGEN_HINTS "")
foreach(entry IN LISTS CMAKE_PREFIX_PATH)
  list(APPEND RNNBPTT_EIGEN_HINTS "${entry}/cmeel.prefix")
endforeach()
