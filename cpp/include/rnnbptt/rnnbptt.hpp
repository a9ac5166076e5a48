/// @file rnnbptt.hpp
/// @brief rnnbptt: recurrent networks (Elman, GRU, LSTM, stacked) trained with exact, truncated
/// and randomized backpropagation through time. The umbrella header: includes every public header.
#pragma once

#include "rnnbptt/bptt/model.hpp"
#include "rnnbptt/bptt/stream.hpp"
#include "rnnbptt/bptt/truncation.hpp"
#include "rnnbptt/bptt/workspace.hpp"
#include "rnnbptt/core/buffer.hpp"
#include "rnnbptt/core/config.hpp"
#include "rnnbptt/core/error.hpp"
#include "rnnbptt/core/export.hpp"
#include "rnnbptt/core/params.hpp"
#include "rnnbptt/core/random.hpp"
#include "rnnbptt/core/sequence.hpp"
#include "rnnbptt/core/span.hpp"
#include "rnnbptt/io/checkpoint.hpp"
#include "rnnbptt/io/inference.hpp"
#include "rnnbptt/io/text.hpp"
#include "rnnbptt/kernels/threads.hpp"
#include "rnnbptt/train/bias.hpp"
#include "rnnbptt/train/clip.hpp"
#include "rnnbptt/train/data.hpp"
#include "rnnbptt/train/diagnostics.hpp"
#include "rnnbptt/train/optim.hpp"
#include "rnnbptt/version.hpp"
