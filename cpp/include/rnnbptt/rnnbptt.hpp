/// @file rnnbptt.hpp
/// @brief rnnbptt: an Elman RNN with exact, truncated and randomized backpropagation through
/// time. The umbrella header: includes every public header of the library.
#pragma once

#include "rnnbptt/buffer.hpp"
#include "rnnbptt/checkpoint.hpp"
#include "rnnbptt/clip.hpp"
#include "rnnbptt/config.hpp"
#include "rnnbptt/data.hpp"
#include "rnnbptt/diagnostics.hpp"
#include "rnnbptt/error.hpp"
#include "rnnbptt/export.hpp"
#include "rnnbptt/inference.hpp"
#include "rnnbptt/optim.hpp"
#include "rnnbptt/params.hpp"
#include "rnnbptt/rnn.hpp"
#include "rnnbptt/sequence.hpp"
#include "rnnbptt/span.hpp"
#include "rnnbptt/stream.hpp"
#include "rnnbptt/text.hpp"
#include "rnnbptt/threads.hpp"
#include "rnnbptt/truncation.hpp"
#include "rnnbptt/version.hpp"
#include "rnnbptt/workspace.hpp"
