"""DeepMind Control Suite tasks as gymnasium environments: ``Env=DMC env.task=cheetah_run``, from pixels
(DrQ-v2's cameras and frame stack) or states. Import it before ``dm_control``: it picks the OpenGL backend (``DMC``)."""

from __future__ import annotations

import difflib
import os
import sys
from typing import Any

os.environ.setdefault("MUJOCO_GL", "egl")  # before dm_control/mujoco are imported (see above)

import gymnasium  # noqa: E402
import numpy as np  # noqa: E402
from gymnasium import spaces  # noqa: E402

from ML.envs.base import TaskSpec  # noqa: E402
from ML.errors import UserError  # noqa: E402

EVAL_SEED_OFFSET = 10_000
CAMERAS = {"quadruped": 2}  # DrQ-v2's zoomed-in camera for quadruped; camera 0 for every other domain
ALIASES = {"cup": "ball_in_cup"}  # DrQ-v2 writes cup_catch
_broken: tuple[str, BaseException] | None = None  # (MUJOCO_GL, error) when its backend failed at import


def _render_error(error: BaseException) -> UserError:
    backend = os.environ.get("MUJOCO_GL", "")
    if _broken is not None:  # state-only DMC fell back to no renderer earlier in this process
        backend, error = _broken
    why = (str(error).strip().splitlines() or [type(error).__name__])[0]
    return UserError(f"cannot render DMC pixels with MUJOCO_GL={backend} ({type(error).__name__}: {why}); "
                     "set MUJOCO_GL=osmesa with libosmesa6 installed, or env.pixels=false")


def _load_llvm_users_in_order() -> None:
    """Load triton's LLVM before Mesa's (EGL's llvmpipe): the other order segfaults at the first optimiser.

    ``torch.optim`` imports ``torch._dynamo``, which loads triton's own LLVM; if Mesa's is already loaded
    by MuJoCo's EGL renderer, the process crashes. Loading triton first avoids that (about 0.2 s).
    """
    try:
        import triton._C.libtriton  # noqa: F401
    except ImportError:
        pass


def _in_renderer(error: BaseException) -> bool:
    """Raised inside OpenGL, MuJoCo or dm_control (a renderer that cannot start), not by this project."""
    tb, last = error.__traceback__, None
    while tb is not None:
        last, tb = tb, tb.tb_next
    where = last.tb_frame.f_code.co_filename if last is not None else ""
    return any(f"{os.sep}{name}{os.sep}" in where for name in ("OpenGL", "dm_control", "mujoco"))


def _suite(pixels: bool) -> Any:
    """``dm_control.suite``; without pixels, a broken OpenGL backend falls back to ``MUJOCO_GL=disable``."""
    _load_llvm_users_in_order()
    error: BaseException
    try:
        from dm_control import suite
        return suite
    except ImportError as e:
        if e.name and e.name.split(".")[0] in ("dm_control", "mujoco"):
            raise UserError(f"Env=DMC needs dm_control ({e}); pip install dm_control==1.0.50 "
                            "mujoco==3.17.0") from None
        error = e
    except (RuntimeError, OSError, AttributeError) as e:  # the OpenGL backend named by MUJOCO_GL failed to load
        if not _in_renderer(e):
            raise
        error = e
    if pixels:
        raise _render_error(error) from None
    global _broken
    _broken = (os.environ.get("MUJOCO_GL", ""), error)
    for name in [m for m in sys.modules if m == "dm_control" or m.startswith("dm_control.")]:
        del sys.modules[name]  # drop the half-imported package and import it again with no renderer
    os.environ["MUJOCO_GL"] = "disable"
    from dm_control import suite
    return suite


def _split(task: str, suite: Any) -> tuple[str, str]:
    names = {f"{d}_{t}": (d, t) for d, t in suite.ALL_TASKS}
    for alias, domain in ALIASES.items():
        names.update({f"{alias}_{t}": (d, t) for d, t in suite.ALL_TASKS if d == domain})
    if task in names:
        return names[task]
    close = difflib.get_close_matches(str(task).lower(), list(names), n=4, cutoff=0.6)
    hint = f"did you mean {', '.join(close)}? " if close else ""
    raise UserError(f"unknown DMC task {task!r}: {hint}pass env.task=<domain>_<task> from "
                    "dm_control.suite.ALL_TASKS, e.g. cheetah_run, walker_walk, ball_in_cup_catch")


class DMC(gymnasium.Env):
    """A DeepMind Control Suite task with its ``TaskSpec``.

    Rendering: MuJoCo picks its OpenGL backend from ``MUJOCO_GL`` when dm_control is first imported, and the
    choice cannot change afterwards in that process. Importing this module sets ``MUJOCO_GL=egl`` when it is
    unset (headless; on a machine without a GPU EGL renders in software through llvmpipe, no package needed),
    so import ``ML.envs.dmc`` before anything imports ``dm_control`` or ``mujoco``, or set ``MUJOCO_GL``
    yourself (``egl``, ``osmesa`` with the ``libosmesa6`` package, ``glfw`` with a display).
    An 84x84 render on CPU takes ~20-25 ms (~40-55 frames/s); ``fast_render=True`` turns off shadows and
    multisampling (``model.vis.quality.shadowsize=0``, ``offsamples=0``), ~5x faster, but the images differ,
    so it is an option recorded in ``task_spec.info``, never a silent default.

    Tasks are ``<domain>_<task>`` from ``dm_control.suite.ALL_TASKS`` (``cheetah_run``, ``ball_in_cup_catch``,
    ``point_mass_easy``, ``finger_turn_hard``, ``humanoid_run``...); DrQ-v2's ``cup_<task>`` spelling
    (``cup_catch``) names the ``ball_in_cup`` domain. The task name is kept as given (it names the run
    directory); ``task_spec.info`` records the dm_control domain and task.

    Observations: with ``pixels=True`` the customary camera (DrQ-v2: camera 2 for quadruped, 0 otherwise)
    rendered at ``size`` x ``size`` RGB, channels first, the last ``frame_stack`` frames stacked:
    ``(3 * frame_stack, size, size)`` uint8. With ``pixels=False`` the task's state observation flattened into
    one float32 vector (no stacking). Actions are float32 in [-1, 1] (rescaled to the task's own bounds, which
    differ for quadruped); each is repeated ``action_repeat`` times and the rewards summed. Episodes are the
    suite's 1000 physics-control steps (500 agent steps at ``action_repeat=2``) and end ``truncated`` (a time
    limit), unless the task itself ends one with discount 0 (``terminated``). ``reset(seed=s)`` reseeds the
    task's random state, so the same seed gives the same initial state.

    Args:
        task: ``<domain>_<task>``, e.g. ``cheetah_run``.
        seed: the task's random seed for the first ``reset`` given no seed; the evaluation copy uses
            ``seed + 10000``.
        evaluation: the evaluation copy (only its seed differs).
        pixels: rendered images (True) or the state vector (False).
        size: side of the square image.
        action_repeat: physics-control steps per agent step (rewards summed).
        frame_stack: images stacked along the channel axis (pixels only).
        camera: MuJoCo camera id (None: 2 for quadruped, 0 otherwise).
        fast_render: no shadows or multisampling: ~5x faster rendering on CPU, different images.
    """

    metadata = {"render_modes": ["rgb_array"]}

    def __init__(self, task: str = "cheetah_run", seed: int = 0, evaluation: bool = False, pixels: bool = True,
                 size: int = 84, action_repeat: int = 2, frame_stack: int = 3, camera: int | None = None,
                 fast_render: bool = False):
        pixels, size, action_repeat = bool(pixels), int(size), int(action_repeat)
        frame_stack = int(frame_stack) if pixels else 1
        if size < 1 or action_repeat < 1 or frame_stack < 1:
            raise UserError(f"DMC size={size}, action_repeat={action_repeat} and frame_stack={frame_stack} "
                            "must be >= 1")
        suite = _suite(pixels)
        domain, name = _split(task, suite)
        self.base_seed = int(seed) + (EVAL_SEED_OFFSET if evaluation else 0)
        self.evaluation = bool(evaluation)
        self._env = suite.load(domain, name, task_kwargs={"random": self.base_seed % 2**32})
        self._seeded = False
        self.pixels, self.size, self.action_repeat, self.frame_stack = pixels, size, action_repeat, frame_stack
        self.camera = int(CAMERAS.get(domain, 0) if camera is None else camera)
        if fast_render:
            quality = self._env.physics.model.vis.quality
            quality.shadowsize = 0
            quality.offsamples = 0

        spec = self._env.action_spec()
        low, high = np.asarray(spec.minimum, np.float64), np.asarray(spec.maximum, np.float64)
        # rescale [-1, 1] to the task's bounds where they are real bounds (lqr's are +-1e10: left alone)
        self._scale = bool(np.all(np.abs(low) < 1e6) and np.all(np.abs(high) < 1e6))
        self._low, self._high, self._action_dtype = low, high, spec.dtype
        self.action_space = spaces.Box(-1.0, 1.0, tuple(spec.shape), np.float32, seed=self.base_seed)
        if pixels:
            shape: tuple[int, ...] = (3 * frame_stack, size, size)
            self.observation_space = spaces.Box(0, 255, shape, np.uint8)
            from mujoco import FatalError  # loaded with dm_control already

            try:
                self._render()  # fail now, with the fix, rather than at the first step
            except (RuntimeError, OSError, ImportError, AttributeError, FatalError) as e:
                if not _in_renderer(e):
                    raise
                self._env.close()  # no working OpenGL context
                raise _render_error(e) from None
        else:
            dim = sum(int(np.prod(s.shape)) for s in self._env.observation_spec().values())
            shape = (dim,)
            self.observation_space = spaces.Box(-np.inf, np.inf, shape, np.float32)
        self._frames: Any = np.zeros(shape, np.uint8) if pixels else None

        limit = float(getattr(self._env, "_step_limit", float("inf")))  # physics-control steps per episode
        info = {"domain": domain, "dmc_task": name, "pixels": pixels, "size": size, "camera": self.camera,
                "frame_stack": frame_stack, "action_repeat": action_repeat, "fast_render": bool(fast_render),
                "episode_steps": int(limit) if np.isfinite(limit) else None,
                "mujoco_gl": os.environ.get("MUJOCO_GL") if pixels else None}
        self.task_spec = TaskSpec(suite="DMC", task=str(task), obs_shape=shape, discrete=False,
                                  action_shape=tuple(spec.shape), action_low=-1.0, action_high=1.0,
                                  action_repeat=action_repeat, info=info)

    def _render(self) -> np.ndarray:
        image = self._env.physics.render(height=self.size, width=self.size, camera_id=self.camera)
        return np.ascontiguousarray(image.transpose(2, 0, 1))

    def _observe(self, time_step: Any, first: bool = False) -> np.ndarray:
        if not self.pixels:
            return np.concatenate([np.asarray(v, np.float32).ravel() for v in time_step.observation.values()])
        frame = self._render()
        if first:
            self._frames = np.concatenate([frame] * self.frame_stack)
        else:  # a new array each step: returned observations are never changed afterwards
            self._frames = np.concatenate([self._frames[3:], frame])
        return self._frames

    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None):
        if seed is None and not self._seeded:
            seed = self.base_seed
        self._seeded = True
        super().reset(seed=seed)
        if seed is not None:
            self._env.task.random.seed(int(seed) % 2**32)
        return self._observe(self._env.reset(), first=True), {}

    def step(self, action: Any):
        action = np.clip(np.asarray(action, np.float64).reshape(self.action_space.shape), -1.0, 1.0)
        if self._scale:
            action = self._low + (action + 1.0) * 0.5 * (self._high - self._low)
        action = action.astype(self._action_dtype, copy=False)
        reward = 0.0
        time_step: Any = None  # dm_env's TimeStep (action_repeat ≥ 1: set by the loop)
        for _ in range(self.action_repeat):
            time_step = self._env.step(action)
            reward += float(time_step.reward or 0.0)
            if time_step.last():
                break
        terminated = bool(time_step.last() and time_step.discount == 0.0)
        truncated = bool(time_step.last() and not terminated)
        return self._observe(time_step), reward, terminated, truncated, {"discount": float(time_step.discount)}

    def render(self) -> np.ndarray:
        """The current camera image, (size, size, 3) uint8."""
        return self._render().transpose(1, 2, 0)

    def close(self) -> None:
        self._env.close()
