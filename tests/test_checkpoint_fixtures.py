"""Every checkpoint an earlier rnnbptt wrote still loads (tests/data/checkpoints/README.md
says which version wrote each): its parameters are the file's tensors as the safetensors
package reads them, the model computes what the NumPy reference computes with them, and the
trainer's files resume and train on."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

import rnnbptt as rb
from rnnbptt import checkpoint as ckpt
from rnnbptt import reference

FIXTURES = Path(__file__).resolve().parent / "data" / "checkpoints"
FILES = sorted(FIXTURES.glob("*.safetensors"))
TRAINER_FILES = [p for p in FILES if p.name.startswith(("v1-python", "v2-python-adam", "v2-python-sgd"))]


def test_the_fixtures_are_there():
    assert len(FILES) == 7 and len(TRAINER_FILES) == 4


@pytest.mark.parametrize("path", FILES, ids=lambda p: p.stem)
def test_an_earlier_checkpoint_loads_with_its_tensors(path):
    from safetensors import safe_open

    loaded = ckpt.load(path)
    with safe_open(str(path), framework="numpy") as f:
        for name, value in loaded.model.named_parameters().items():
            stored = f.get_tensor(name)
            assert stored.dtype == value.dtype and np.array_equal(stored, value), name
        if loaded.optimizer_state:
            for name, value in loaded.optimizer_state.items():
                assert np.array_equal(f.get_tensor(f"optimizer.{name}"), value), name
    model = loaded.model
    rng = np.random.default_rng(0)
    x = rng.integers(0, model.input_size, (6, 2))
    outputs, _ = model.forward(x)
    params = {name: value.astype(np.float64) for name, value in model.named_parameters().items()}
    _, expected = reference.forward(params, x, activation=model.config()["activation"])
    tolerance = 1e-5 if model.dtype == np.float32 else 1e-12
    assert np.allclose(outputs, np.stack([o.T for o in expected]), rtol=tolerance, atol=tolerance)


@pytest.mark.parametrize("path", TRAINER_FILES, ids=lambda p: p.stem)
def test_an_earlier_trainer_checkpoint_resumes_and_trains_on(path, tmp_path):
    loaded = ckpt.load(path)
    trainer = rb.Trainer.resume(path)
    assert (trainer.epoch, trainer.step) == (loaded.trainer["epoch"], loaded.trainer["step"])
    text = (FIXTURES / "text.txt").read_text(encoding="utf-8")
    vocab = trainer.vocab
    assert vocab is not None
    corpus = vocab.encode(text if "\n" in vocab.tokens else text.rstrip("\n"))
    before = trainer.model.params.copy()
    records = trainer.fit(corpus, trainer.epoch + 1, checkpoint=tmp_path / "next.safetensors")
    assert records and all(np.isfinite(r.train_perplexity) for r in records)
    assert not np.array_equal(before, trainer.model.params)
    again = ckpt.load(tmp_path / "next.safetensors")  # written in today's format
    assert np.array_equal(again.model.params, trainer.model.params)


@pytest.mark.parametrize("path", FILES, ids=lambda p: p.stem)
def test_saving_a_loaded_checkpoint_keeps_everything(path, tmp_path):
    loaded = ckpt.load(path)
    again = ckpt.load(ckpt.save(tmp_path / path.name, loaded))
    assert again.model.config() == loaded.model.config()
    assert np.array_equal(again.model.params, loaded.model.params)
    assert again.optimizer == loaded.optimizer and again.trainer == loaded.trainer
    for name, value in loaded.trainer_state.items():
        assert np.array_equal(again.trainer_state[name], value), name
    assert (again.vocab is None) == (loaded.vocab is None)
    if loaded.vocab is not None and again.vocab is not None:
        assert again.vocab.tokens == loaded.vocab.tokens
