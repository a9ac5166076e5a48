"""Data-parallel training on several processes over MPI (the ``mpi`` extra: mpi4py and an MPI).

Every process holds the whole model and a contiguous share of the batch's sequences; after
backward, one in-place allreduce of the flat gradient buffer (``model.grads``, a NumPy view of
the C++ buffer, not copied) sums the shares, each scaled by its share of the batch, so that
every process holds the gradient of the whole batch. Clipping and the optimizer step then run
on every process on identical numbers, so the parameters stay identical without being sent.
See :class:`rnnbptt.Trainer` (its ``comm`` argument) and ``docs/scaling.md``.

Nothing here imports mpi4py until it is needed: without the extra, rnnbptt works as before,
and asking for MPI raises an ``ImportError`` that says how to install it.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import pickle
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any, Optional

import numpy as np

INSTALL = 'install the mpi extra: pip install "rnnbptt[mpi]" (pip install ".[mpi]" in a source tree)'

#: The environment variables through which launchers tell each process how many processes the
#: job has and which one it is, in the order they are read: ``(size, rank, launcher)``. Open
#: MPI's mpirun; MPICH's and Intel MPI's Hydra (``mpiexec``, also Slurm's ``srun --mpi=pmi2``);
#: MVAPICH; and Slurm's srun, which counts only inside a job step (:func:`launched`).
LAUNCHERS = (
    ("OMPI_COMM_WORLD_SIZE", "OMPI_COMM_WORLD_RANK", "mpirun"),
    ("PMI_SIZE", "PMI_RANK", "mpiexec"),
    ("MV2_COMM_WORLD_SIZE", "MV2_COMM_WORLD_RANK", "mpirun"),
    ("SLURM_STEP_NUM_TASKS", "SLURM_PROCID", "srun"),
    ("SLURM_NTASKS", "SLURM_PROCID", "srun"),
)

#: Every variable that can give the job's size (:data:`LAUNCHERS`).
LAUNCHER_SIZE_VARIABLES = tuple(size for size, _, _ in LAUNCHERS)

#: Slurm's job step ids from this one up are its special steps (the batch script, the extern
#: step, salloc's interactive step), not tasks that srun started.
SLURM_SPECIAL_STEPS = 0xFFFFFFF0

#: Debug mode: every N optimizer steps, compare a hash of every process's parameters and
#: optimizer state (see :meth:`DataParallel.check_replicas`).
CHECK_VARIABLE = "RNNBPTT_CHECK_REPLICAS"


def import_mpi() -> Any:
    """``mpi4py.MPI``, or an ImportError that says how to install it."""
    try:
        from mpi4py import MPI
    except (ImportError, RuntimeError, OSError) as error:  # mpi4py absent, or no MPI library found
        raise ImportError(f"MPI: mpi4py or an MPI library is missing ({error}); {INSTALL}") from None
    return MPI


class LaunchError(RuntimeError):
    """The launcher's environment and MPI disagree on the number of processes: the processes
    that the launcher started do not form one MPI job, and each would train alone."""


@dataclass(frozen=True)
class Launch:
    """What a launcher's environment says about this process (see :func:`launched`)."""

    launcher: str  #: the launcher named in messages: ``"mpirun"``, ``"mpiexec"`` or ``"srun"``
    variable: str  #: the environment variable that gave the size, e.g. ``"OMPI_COMM_WORLD_SIZE"``
    value: str  #: its text, as found
    size: int  #: processes in the job (at least 1)
    rank: int  #: this process's rank (0 when the rank variable is absent or not an integer)


def _slurm_task_step() -> bool:
    """Whether srun started this process as a task of a job step: ``SLURM_STEP_ID`` (or the old
    ``SLURM_STEPID``) is set to an ordinary step id, and so is ``SLURM_PROCID``. An sbatch batch
    script or an salloc shell also holds ``SLURM_NTASKS`` (and a batch script ``SLURM_PROCID=0``)
    but no ``SLURM_STEP_ID``; Slurm's special steps (batch, extern, interactive) have ids from
    :data:`SLURM_SPECIAL_STEPS` up."""
    step = os.environ.get("SLURM_STEP_ID", os.environ.get("SLURM_STEPID"))
    if step is None or os.environ.get("SLURM_PROCID") is None:
        return False
    try:
        return 0 <= int(step, 10) < SLURM_SPECIAL_STEPS
    except ValueError:
        return False


def launched() -> Optional[Launch]:
    """What the launcher that started this process says, read from the environment without
    importing MPI; None when no launcher did.

    The first of :data:`LAUNCHERS` whose size variable holds an integer counts: Open MPI's
    ``OMPI_COMM_WORLD_SIZE``, then ``PMI_SIZE`` (Hydra), ``MV2_COMM_WORLD_SIZE`` (MVAPICH), then
    Slurm's. An MPI launcher's variables come first because mpirun inside a Slurm allocation
    starts its processes through srun steps of its own, whose Slurm variables count nodes, not
    processes. Slurm's count only in a task of a job step (``SLURM_STEP_ID`` set, by
    ``srun``): ``SLURM_STEP_NUM_TASKS``, else ``SLURM_NTASKS``, with the rank in
    ``SLURM_PROCID``. In an sbatch script or an salloc shell, which hold ``SLURM_NTASKS`` for the
    whole allocation but run as one process, Slurm's variables are ignored.
    """
    for size_name, rank_name, launcher in LAUNCHERS:
        value = os.environ.get(size_name)
        if value is None or launcher == "srun" and not _slurm_task_step():
            continue
        try:
            size = int(value, 10)
        except ValueError:
            continue
        try:
            rank = int(os.environ.get(rank_name, "0"), 10)
        except ValueError:
            rank = 0
        return Launch(launcher, size_name, value, max(1, size), rank)
    return None


def launched_size() -> int:
    """How many processes the launcher that started this one says the job has (1 when no
    launcher started it; :func:`launched` says which variables count)."""
    launch = launched()
    return launch.size if launch is not None else 1


def launched_rank() -> int:
    """This process's rank as the launcher's environment says (0 without a launcher)."""
    launch = launched()
    return launch.rank if launch is not None else 0


def launched_world() -> Optional[Any]:
    """``MPI.COMM_WORLD`` when a launcher started this process as one of several, else None
    (a single process, as without MPI).

    Raises
    ------
    ImportError
        When a launcher started several processes but mpi4py (or its MPI) is missing: each
        would otherwise train a model of its own.
    LaunchError
        When ``MPI.COMM_WORLD`` does not have the size that the launcher's variable says (an
        mpi4py built for another MPI than the launcher's, or launcher variables that no
        launcher set): each process would train alone, as a world of its own.
    """
    launch = launched()
    if launch is None or launch.size <= 1:
        return None
    said = f"{launch.variable}={launch.value}"
    try:
        MPI = import_mpi()
    except ImportError as error:
        raise ImportError(f"launched by {launch.launcher} as {launch.size} processes ({said}), but {error}") from None
    world = MPI.COMM_WORLD
    size = int(world.Get_size())
    if size != launch.size:
        try:
            library = MPI.Get_library_version().splitlines()[0].split(",")[0].strip()
        except Exception:  # an MPI too old to say
            library = "an MPI library"
        hint = (
            f"srun starts one MPI job with an MPI built for Slurm and the right --mpi plugin (mpi4py's MPI is "
            f"{library})" if launch.launcher == "srun" else
            f"launch with the mpirun of mpi4py's MPI, {library}, or name another with MPI4PY_LIBMPI"
        )
        raise LaunchError(
            f"MPI.COMM_WORLD: expected {launch.size} processes, as {launch.launcher}'s {said} says, got {size}: "
            f"the processes started are not one MPI job, and each would train alone ({hint}; unset "
            f"{launch.variable} to train in one process)"
        )
    return world


def batch_share(batch_size: int, size: int, rank: int) -> slice:
    """The sequences (batch columns) of process ``rank`` of ``size``: contiguous blocks in rank
    order, the first ``batch_size % size`` one sequence larger.

    Parameters
    ----------
    batch_size : int
        Sequences in the whole batch, at least ``size``.
    size, rank : int
        Processes, and this one's rank in ``[0, size)``.
    """
    if not 1 <= size <= batch_size:
        raise ValueError(
            f"batch_size: expected at least one sequence per process, i.e. >= {size} for {size} "
            f"processes, got {batch_size}"
        )
    if not 0 <= rank < size:
        raise ValueError(f"rank: expected an integer in [0, {size}), got {rank}")
    base, extra = divmod(batch_size, size)
    start = rank * base + min(rank, extra)
    return slice(start, start + base + (1 if rank < extra else 0))


def default_threads(comm: Any) -> int:
    """Threads per process that share this machine's cores among the job's processes on it:
    ``cpu_count // local processes``, at most the cores this process may run on, at least 1."""
    MPI = import_mpi()
    local = comm.Split_type(MPI.COMM_TYPE_SHARED)
    try:
        processes = local.Get_size()
    finally:
        local.Free()
    try:
        allowed = len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        allowed = os.cpu_count() or 1
    return max(1, min(allowed, (os.cpu_count() or 1) // processes))


class CollectiveError(RuntimeError):
    """An error raised on every process at the same point (the processes agree on it), so that
    they can stop together without hanging in a collective operation."""


class ReplicaError(CollectiveError):
    """The processes' copies of the parameters or optimizer state have drifted apart."""


def _check_every() -> int:
    text = os.environ.get(CHECK_VARIABLE, "")
    if not text:
        return 0
    try:
        every = int(text, 10)
    except ValueError:
        every = -1
    if every < 0:
        raise ValueError(f"{CHECK_VARIABLE}: expected an integer >= 0 (0: no check), got {text!r}")
    return every


class DataParallel:
    """What a :class:`~rnnbptt.Trainer` needs of an mpi4py communicator.

    Parameters
    ----------
    comm : mpi4py.MPI.Intracomm
        The processes that train one model together (e.g. ``MPI.COMM_WORLD``).

    Notes
    -----
    ``RNNBPTT_CHECK_REPLICAS=N`` in the environment turns on a debug check every ``N``
    optimizer steps (:meth:`check_replicas`).
    """

    def __init__(self, comm: Any) -> None:
        try:
            MPI = import_mpi()
        except ImportError as error:
            raise TypeError(
                f"comm: expected an mpi4py communicator or None, got {type(comm).__name__} ({error})"
            ) from None
        if not isinstance(comm, MPI.Intracomm) or comm == MPI.COMM_NULL:
            raise TypeError(
                f"comm: expected an mpi4py intra-communicator such as MPI.COMM_WORLD, or None, got {comm!r}"
            )
        self.MPI = MPI
        self.comm = comm
        self.rank: int = comm.Get_rank()
        self.size: int = comm.Get_size()
        self.check_every = _check_every()

    @property
    def is_root(self) -> bool:
        """Rank 0: the process that logs, shows progress and writes checkpoints."""
        return self.rank == 0

    # ---- the exchange of every step -------------------------------------------------------
    def reduce_gradient(self, grads: np.ndarray, share: float) -> None:
        """``grads <- sum over processes of share_p * grads_p``, in place on ``grads`` itself.

        ``grads_p`` is the mean-loss gradient of process p's sequences and ``share_p`` their
        share of the batch's loss weight, so the sum is the gradient of the whole batch's mean
        loss."""
        if share != 1.0:
            grads *= grads.dtype.type(share)
        self.comm.Allreduce(self.MPI.IN_PLACE, grads, op=self.MPI.SUM)

    # ---- occasional, small collectives ---------------------------------------------------
    def sum(self, value: float) -> float:
        """The sum of ``value`` over the processes, on every process."""
        return float(self.comm.allreduce(float(value), op=self.MPI.SUM))

    def broadcast(self, value: Any) -> Any:
        """Rank 0's ``value`` on every process."""
        return self.comm.bcast(value, root=0)

    def broadcast_array(self, array: np.ndarray) -> None:
        """Overwrite ``array`` in place with rank 0's."""
        self.comm.Bcast(array, root=0)

    def check_same(self, values: dict[str, Any], argument: str, what: str) -> None:
        """Raise :class:`ValueError` (on every process) unless ``values`` are the same on every
        process, naming the first key that differs and the ranks."""
        gathered = self.comm.allgather(values)
        for rank, other in enumerate(gathered):
            for key in values:
                if other.get(key) != gathered[0].get(key):
                    raise ValueError(
                        f"{argument}: expected {what} on every process, got {key}={gathered[0].get(key)!r} "
                        f"on rank 0 and {key}={other.get(key)!r} on rank {rank}"
                    )

    def gather_batch(self, array: np.ndarray, axis: int) -> Optional[np.ndarray]:
        """The processes' shares of a batch-sized array, joined along the batch ``axis`` in rank
        order, on rank 0 (None elsewhere)."""
        parts = self.comm.gather(np.ascontiguousarray(array), root=0)
        return np.concatenate(parts, axis=axis) if parts is not None else None

    def check_replicas(self, step: int, arrays: dict[str, np.ndarray], extra: Any = None) -> None:
        """Compare a SHA-256 of ``arrays`` (and of ``repr(extra)``) across processes; raise
        :class:`ReplicaError` on every process when they differ. A collective call."""
        digest = hashlib.sha256(repr(extra).encode())
        for name in sorted(arrays):
            digest.update(name.encode())
            digest.update(np.ascontiguousarray(arrays[name]).tobytes())
        hashes = self.comm.allgather(digest.hexdigest())
        differ = [rank for rank, h in enumerate(hashes) if h != hashes[0]]
        if differ:
            raise ReplicaError(
                f"replicas: expected the same parameters and optimizer state on every process after step "
                f"{step}, got different ones on rank(s) {differ} than on rank 0"
            )


@contextlib.contextmanager
def agreement(comm: Any) -> Iterator[None]:
    """Run a block that only touches local things (files, arguments) on every process of
    ``comm`` (an mpi4py communicator, or None), then let them agree: if the block raised on
    any process, every process raises the error of the lowest rank that failed (a copy, so the
    processes stop together rather than some waiting in the next collective operation). With
    ``comm`` None the block runs as is."""
    if comm is None:
        yield
        return
    dp = comm if isinstance(comm, DataParallel) else DataParallel(comm)
    error: Optional[BaseException] = None
    try:
        yield
    except Exception as raised:
        error = raised
    try:
        payload = pickle.dumps(error)
    except Exception:  # an exception that does not pickle: its type and message
        payload = pickle.dumps(CollectiveError(f"{type(error).__name__}: {error}"))
    errors = dp.comm.allgather(payload if error is not None else None)
    first = next((p for p in errors if p is not None), None)
    if first is None:
        return
    if error is not None and errors.index(first) == dp.rank:
        raise error
    raise pickle.loads(first)
