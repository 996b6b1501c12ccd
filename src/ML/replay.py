"""Experience replay: a RAM ring buffer to sample from (frames stored once, n-step returns at sample
time), and ``replay.h5`` as its durable, resumable copy (``Replay``)."""

from __future__ import annotations

import sys
import time
from pathlib import Path
from typing import Any

import h5py
import numpy as np
import torch

from ML import stops
from ML.errors import UserError
from ML.progress import counting
from ML.sumtree import SumTree

FORMAT = "unifiedml-replay"
VERSION = 1
COLUMNS = ("obs", "action", "reward", "terminal", "valid")
# How an episode in the ``episodes`` table ended.
RUNNING, TERMINATED, TRUNCATED = 0, 1, 2
_FLUSH_FRAMES = 4096     # write to replay.h5 once this many frames of complete episodes wait
_FLUSH_SECONDS = 30.0    # or this long after the last write
_LOAD_BYTES = 64 << 20   # loading reads about this much observation data at a time (a step of its progress)


def _open_for_append(path: Path) -> h5py.File:
    """Open replay.h5 to append, also after its writer was killed (SIGKILL, preemption).

    A killed SWMR writer leaves the file marked "open for write", which refuses writers (HDF5's h5clear
    would clear it) but not SWMR readers: copy the file through a reader into a fresh one, then append.
    """
    try:
        return h5py.File(path, "a", libver="latest")
    except OSError as e:
        if "already open for write" not in str(e):
            raise
    fresh = path.with_name(f".{path.name}.recovered")
    with h5py.File(path, "r", swmr=True) as old, h5py.File(fresh, "w", libver="latest") as new:
        new.attrs.update(old.attrs)
        for name in old:
            old.copy(old[name], new, name=name)
    fresh.replace(path)
    return h5py.File(path, "a", libver="latest")


def _shared_zeros(shape: Any, dtype: Any) -> np.ndarray:
    from ML.envs.memmap import shared_zeros

    return shared_zeros(shape, dtype)


class Replay:
    """Transitions for sampling (RAM) and, with a ``path``, a durable HDF5 copy.

    Frames are stored once, in episode order: an episode of T steps is T + 1 observations. Slot ``i`` holds
    an observation, the action taken from it, the reward that action earned, whether slot ``i`` was reached
    by a terminating step, and whether a transition leaves it (``valid``: false for an episode's last frame
    and for the newest frame, whose action is not known yet). An n-step transition from slot ``i`` follows
    ``valid`` slots forward, so it stops at the episode's end, and is computed at sample time with numpy
    gathers. When the buffer is full the oldest frames are overwritten.

    ``replay.h5`` holds the same per-frame columns as extendable datasets plus an ``episodes`` table
    (first frame, number of frames, how it ended), appended a batch of complete episodes at a time and
    flushed, in SWMR mode: ``h5py.File(path, "r", swmr=True)`` reads it while training runs.

    Stacked pixel observations (``frame_stack`` > 1: Atari's 4 gray frames, DMC's 3 RGB frames, stacked on the
    channel axis) are stored once per frame: each slot (in RAM and in replay.h5, whose ``frame_stack``
    attribute says so) keeps only the newest ``obs_shape[0] // frame_stack`` channels, and sampling rebuilds
    every stack with one gather, walking back through the episode's frames and, at its start, repeating its
    first frame, which is what the environments' own stacks hold after a reset. Memory drops by the stack
    factor. (Only the oldest frames held, whose predecessors were overwritten or not loaded, are padded where
    the environment had older frames.)

    Resuming: ``state()`` writes every complete episode and returns the sizes of replay.h5 and the sampler's RNG
    state; ``Replay(..., load=True, state=that)`` cuts replay.h5 back to those sizes (dropping what was written
    after the checkpoint, e.g. the unfinished episode ``close`` wrote) and restores the RNG, so that the loaded
    replay is the checkpointed one minus its unfinished episode and samples the same indices.

    Args:
        path: where replay.h5 lives (``None``: RAM only).
        capacity: frames kept in RAM (the oldest are overwritten); replay.h5 keeps every frame.
        obs_shape, obs_dtype: one observation.
        action_shape, action_dtype: one action (``()`` and an integer dtype for discrete actions).
        load: start from the frames in an existing replay.h5 (the newest ``capacity`` of them).
        seed: seeds the sampler.
        frame_stack: observations are this many frames stacked on the first axis (``spec.info``'s
            ``frame_stack``); only the newest frame of each is stored and stacks are rebuilt when sampling.
        state: with ``load``, a ``state()`` taken at a checkpoint: replay.h5 is cut back to it and the
            sampler's RNG restored.
        zero_pad: stack positions before an episode's first frame are zeros instead of that frame, as the
            environment's own stacks then start (``Atari(starts="dopamine")``: dopamine's agents and replay).
        progress: how loading shows its progress (frames loaded of the total, rate, ETA): ``ML.progress.mode``'s
            auto / true / false; ``None``: the run's ``progress=``.
    """

    def __init__(self, path: Path | str | None, capacity: int, obs_shape: Any, obs_dtype: Any,
                 action_shape: Any, action_dtype: Any, load: bool = False, seed: int = 0,
                 frame_stack: int = 1, state: dict[str, Any] | None = None, shared: bool = False,
                 zero_pad: bool = False, progress: Any = None):
        self.path = Path(path) if path is not None else None
        self.shared = bool(shared)  # RAM arrays in shared memory (ML.envs.memmap.shared_zeros): one copy
        self._zeros = _shared_zeros if self.shared else np.zeros  # for forked sampler/batch workers
        self.capacity = int(capacity)
        if self.capacity < 2:
            raise UserError(f"replay.capacity must be at least 2 frames, not {capacity}")
        self.obs_shape = tuple(int(s) for s in obs_shape)
        self.obs_dtype = np.dtype(obs_dtype)
        self.action_shape = tuple(int(s) for s in action_shape)
        self.action_dtype = np.dtype(action_dtype)
        self.frame_stack = int(frame_stack)
        if self.frame_stack < 1 or (self.frame_stack > 1 and (not self.obs_shape
                                                             or self.obs_shape[0] % self.frame_stack)):
            raise UserError(f"Replay: frame_stack={frame_stack} must be ≥ 1 and divide the observation's "
                            f"first axis ({list(self.obs_shape)}); fix the environment's frame_stack")
        self._channels = self.obs_shape[0] // self.frame_stack if self.frame_stack > 1 else 0
        self.frame_shape = (self._channels, *self.obs_shape[1:]) if self._channels else self.obs_shape
        self._back = np.arange(1, self.frame_stack)                 # 1 .. frame_stack - 1 frames back
        self._distance = np.arange(self.frame_stack - 1, -1, -1)    # each stack position's distance back
        self.zero_pad = bool(zero_pad)
        self.rng = np.random.default_rng(seed)
        self._alloc = min(self.capacity, 1024)
        self._obs = self._zeros((self._alloc, *self.frame_shape), self.obs_dtype)
        self._action = self._zeros((self._alloc, *self.action_shape), self.action_dtype)
        self._reward = self._zeros(self._alloc, np.float32)
        self._terminal = self._zeros(self._alloc, bool)
        self._valid = self._zeros(self._alloc, bool)
        self._head = 0           # the slot the next frame goes to
        self._size = 0           # frames held
        self._count = 0          # valid slots: transitions available
        self._slots = self._zeros(self._alloc, np.int64)  # the valid slots, densely (first _count entries)...
        self._where = self._zeros(self._alloc, np.int64)  # ...and each valid slot's position in _slots
        self._total = 0          # frames ever put (slot = frame number % capacity)
        self._episode_frames = 0
        self._open = False       # an episode is in progress (start() called, not ended)
        self._pending: list[tuple[int, int, int]] = []  # (first frame number, frames, ending) not on disk
        self._pending_frames = 0
        self._last_write = time.monotonic()
        self._file: h5py.File | None = None
        self._tree: SumTree | None = None  # priorities per slot, once prioritize() is called
        self._powers_key: tuple[int, float] | None = None
        self._powers_table = np.ones(1, np.float32)
        self._offsets = np.arange(64)
        if self.path is not None:
            if load and self.path.exists():
                self._load(state, progress)
            elif load:
                print(f"ML: note: no replay at {self.path}; starting with an empty replay", file=sys.stderr)
            if self._file is None:
                self._create()
        if load and state is not None:
            self.rng.bit_generator.state = state["rng"]

    # -- filling ------------------------------------------------------------------------------------

    def _grow(self) -> None:
        new = min(self._alloc * 2, self.capacity)
        for name in COLUMNS:
            old = getattr(self, f"_{name}")
            grown = self._zeros((new, *old.shape[1:]), old.dtype)
            grown[: self._alloc] = old
            setattr(self, f"_{name}", grown)
        for name in ("_slots", "_where"):
            grown = self._zeros(new, np.int64)
            grown[: self._alloc] = getattr(self, name)
            setattr(self, name, grown)
        self._alloc = new

    def _put(self, obs: Any) -> int:
        """Write one frame at the head; returns its slot."""
        if self._head == self._alloc and self._alloc < self.capacity:
            self._grow()
        if self._pending and self._total - self._pending[0][0] >= self.capacity:
            self.flush()  # the oldest episode waiting for replay.h5 is about to be overwritten
        slot = self._head % self.capacity
        if self._valid[slot]:  # evicting a transition: move the last listed valid slot into its place
            position, moved = self._where[slot], self._slots[self._count - 1]
            self._slots[position] = moved
            self._where[moved] = position
            self._count -= 1
            if self._tree is not None:
                self._tree.set(slot, 0.0)
        self._obs[slot] = np.asarray(obs)[-self._channels:] if self._channels else obs
        self._valid[slot] = False
        self._terminal[slot] = False
        self._reward[slot] = 0.0
        self._head = slot + 1
        self._size = min(self._size + 1, self.capacity)
        self._total += 1
        return slot

    def start(self, obs: Any) -> None:
        """The first observation of an episode (after ``reset``)."""
        if self._open and self._episode_frames > 1:  # the previous episode was cut off: keep it, unended
            self._end(RUNNING)
        self._open = True
        self._put(obs)
        self._episode_frames = 1

    def add(self, action: Any, reward: float, obs: Any, terminated: bool, truncated: bool) -> None:
        """One step: the action taken from the newest frame, its reward and the next observation."""
        if not self._open:
            raise RuntimeError("Replay.add before Replay.start: call start(obs) after every reset")
        previous = (self._head - 1) % self.capacity
        self._action[previous] = action
        self._reward[previous] = reward
        self._valid[previous] = True
        self._slots[self._count] = previous
        self._where[previous] = self._count
        self._count += 1
        if self._tree is not None:  # a new transition gets the largest priority yet (Schaul et al. 2016)
            self._tree.set(previous, self._tree.max_recorded)
        slot = self._put(obs)
        self._terminal[slot] = bool(terminated)
        self._episode_frames += 1
        if terminated or truncated:
            self._end(TERMINATED if terminated else TRUNCATED)

    def _end(self, ending: int) -> None:
        frames = min(self._episode_frames, self.capacity)
        first = self._total - frames
        self._open = False
        if self._file is None:
            return
        self._pending.append((first, frames, ending))
        self._pending_frames += frames
        if self._pending_frames >= _FLUSH_FRAMES or time.monotonic() - self._last_write > _FLUSH_SECONDS:
            self.flush()

    def __len__(self) -> int:
        return self._count

    @property
    def frames(self) -> int:
        """Observations held in RAM (each stored once: an episode of T steps is T + 1 frames)."""
        return self._size

    # -- sampling -----------------------------------------------------------------------------------

    def _indices(self, batch_size: int) -> np.ndarray:
        """Uniform over valid slots (the slots a transition leaves from)."""
        if self._count == 0:
            raise RuntimeError("Replay.sample on an empty replay: wait until len(replay) > 0")
        return self._slots.take(self.rng.integers(0, self._count, size=batch_size))

    def prioritize(self) -> None:
        """Sample in proportion to priorities from now on (``sample(prioritized=True)``): every transition
        held gets the largest priority recorded (1.0 before any update), as every later one will. Until this
        is called the uniform path pays nothing for priorities."""
        if self._tree is None:
            self._tree = SumTree(self.capacity)
            self._tree.set(self._slots[: self._count], 1.0)

    def update_priorities(self, index: Any, priority: Any) -> None:
        """New priorities for the transitions leaving slots ``index`` (a prioritized batch's ``index``);
        slots overwritten since they were sampled are left alone."""
        if self._tree is None:
            raise RuntimeError("Replay.update_priorities before Replay.prioritize()")
        index = np.asarray(index, np.int64)
        keep = self._valid[index]
        self._tree.set(index[keep], np.asarray(priority, np.float64)[keep])

    def _prioritized_indices(self, batch_size: int, stratified: bool) -> tuple[np.ndarray, np.ndarray]:
        """Slots drawn with probability priority / total (dopamine's ``PrioritizedSamplingDistribution``;
        ``stratified``: one draw in each of ``batch_size`` equal slices of the total, as its
        ``DeterministicSumTree.stratified_sample``), and those probabilities."""
        self.prioritize()
        tree = self._tree
        assert tree is not None  # prioritize() built it
        total = tree.total
        if total <= 0.0:  # every priority zero: uniform, as dopamine
            index = self._indices(batch_size)
            return index, np.full(batch_size, 1.0 / self._count)
        u = self.rng.random(batch_size)
        if stratified:
            u = (np.arange(batch_size) + u) / batch_size
        index = np.minimum(tree.query(u * total), self._alloc - 1)
        bad = ~self._valid[index]  # float rounding at a slice's edge can walk onto an empty leaf: draw again
        while bad.any():
            index[bad] = np.minimum(tree.query(self.rng.random(int(bad.sum())) * total), self._alloc - 1)
            bad = ~self._valid[index]
        return index, tree.get(index) / total

    def sample(self, batch_size: int, n_step: int = 1, gamma: float = 0.99, clip: float | None = None,
               prioritized: bool = False, stratified: bool = False,
               sequence: int = 0) -> dict[str, torch.Tensor]:
        """A batch of n-step transitions: ``obs, action, reward, discount, next_obs``.

        ``reward`` is the discounted sum of up to ``n_step`` rewards, cut at the episode's end, each reward
        clipped to [-clip, clip] first when ``clip`` is given (DQN's Atari reward clipping);
        ``discount`` is ``gamma ** k`` for the ``k`` steps taken, or 0 if the episode terminated within them.

        ``prioritized``: slots drawn in proportion to their priorities (``prioritize``), adding ``index``
        (the slots, for ``update_priorities``) and ``probability`` (each one's sampling probability).
        ``sequence=K`` (SPR's self-prediction) adds ``actions`` (B, K): the actions taken at steps t..t+K-1,
        ``future_obs`` (B, K, *obs): the observations at t+1..t+K, and ``same_episode`` (B, K): 1 where that
        observation is in the transition's episode (past its end the episode's last frame repeats, masked 0).
        """
        n_step = max(int(n_step), 1)
        probability = None
        if prioritized:
            index, probability = self._prioritized_indices(int(batch_size), stratified)
        else:
            index = self._indices(int(batch_size))
        powers = self._powers(n_step, float(gamma))
        # mode="wrap": a chain may run past the array's end into its start (the ring); before the buffer
        # is full a chain stops at the newest frame (never valid) long before, so nothing stale is read.
        if n_step == 1:
            k = 1
            reward = self._reward.take(index)
            if clip is not None:
                reward = np.clip(reward, -clip, clip)
        else:
            steps = index[:, None] + self._offsets[:n_step]                   # (B, n)
            taken = np.logical_and.accumulate(self._valid.take(steps, mode="wrap"), axis=1)
            k = taken.sum(axis=1)                                             # ≥ 1: index is valid
            rewards = self._reward.take(steps, mode="wrap")
            if clip is not None:
                rewards = np.clip(rewards, -clip, clip)
            reward = (rewards * taken) @ powers[:n_step]
        last = index + k
        discount = powers.take(k) * ~self._terminal.take(last, mode="wrap")
        offsets = [0, k]
        if sequence:
            ahead = np.arange(int(sequence))
            steps = index[:, None] + ahead                                    # (B, K)
            same = np.logical_and.accumulate(self._valid.take(steps, mode="wrap"), axis=1)
            offsets += list(np.minimum(ahead + 1, same.sum(axis=1, keepdims=True)).T)
        if self._channels:
            stacks = self._stacks(index, offsets)
        else:
            stacks = [self._obs.take(index + offset, axis=0, mode="wrap") for offset in offsets]
        batch = {"obs": torch.from_numpy(stacks[0]),
                 "action": torch.from_numpy(self._action.take(index, axis=0)),
                 "reward": torch.from_numpy(reward),
                 "discount": torch.from_numpy(discount),
                 "next_obs": torch.from_numpy(stacks[1])}
        if probability is not None:
            batch["index"] = torch.from_numpy(index)
            batch["probability"] = torch.from_numpy(probability.astype(np.float32))
        if sequence:
            batch["actions"] = torch.from_numpy(self._action.take(steps, axis=0, mode="wrap"))
            batch["future_obs"] = torch.from_numpy(np.stack(stacks[2:], axis=1))
            batch["same_episode"] = torch.from_numpy(same.astype(np.float32))
        return batch

    def _stacks(self, index: np.ndarray, offsets: list[Any]) -> list[np.ndarray]:
        """The stacked observations at slots ``index + offset`` for each offset (steps forward in the
        transition's episode: 0, ``k``...), gathered at once.

        A slot's predecessor is in its episode exactly when a transition leaves it (``valid``); the newest
        frame is never valid, so a walk back stops at the oldest frame held. Stack positions further back
        than the episode's first frame repeat that frame (are zeros with ``zero_pad``).
        """
        held = np.logical_and.accumulate(self._valid.take(index[:, None] - self._back, mode="wrap"), axis=1)
        back = held.sum(axis=1)[:, None]                                         # (B, 1): ≤ frame_stack - 1
        source = np.concatenate([
            (index + offset)[:, None] - np.minimum(self._distance, back + np.reshape(offset, (-1, 1)))
            for offset in offsets])
        frames = self._obs.take(source.ravel(), axis=0, mode="wrap")
        if self.zero_pad:
            before = np.concatenate([self._distance > back + np.reshape(offset, (-1, 1)) for offset in offsets])
            frames.reshape(len(source), self.frame_stack, -1)[before] = 0
        return list(frames.reshape(len(offsets), len(index), *self.obs_shape))

    def _powers(self, n_step: int, gamma: float) -> np.ndarray:
        """``gamma ** [0, 1, ..., n_step]`` as float32, cached."""
        key = (n_step, gamma)
        if self._powers_key != key:
            if n_step > len(self._offsets):
                self._offsets = np.arange(n_step)
            self._powers_key, self._powers_table = key, (gamma ** np.arange(n_step + 1)).astype(np.float32)
        return self._powers_table

    # -- replay.h5 ----------------------------------------------------------------------------------

    def _create(self) -> None:
        assert self.path is not None
        self.path.parent.mkdir(parents=True, exist_ok=True)
        try:
            f = h5py.File(self.path, "w", libver="latest")
        except OSError as e:
            raise UserError(f"cannot write replay at {self.path} ({e}); check the run directory") from None
        f.attrs["format"] = FORMAT
        f.attrs["version"] = VERSION
        f.attrs["obs_dtype"] = self.obs_dtype.str
        f.attrs["action_dtype"] = self.action_dtype.str
        f.attrs["frame_stack"] = self.frame_stack
        chunk = max(1, min(1024, (1 << 20) // max(1, self._obs[0].nbytes)))
        f.create_dataset("obs", (0, *self.frame_shape), self.obs_dtype, maxshape=(None, *self.frame_shape),
                         chunks=(chunk, *self.frame_shape))
        f.create_dataset("action", (0, *self.action_shape), self.action_dtype,
                         maxshape=(None, *self.action_shape), chunks=(1024, *self.action_shape))
        for name, dtype in (("reward", np.float32), ("terminal", bool), ("valid", bool)):
            f.create_dataset(name, (0,), dtype, maxshape=(None,), chunks=(1024,))
        f.create_dataset("episodes", (0, 3), np.int64, maxshape=(None, 3), chunks=(256, 3))
        f.swmr_mode = True
        self._file = f

    def _foreign(self, why: str) -> UserError:
        return UserError(f"replay.h5 at {self.path} is not a UnifiedML replay ({why}); "
                         "delete it or pass replay.load=false")

    def _load(self, state: dict[str, Any] | None = None, progress: Any = None) -> None:
        assert self.path is not None
        try:
            f = _open_for_append(self.path)
        except OSError as e:
            raise self._foreign(f"unreadable HDF5: {str(e).splitlines()[0]}") from None
        try:
            if f.attrs.get("format") != FORMAT:
                raise self._foreign("no UnifiedML format attribute")
            if int(f.attrs.get("version", -1)) != VERSION:
                raise self._foreign(f"format version {f.attrs.get('version')}, this engine reads {VERSION}")
            missing = [n for n in (*COLUMNS, "episodes") if n not in f]
            if missing:
                raise self._foreign(f"missing dataset {missing[0]!r}")
            stack = int(f.attrs.get("frame_stack", 1))
            if stack != self.frame_stack:
                raise UserError(f"replay.h5 at {self.path} stores stacks of {stack} frame(s) once per frame, "
                                f"this task stacks {self.frame_stack}; delete it or pass replay.load=false")
            shape = tuple(f["obs"].shape[1:])
            if shape != self.frame_shape:
                raise UserError(f"replay.h5 at {self.path} holds observations of shape {list(shape)}, this "
                                f"task's are {list(self.obs_shape)}; delete it or pass replay.load=false")
            if tuple(f["action"].shape[1:]) != self.action_shape:
                raise UserError(f"replay.h5 at {self.path} holds actions of shape "
                                f"{list(f['action'].shape[1:])}, this task's are {list(self.action_shape)}; "
                                "delete it or pass replay.load=false")
            total = f["obs"].shape[0]
            if state is not None:  # first: a kill in the middle of a flush leaves the first columns longer
                total = self._truncate(f, int(state["disk_frames"]), int(state["disk_episodes"]))
            if any(f[n].shape[0] != total for n in COLUMNS):
                raise self._foreign("columns of different lengths")
            keep = min(total, self.capacity)
            while self._alloc < keep:
                self._grow()
            self._read(f, total - keep, keep, progress)
        except UserError:
            f.close()
            raise
        except (OSError, KeyError, ValueError, TypeError) as e:
            f.close()
            raise self._foreign(f"unreadable: {type(e).__name__}") from None
        if keep:  # the oldest kept frame may have lost its predecessors; the newest has no successor
            self._valid[keep - 1] = False
        self._head = keep % self.capacity
        self._size = keep
        self._total = keep
        valid = np.flatnonzero(self._valid[:keep])
        self._count = len(valid)
        self._slots[: self._count] = valid
        self._where[valid] = np.arange(self._count)
        f.swmr_mode = True
        self._file = f

    def _read(self, f: h5py.File, first: int, count: int, progress: Any) -> None:
        """Frames ``first`` .. ``first + count`` of replay.h5 into slots 0 .. ``count``, a chunk at a time (no
        second copy in memory), showing frames loaded of ``count`` with rate and ETA."""
        chunk = max(1, _LOAD_BYTES // max(1, self._obs[0].nbytes))
        with counting(f"replay: loading {self.path}", "frames", progress) as tick:
            for start in range(0, count, chunk):
                end = min(start + chunk, count)
                for name in COLUMNS:
                    getattr(self, f"_{name}")[start:end] = f[name][first + start:first + end]
                tick(end, count)

    def _truncate(self, f: h5py.File, frames: int, episodes: int) -> int:
        """Cut replay.h5 back to a checkpoint's ``frames`` and ``episodes``; returns ``frames``."""
        held, rows = min(f[n].shape[0] for n in COLUMNS), f["episodes"].shape[0]
        if held < frames or rows < episodes:
            raise UserError(f"replay.h5 at {self.path} holds {held} frames and {rows} episodes, fewer than the "
                            f"checkpoint's {frames} and {episodes}: it was replaced or cut short; restore it, "
                            "or start the run over (resume=false)")
        for name in COLUMNS:
            if f[name].shape[0] > frames:
                f[name].resize(frames, axis=0)
        if rows > episodes:
            f["episodes"].resize(episodes, axis=0)
        return frames

    def state(self) -> dict[str, Any]:
        """For a checkpoint: write every complete episode to replay.h5, then its sizes and the RNG state.

        ``{"disk_frames", "disk_episodes", "rng", "wrapped"}``; pass it back as ``Replay(..., load=True,
        state=...)``. ``wrapped``: the RAM ring has overwritten frames, so a resume reloads it in another order
        (its samples differ: run.json's ``resume_exact`` says so).
        """
        self.flush()
        frames = int(self._file["obs"].shape[0]) if self._file is not None else 0
        episodes = int(self._file["episodes"].shape[0]) if self._file is not None else 0
        return {"disk_frames": frames, "disk_episodes": episodes, "rng": self.rng.bit_generator.state,
                "wrapped": self._total > self.capacity}

    def _append(self, name: str, values: np.ndarray) -> None:
        assert self._file is not None
        dset = self._file[name]
        n = dset.shape[0]
        dset.resize(n + len(values), axis=0)
        dset[n:] = values

    def flush(self) -> None:
        """Append the complete episodes not yet on disk to replay.h5 and flush it."""
        if self._file is None or not self._pending:
            return
        frames = self._file["obs"].shape[0]
        slots, table = [], []
        for first, count, ending in self._pending:
            slots.append((first + np.arange(count)) % self.capacity)
            table.append((frames, count, ending))
            frames += count
        idx = np.concatenate(slots)
        for name in COLUMNS:
            self._append(name, getattr(self, f"_{name}")[idx])
            if name == "obs":
                stops.point("flush")  # the test hook (ML.stops): a kill here leaves obs longer than the rest
        self._append("episodes", np.asarray(table, np.int64))
        self._file.flush()
        self._pending.clear()
        self._pending_frames = 0
        self._last_write = time.monotonic()

    def close(self, keep: bool = True) -> None:
        """Write what is left (an unfinished episode included) and close; ``keep=False`` deletes replay.h5."""
        if self._file is None:
            return
        if keep:
            if self._open and self._episode_frames > 1:
                self._end(RUNNING)
            self.flush()
        self._file.close()
        self._file = None
        if not keep and self.path is not None:
            self.path.unlink(missing_ok=True)
