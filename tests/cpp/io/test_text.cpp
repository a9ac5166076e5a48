// Vocab (python/rnnbptt/data.py's Vocab over UTF-8), split_streams (data.py's
// sequential_batches) and evaluate (trainer.py's Trainer.evaluate) against hand-computed
// values and an independent double-precision loop; generate_text's composition and errors.
#include <gtest/gtest.h>

#include <rnnbptt/rnnbptt.hpp>

#include <cmath>
#include <string>
#include <vector>

namespace {

using rnnbptt::Index;
using rnnbptt::InvalidArgument;
using rnnbptt::Span;
using rnnbptt::Vocab;
using Ids = std::vector<std::int64_t>;

template <class F>
std::string error_of(F&& call) {
  try {
    call();
  } catch (const InvalidArgument& error) {
    return error.what();
  }
  return "(no error)";
}

TEST(Vocab, FromTextOrdersByCountThenFirstUse) {
  // a x5, b x2, r x2 (b first), c x1, d x1 (c first): Python's sorted(Counter, key=-count).
  EXPECT_EQ(Vocab::from_text("abracadabra").tokens(), (std::vector<std::string>{"a", "b", "r", "c", "d"}));
  EXPECT_EQ(Vocab::from_text("abracadabra", true).tokens(),
            (std::vector<std::string>{"<unk>", "a", "b", "r", "c", "d"}));
  EXPECT_EQ(Vocab::from_text("", true).tokens(), (std::vector<std::string>{"<unk>"}));
  EXPECT_NE(error_of([] { Vocab::from_text(""); }).find("text: expected at least one character"), std::string::npos);
}

TEST(Vocab, CharactersAreCodePoints) {
  // e-acute (2 bytes), the euro sign (3), a musical G clef (4), and 'e' + a combining accent.
  const std::string text =
      "\xC3\xA9\xE2\x82\xAC\xF0\x9D\x84\x9E"
      "e\xCC\x81\xC3\xA9";
  const Vocab vocab = Vocab::from_text(text);
  EXPECT_EQ(vocab.tokens(),
            (std::vector<std::string>{"\xC3\xA9", "\xE2\x82\xAC", "\xF0\x9D\x84\x9E", "e", "\xCC\x81"}));
  const Ids ids = vocab.encode(text);
  EXPECT_EQ(ids, (Ids{0, 1, 2, 3, 4, 0}));
  EXPECT_EQ(vocab.decode(ids), text);
}

TEST(Vocab, InvalidUtf8NamesTheByteOffset) {
  const Vocab vocab = Vocab::from_text("ab");
  const std::vector<std::pair<std::string, std::string>> cases = {
      {std::string("ab\x80"), "at byte offset 2"},                 // a stray continuation byte
      {std::string("a\xC3"), "cut short by the end of the text"},  // a truncated sequence
      {std::string("a\xC0\xAF"), "at byte offset 1"},              // an overlong '/'
      {std::string("\xE0\x80\xAF"), "at byte offset 0"},           // an overlong 3-byte form
      {std::string("ab\xED\xA0\x80"), "at byte offset 2"},         // a surrogate, U+D800
      {std::string("\xF4\x90\x80\x80"), "at byte offset 0"},       // above U+10FFFF
      {std::string("\xF5\x80\x80\x80"), "an invalid start byte (byte 0xF5)"},
      {std::string("a\xE2\x82"
                   "b"),
       "an invalid continuation byte"},
  };
  for (const auto& [text, expected] : cases) {
    const std::string message = error_of([&] { vocab.encode(text); });
    EXPECT_EQ(message.rfind("text: expected UTF-8 text, got ", 0), 0u) << message;
    EXPECT_NE(message.find(expected), std::string::npos) << expected << " / " << message;
    EXPECT_EQ(error_of([&] { Vocab::from_text(text); }).rfind("text: expected UTF-8", 0), 0u);
  }
  EXPECT_NE(error_of([] { Vocab({"a", "\xFF"}); }).find("tokens[1]: expected UTF-8 text"), std::string::npos);
}

TEST(Vocab, UnknownCharacters) {
  const Vocab plain = Vocab::from_text("hello");
  const std::string message = error_of([&] { plain.encode("help\xE2\x82\xAC!"); });
  EXPECT_EQ(message.rfind("text: expected characters of the vocabulary, got '!' (U+0021), 'p' (U+0070), "
                          "'\xE2\x82\xAC' (U+20AC) (the first at byte offset 3",
                          0),
            0u)
      << message;
  const Vocab with_unknown = Vocab::from_text("hello", true);
  ASSERT_TRUE(with_unknown.unknown().has_value());
  EXPECT_EQ(*with_unknown.unknown(), 0);
  EXPECT_EQ(with_unknown.encode("hex"), (Ids{with_unknown.encode("h")[0], with_unknown.encode("e")[0], 0}));
  const Ids unknown_and_l{0, 1};
  EXPECT_EQ(with_unknown.decode(unknown_and_l), "<unk>l");
  const Ids too_big{0, 4}, negative{-1};
  EXPECT_EQ(error_of([&] { plain.decode(too_big); }), "ids: expected ids in [0, 4), got 4 at index 1");
  EXPECT_EQ(error_of([&] { plain.decode(negative); }), "ids: expected ids in [0, 4), got -1 at index 0");
}

TEST(Vocab, JsonAsPythonWritesIt) {
  // json.dumps({"tokens": tokens}, ensure_ascii=False)
  const Vocab vocab({"a", "\"", "\\", "\n", "\t", std::string("\x01"), "\xC3\xA9", "\x7F", "<unk>"});
  EXPECT_EQ(
      vocab.to_json(),
      "{\"tokens\": [\"a\", \"\\\"\", \"\\\\\", \"\\n\", \"\\t\", \"\\u0001\", \"\xC3\xA9\", \"\x7F\", \"<unk>\"]}");
  EXPECT_EQ(Vocab::from_json(vocab.to_json()), vocab);
  EXPECT_EQ(Vocab::from_json("{\"tokens\": [\"\\u00e9\", \"\\ud834\\udd1e\"], \"other\": 1}").tokens(),
            (std::vector<std::string>{"\xC3\xA9", "\xF0\x9D\x84\x9E"}));
  // Python accepts tokens of several characters; encode() never produces them.
  const Vocab words({"ab", "a", "b"});
  EXPECT_EQ(words.encode("ab"), (Ids{1, 2}));
  const Ids first{0};
  EXPECT_EQ(words.decode(first), "ab");
  const std::vector<std::pair<std::string, std::string>> bad = {
      {"{\"tokens\": [", "vocab: expected JSON text"},
      {"[\"a\"]", "vocab: expected a JSON object"},
      {"{\"symbols\": [\"a\"]}", "\"tokens\" member"},
      {"{\"tokens\": [\"a\", 1]}", "got a JSON number at index 1"},
      {"{\"tokens\": []}", "tokens: expected at least one symbol"},
      {"{\"tokens\": [\"a\", \"\"]}", "tokens: expected non-empty strings, got an empty one at index 1"},
      {"{\"tokens\": [\"a\", \"b\", \"a\"]}", "tokens: expected distinct symbols, got a second \"a\" at index 2"},
      {"{\"tokens\": [\"\\ud800\"]}",
       "tokens: expected symbols that UTF-8 can encode, got the lone surrogate U+D800 at index 0"},
      {"{\"tokens\": [\"a\"], \"note\": \"\\udfff\"}",
       "vocab: expected JSON text that UTF-8 can encode, got the lone surrogate U+DFFF"},
      {"{\"tokens\": [\"a\", \"\\ud83d\\ude00\", \"\\ud83d\"]}", "lone surrogate U+D83D at index 2"},
  };
  for (const auto& [json, expected] : bad) {
    const std::string message = error_of([&] { Vocab::from_json(json); });
    EXPECT_NE(message.find(expected), std::string::npos) << json << " -> " << message;
  }
}

TEST(Streams, SplitAsSequentialBatches) {
  Ids corpus(21);
  for (Index i = 0; i < 21; ++i) corpus[static_cast<std::size_t>(i)] = i;
  // offset 1: L = (21 - 1 - 1) / 2 = 9 tokens per stream, 3 chunks of 3; stream 0 = 1..9,
  // stream 1 = 10..18; chunk 0 time-major = (1, 10), (2, 11), (3, 12).
  const rnnbptt::Streams s = rnnbptt::split_streams(corpus, 2, 3, 1);
  EXPECT_EQ(s.chunks(), 3);
  EXPECT_EQ(s.steps, 9);
  const auto x0 = s.chunk_inputs(0), y2 = s.chunk_targets(2);
  EXPECT_EQ(Ids(x0.begin(), x0.end()), (Ids{1, 10, 2, 11, 3, 12}));
  EXPECT_EQ(Ids(y2.begin(), y2.end()), (Ids{8, 17, 9, 18, 10, 19}));
  // offset 0, 4 steps: L = 10, 2 whole chunks (the last 2 steps dropped).
  const rnnbptt::Streams t = rnnbptt::split_streams(corpus, 2, 4, 0);
  EXPECT_EQ(t.chunks(), 2);
  const auto x1 = t.chunk_inputs(1);
  EXPECT_EQ(Ids(x1.begin(), x1.end()), (Ids{4, 14, 5, 15, 6, 16, 7, 17}));
  EXPECT_EQ(error_of([&] { s.chunk_inputs(3); }), "chunk_inputs: expected a chunk index in [0, 3), got 3");
  EXPECT_EQ(error_of([&] { rnnbptt::split_streams(corpus, 2, 3, 4); }),
            "offset: expected an offset in [0, num_steps] = [0, 3], got 4");
  // Python needs batch * num_steps + num_steps + 1 tokens.
  EXPECT_EQ(error_of([&] { rnnbptt::split_streams(Span<const std::int64_t>(corpus.data(), 15), 3, 4); }),
            "corpus: expected at least 3 x 4 + 4 + 1 tokens for batch = 3 and num_steps = 4, got 15");
  EXPECT_NO_THROW(rnnbptt::split_streams(Span<const std::int64_t>(corpus.data(), 17), 3, 4));
  EXPECT_NE(error_of([&] { rnnbptt::split_streams(corpus, 0, 4); }).find("batch: expected"), std::string::npos);
}

/// Mean cross-entropy of next-token prediction over `ids` as one sequence, in double, from
/// the equations (no library code): the oracle of evaluate().
double reference_loss(const rnnbptt::Model<double>& model, const Ids& ids) {
  const auto& c = model.config();
  const Index d = c.input_size, h = c.hidden_size, q = c.output_size;
  const double* p = model.parameters().data();
  const double *W_hx = p, *W_hh = p + h * d, *b_h = W_hh + h * h, *W_qh = b_h + h, *b_q = W_qh + q * h;
  std::vector<double> state(static_cast<std::size_t>(h), 0.0), next(state);
  double total = 0;
  for (std::size_t t = 0; t + 1 < ids.size(); ++t) {
    for (Index i = 0; i < h; ++i) {
      double a = W_hx[i * d + ids[t]] + b_h[i];
      for (Index j = 0; j < h; ++j) a += W_hh[i * h + j] * state[static_cast<std::size_t>(j)];
      next[static_cast<std::size_t>(i)] = std::tanh(a);
    }
    state = next;
    std::vector<double> o(static_cast<std::size_t>(q));
    double top = -INFINITY;
    for (Index k = 0; k < q; ++k) {
      o[static_cast<std::size_t>(k)] = b_q[k];
      for (Index j = 0; j < h; ++j)
        o[static_cast<std::size_t>(k)] += W_qh[k * h + j] * state[static_cast<std::size_t>(j)];
      top = std::max(top, o[static_cast<std::size_t>(k)]);
    }
    double sum = 0;
    for (double v : o) sum += std::exp(v - top);
    total += top + std::log(sum) - o[static_cast<std::size_t>(ids[t + 1])];
  }
  return total / static_cast<double>(ids.size() - 1);
}

TEST(Evaluate, CarriesTheStateAcrossChunks) {
  const Vocab vocab = Vocab::from_text("the cat sat on the mat with the hat");
  rnnbptt::ModelConfig config;
  config.input_size = config.output_size = vocab.size();
  config.hidden_size = 5;
  rnnbptt::Model<double> model(config);
  model.init_uniform(0.8, 3);
  const Ids ids = vocab.encode("the cat sat on the mat with the hat");
  const double oracle = reference_loss(model, ids);
  for (Index chunk : {1, 3, 7, 34, 512})
    EXPECT_NEAR(rnnbptt::evaluate(model, Span<const std::int64_t>(ids), chunk), oracle, 1e-12 * oracle);
  EXPECT_NE(error_of([&] {
              rnnbptt::evaluate(model, Span<const std::int64_t>(ids.data(), 1));
            }).find("corpus: expected at least 2 tokens"),
            std::string::npos);
  EXPECT_NE(error_of([&] { rnnbptt::evaluate(model, Span<const std::int64_t>(ids), 0); }).find("chunk: expected"),
            std::string::npos);
  // Streams: each stream carries its state; with one stream it is the same prediction task.
  const rnnbptt::Streams one = rnnbptt::split_streams(ids, 1, 4, 0);
  const Ids covered(ids.begin(), ids.begin() + one.steps + 1);
  EXPECT_NEAR(rnnbptt::evaluate(model, one), reference_loss(model, covered), 1e-12 * oracle);
}

TEST(GenerateText, PrefixPlusDecodedIds) {
  const Vocab vocab = Vocab::from_text("abcab cab");
  rnnbptt::ModelConfig config;
  config.input_size = config.output_size = vocab.size();
  config.hidden_size = 6;
  rnnbptt::Model<float> model(config);
  model.init_uniform(1.0, 9);
  const std::string text = rnnbptt::generate_text(model, vocab, "ab", 12);
  const Ids prefix = vocab.encode("ab");
  const Ids produced = rnnbptt::generate(model, Span<const std::int64_t>(prefix), 12);
  EXPECT_EQ(text, "ab" + vocab.decode(produced));
  EXPECT_EQ(rnnbptt::generate_text(model, vocab, "ab", 0), "ab");
  EXPECT_EQ(error_of([&] { rnnbptt::generate_text(model, vocab, "", 3); }),
            "prefix: expected at least one character, got an empty string");
  EXPECT_EQ(error_of([&] {
              rnnbptt::generate_text(model, vocab, "abz", 3);
            }).rfind("prefix: expected characters of the vocabulary, got 'z'", 0),
            0u);
  EXPECT_EQ(error_of([&] { rnnbptt::generate_text(model, Vocab::from_text("ab"), "ab", 3); }),
            "vocab: expected 4 symbols (the model's input and output size 4 and 4), got 2");
}

}  // namespace
