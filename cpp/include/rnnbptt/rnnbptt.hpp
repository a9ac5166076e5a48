// rnnbptt: an Elman RNN with exact, truncated and randomized backpropagation through time.
#pragma once

#include "rnnbptt/clip.hpp"
#include "rnnbptt/config.hpp"
#include "rnnbptt/diagnostics.hpp"
#include "rnnbptt/error.hpp"
#include "rnnbptt/optim.hpp"
#include "rnnbptt/params.hpp"
#include "rnnbptt/rnn.hpp"
#include "rnnbptt/sequence.hpp"
#include "rnnbptt/stream.hpp"
#include "rnnbptt/threads.hpp"
#include "rnnbptt/truncation.hpp"
#include "rnnbptt/version.hpp"
#include "rnnbptt/workspace.hpp"
