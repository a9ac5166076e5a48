/// @file export.hpp
/// @brief RNNBPTT_EXPORT: marks what a shared rnnbptt library exports.
///
/// The library is compiled with hidden symbol visibility (-fvisibility=hidden), so a shared
/// build exports the declarations marked RNNBPTT_EXPORT and nothing else: the public classes,
/// the explicitly instantiated templates (float and double) and the free functions of the
/// public headers. Internal helpers, Eigen's code and the standard library's stay private to
/// the library, so they cannot clash with another copy in the program.
///
/// The build defines RNNBPTT_STATIC for a static library (and passes it on to its users
/// through CMake): the macro is then empty, and linking the static library into a user's
/// shared library exports nothing of rnnbptt. RNNBPTT_BUILDING is defined while the library
/// itself is compiled (on Windows it picks dllexport over dllimport).
#pragma once

#if defined(RNNBPTT_STATIC)
#define RNNBPTT_EXPORT
#elif defined(_WIN32) || defined(__CYGWIN__)
#if defined(RNNBPTT_BUILDING)
#define RNNBPTT_EXPORT __declspec(dllexport)
#else
#define RNNBPTT_EXPORT __declspec(dllimport)
#endif
#elif defined(__GNUC__) || defined(__clang__)
#define RNNBPTT_EXPORT __attribute__((visibility("default")))
#else
#define RNNBPTT_EXPORT
#endif
