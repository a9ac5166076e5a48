"""How the v2-python-* checkpoints here were written (at commit a31a678; run in this folder).
Kept as their provenance: running it today gives other files (initial weights differ)."""

import numpy as np

import rnnbptt as rb
from rnnbptt import checkpoint as ckpt
from rnnbptt.data import Vocab

text = "the quick brown fox jumps over the lazy dog. " * 12
vocab = Vocab.from_text(text)
corpus = vocab.encode(text)
# 1. Adam, float32, Regular(2, 4) stopped mid-epoch: runner state and history tensors.
m = rb.RNN(len(vocab), 8, len(vocab), seed=1)
t = rb.Trainer(m, vocab=vocab, optimizer="adam", lr=0.01, truncation="regular:2,4", batch_size=3, num_steps=4, seed=2)
t.fit(corpus, steps=7)
t.save("v2-python-adam-regular-midepoch.safetensors")
# 2. SGD, float64, randomized truncation, at an epoch boundary, d2l init.
m = rb.RNN(len(vocab), 6, len(vocab), dtype=np.float64, seed=3, init_std=0.1)
t = rb.Trainer(m, vocab=vocab, optimizer="sgd", lr=0.5, truncation="randomized:0.7,seed=5", batch_size=2,
               num_steps=5, seed=4)
t.fit(corpus, epochs=2)
t.save("v2-python-sgd-float64-epoch.safetensors")
# 3. A model alone: relu, no bias, float64, dense sizes, no vocab, no trainer.
m = rb.RNN(3, 5, 2, activation="relu", bias=False, dtype=np.float64, seed=6)
ckpt.save("v2-python-model-relu-nobias.safetensors", ckpt.Checkpoint(model=m))
