"""Type stubs for the compiled core (cpp/bindings)."""

from typing import Any, Optional

import numpy as np

__version__: str
isa: str

class NonFiniteError(FloatingPointError): ...

class Truncation:
    class Kind:
        full: Truncation.Kind
        regular: Truncation.Kind
        randomized: Truncation.Kind
        name: str
        value: int
    @property
    def kind(self) -> Truncation.Kind: ...
    @property
    def k1(self) -> int: ...
    @property
    def k2(self) -> int: ...
    @property
    def keep_probability(self) -> list[float]: ...
    @property
    def seed(self) -> int: ...
    @staticmethod
    def full() -> Truncation: ...
    @staticmethod
    def regular(k1: int, k2: int) -> Truncation: ...
    @staticmethod
    def randomized(pi: list[float], seed: int) -> Truncation: ...
    @staticmethod
    def parse(spec: str) -> Truncation: ...
    def check_chunk(self, steps: int, argument: str) -> None: ...
    def schedule(
        self, steps: int, step_offset: int = 0, context: int = 0
    ) -> tuple[np.ndarray, list[tuple[int, int, int]], int]: ...
    def __eq__(self, other: object) -> bool: ...
    def __hash__(self) -> int: ...

def uniform_at(seed: int, step: int) -> float: ...

class _Model:
    input_size: int
    hidden_size: int
    output_size: int
    activation: str
    bias: bool
    cell: str
    num_layers: int
    parameter_names: tuple[str, ...]
    num_parameters: int
    config_json: str
    forwards: int
    params: np.ndarray
    grads: np.ndarray
    flow: np.ndarray
    windows: list[tuple[int, int, int]]
    dh_norms: np.ndarray
    def __init__(
        self,
        input_size: int,
        hidden_size: int,
        output_size: int,
        activation: str = ...,
        bias: bool = ...,
        cell: str = ...,
        num_layers: int = ...,
    ) -> None: ...
    def state_shape(self, n: int) -> tuple[int, ...]: ...
    def param(self, name: str) -> np.ndarray: ...
    def grad(self, name: str) -> np.ndarray: ...
    def init_uniform(self, bound: float, seed: int) -> None: ...
    def init_normal(self, init_std: float, seed: int) -> None: ...
    def forward(
        self,
        x: np.ndarray,
        h0: Optional[np.ndarray] = None,
        return_states: bool = False,
        resets: Optional[np.ndarray] = None,
        lengths: Optional[np.ndarray] = None,
    ) -> tuple[np.ndarray, ...]: ...
    def loss(self, targets: np.ndarray, weights: Optional[np.ndarray] = None) -> float: ...
    def set_output_gradient(self, d_outputs: np.ndarray) -> None: ...
    def backward(
        self,
        dh_T: Optional[np.ndarray] = None,
        truncation: Truncation = ...,
        step_offset: int = 0,
        record_dh_norms: bool = False,
        dx: bool = False,
    ) -> tuple[np.ndarray, Optional[np.ndarray]]: ...

class ModelFloat32(_Model): ...
class ModelFloat64(_Model): ...

class _Stream:
    truncation: Truncation
    position: int
    memory_bytes: int
    state: Optional[np.ndarray]
    windows: list[tuple[int, int, int]]
    def __init__(self, model: _Model, truncation: Truncation) -> None: ...
    def step(
        self,
        x: np.ndarray,
        targets: np.ndarray,
        weights: Optional[np.ndarray] = None,
        resets: Optional[np.ndarray] = None,
    ) -> float: ...
    history: Optional[tuple[np.ndarray, ...]]
    def reset(
        self,
        position: int = 0,
        state: Optional[np.ndarray] = None,
        history: Optional[tuple[np.ndarray, ...]] = None,
    ) -> None: ...

class StreamFloat32(_Stream): ...
class StreamFloat64(_Stream): ...

class NonFinitePolicy:
    raise_: NonFinitePolicy
    report: NonFinitePolicy

class ClipReport:
    norm: float
    scale: float
    finite: bool

def global_norm(grads: np.ndarray) -> float: ...
def clip_grad_norm(grads: np.ndarray, max_norm: float, policy: NonFinitePolicy = ...) -> ClipReport: ...
def clip_grad_value(grads: np.ndarray, clip_value: float) -> int: ...
def spectral_radius(W_hh: np.ndarray) -> float: ...
def largest_singular_value(W_hh: np.ndarray) -> float: ...
def sgd_step(params: np.ndarray, grads: np.ndarray, lr: float, weight_decay: float = 0.0) -> None: ...

class _Adam:
    lr: float  # setting it checks it: finite and > 0 (ValueError otherwise)
    beta1: float
    beta2: float
    eps: float
    weight_decay: float
    step_count: int
    m: np.ndarray
    v: np.ndarray
    def __init__(
        self, size: int, lr: float = ..., beta1: float = ..., beta2: float = ..., eps: float = ...,
        weight_decay: float = ...,
    ) -> None: ...
    def step(self, params: np.ndarray, grads: np.ndarray) -> None: ...

class AdamFloat32(_Adam): ...
class AdamFloat64(_Adam): ...

ADAM_MAX_STEPS: int
ACTIVATIONS: tuple[str, ...]
CELLS: tuple[str, ...]

def set_num_threads(threads: int) -> None: ...
def get_num_threads() -> int: ...
def has_openmp() -> bool: ...
def simd_instruction_sets() -> str: ...

# ---- io: vocabulary, generation, checkpoints (cpp/bindings/io) ------------------------------
class Vocab:
    tokens: list[str]
    unknown: Optional[int]
    def __init__(self, tokens: list[str]) -> None: ...
    @staticmethod
    def from_text(text: str, unknown: bool = False) -> Vocab: ...
    @staticmethod
    def from_json(text: str) -> Vocab: ...
    def to_json(self) -> str: ...
    def __len__(self) -> int: ...
    def encode(self, text: str) -> np.ndarray: ...
    def decode(self, ids: np.ndarray) -> str: ...

def softmax(logits: np.ndarray, temperature: float) -> np.ndarray: ...
def generate_text(
    model: _Model, vocab: Vocab, prefix: str, length: int, temperature: float = 0.0, seed: int = 0
) -> str: ...
def split_streams(corpus: np.ndarray, batch: int, num_steps: int, offset: int = 0) -> tuple[np.ndarray, np.ndarray]: ...
def split_dense_streams(
    inputs: np.ndarray, targets: np.ndarray, batch: int, num_steps: int, offset: int = 0
) -> tuple[np.ndarray, np.ndarray]: ...

class CheckpointError(ValueError): ...

CHECKPOINT_FORMAT: str
CHECKPOINT_VERSION: int
MAX_JSON_DEPTH: int

def load_checkpoint(path: bytes) -> dict[str, Any]: ...
def save_checkpoint(
    path: bytes, model: _Model, vocab: Optional[Vocab], optimizer: dict[str, Any],
    optimizer_state: dict[str, np.ndarray], trainer: str, trainer_state: dict[str, np.ndarray],
) -> None: ...

DEFAULT_BIAS_DRAWS: int

class BiasMeasure:
    full_norm: float
    mean_norm: float
    difference_norm: float
    relative: float
    cosine: float
    standard_error: float

class ParameterBias:
    name: str
    measure: BiasMeasure

class TruncationBias:
    truncation: str
    draws: int
    loss: float
    total: BiasMeasure
    draw_relative_mean: float
    draw_relative_variance: float
    parameters: list[ParameterBias]

def truncation_bias(
    model: _Model,
    x: np.ndarray,
    targets: np.ndarray,
    truncation: Truncation,
    weights: Optional[np.ndarray] = None,
    h0: Optional[np.ndarray] = None,
    draws: int = 0,
    step_offset: int = 0,
    resets: Optional[np.ndarray] = None,
    lengths: Optional[np.ndarray] = None,
) -> TruncationBias: ...
