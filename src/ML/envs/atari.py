"""Atari 2600 games through ale-py: ``Env=Atari env.game=pong``, with gymnasium's ``AtariPreprocessing`` and
the published protocols' settings (``Atari``); its fast path is tested against the real wrappers."""

from __future__ import annotations

import difflib
import functools
from typing import Any, cast

import gymnasium
import numpy as np
from gymnasium import spaces

from ML.envs.base import TaskSpec
from ML.errors import UserError

EVAL_SEED_OFFSET = 10_000

DEFAULTS: dict[str, Any] = {"frame_skip": 4, "sticky_actions": 0.0, "full_action_space": False,
                            "terminal_on_life_loss": False, "noop_max": 30, "max_episode_frames": 108_000,
                            "starts": "gymnasium"}
STARTS = ("gymnasium", "dopamine")  # how episodes start (no-ops, frame stack, after a lost life): see Atari

PROTOCOLS: dict[str, dict[str, Any]] = {
    "atari100k": {"frame_skip": 4, "sticky_actions": 0.0, "full_action_space": False,
                  "terminal_on_life_loss": True, "noop_max": 30, "max_episode_frames": 108_000,
                  "starts": "dopamine", "budget_steps": 100_000, "budget_frames": 400_000},
    "machado": {"frame_skip": 4, "sticky_actions": 0.25, "full_action_space": True,
                "terminal_on_life_loss": False, "noop_max": 0, "max_episode_frames": 108_000,
                "starts": "gymnasium"},
}


def _key(name: str) -> str:
    return str(name).strip().lower().replace("_", "").replace("-", "").replace(" ", "")


@functools.cache
def games() -> dict[str, tuple[str, str]]:
    """Every playable game, ``{name: (rom id, gymnasium id)}``: ``mspacman: (ms_pacman, ALE/MsPacman-v5)``.

    Built from ale-py's ROM list and the ids it registers (ROMs without a single-player mode are left out).
    """
    try:
        import ale_py
        from ale_py.registration import rom_id_to_name
    except ImportError as e:
        raise UserError(f"Env=Atari needs ale-py ({e}); pip install ale-py opencv-python-headless") from None
    gymnasium.register_envs(ale_py)
    table = {}
    for rom in ale_py.roms.get_all_rom_ids():
        ale_id = f"ALE/{rom_id_to_name(rom)}-v5"
        if ale_id in gymnasium.registry:
            table[_key(rom)] = (rom, ale_id)
    return table


def _game(game: str) -> tuple[str, str, str]:
    table = games()
    name = _key(game)
    if name in table:
        return (name, *table[name])
    close = difflib.get_close_matches(name, list(table), n=4, cutoff=0.6)
    hint = f"did you mean {', '.join(close)}? " if close else ""
    raise UserError(f"unknown Atari game {game!r}: {hint}pass env.game=<one of the {len(table)} ALE games, "
                    "lower case without underscores, e.g. pong, breakout, mspacman>")


def _protocol(protocol: str | None) -> dict[str, Any]:
    if protocol is None:
        return {}
    key = str(protocol).strip().lower()
    if key not in PROTOCOLS:
        raise UserError(f"unknown Atari protocol {protocol!r}: use env.protocol= one of "
                        f"{', '.join(PROTOCOLS)} (or leave it unset for the defaults)")
    return PROTOCOLS[key]


def _settings(protocol: str | None, given: dict[str, Any]) -> dict[str, Any]:
    """The seven protocol settings: given ones win, then the protocol's, then ``DEFAULTS``; checked."""
    preset = _protocol(protocol)
    s = {k: (v if v is not None else preset.get(k, DEFAULTS[k])) for k, v in given.items()}
    s = {"frame_skip": int(s["frame_skip"]), "sticky_actions": float(s["sticky_actions"]),
         "full_action_space": bool(s["full_action_space"]),
         "terminal_on_life_loss": bool(s["terminal_on_life_loss"]), "noop_max": int(s["noop_max"]),
         "max_episode_frames": int(s["max_episode_frames"]), "starts": str(s["starts"]).strip().lower()}
    if s["starts"] not in STARTS:
        raise UserError(f"env.starts={s['starts']!r} is not one of {', '.join(STARTS)}")
    if s["frame_skip"] < 1 or s["noop_max"] < 0 or s["max_episode_frames"] < 0:
        raise UserError(f"Atari settings out of range (frame_skip={s['frame_skip']}, "
                        f"noop_max={s['noop_max']}, max_episode_frames={s['max_episode_frames']}): "
                        "frame_skip >= 1, the others >= 0")
    if not 0.0 <= s["sticky_actions"] <= 1.0:
        raise UserError(f"env.sticky_actions={s['sticky_actions']} is not a probability; "
                        "use a value in [0, 1]")
    s.update({k: v for k, v in preset.items() if k.startswith("budget_")})
    return s


class Atari(gymnasium.Wrapper):
    """An Atari game with standard preprocessing and its ``TaskSpec``.

    ``Atari`` is a ``gymnasium.Wrapper`` around ``gymnasium.make("ALE/<Game>-v5", frameskip=1, ...)`` with
    gymnasium's ``AtariPreprocessing`` (frame skip with a max-pool over the last two frames, no-op starts,
    84x84 grayscale by INTER_AREA resize) and a frame stack done here. Observations are uint8 numpy arrays,
    channels first: ``(frame_stack, 84, 84)`` in grayscale, ``(3 * frame_stack, 84, 84)`` in colour.
    Rewards are the raw game rewards (clipping, if any, is the agent's business), so returns are game scores.

    Game names are lower case without underscores, as UnifiedML has always written them (``mspacman``,
    ``privateeye``, ``upndown``); the ALE's own snake_case ids (``ms_pacman``) are accepted too. Every game
    with a single-player ROM in ale-py's wheel can be played (104 of its 108 ROMs; the 57 of the benchmark
    are all there).

    Settings (``None`` means: the protocol's value, else the default shown):

    ==========================  =======  =========  =======
    setting                     default  atari100k  machado
    ==========================  =======  =========  =======
    frame_skip                  4        4          4
    sticky_actions              0.0      0.0        0.25
    full_action_space           False    False      True
    terminal_on_life_loss       False    True       False
    noop_max                    30       30         0
    max_episode_frames          108_000  108_000    108_000
    starts                      gymnasium dopamine  gymnasium
    ==========================  =======  =========  =======

    ``starts`` is how episodes begin. ``gymnasium``: ``AtariPreprocessing``'s 1…``noop_max`` no-op *frames*
    after a reset; a stack repeats its first frame; after a lost life (training) the next episode starts
    with one no-op step (baselines' ``EpisodicLifeEnv``). ``dopamine``: as dopamine's Atari-100k runner and
    agent (``DataEfficientAtariRunner._initialize_episode``, ``Atari100kRainbowAgent``): after every reset,
    training and evaluation, 0…``noop_max``−1 no-op agent *steps* (``frame_skip`` frames each, drawn
    uniformly from the episode's seed; a life lost or the game ended during them resets again); a stack
    starts as zeros and the newest frame (the agent's ``reset_all``); after a lost life the training episode
    ends and the next one goes on from the same screen with the agent's own action, its stack zeroed again
    (``reset_one``); the evaluation copy plays on through a lost life but zeroes its stack there too, as
    dopamine's runner does at every terminal; with ``terminal_on_life_loss`` a lost life also stops the
    frame skip's repeats there, as dopamine's ``AtariPreprocessing.step`` does.

    ``atari100k`` is the data-efficient benchmark (Kaiser et al. 2020; DER, SPR, DrQ, BBF): 100k agent steps
    = 400k frames of training, recorded in ``task_spec.info`` as ``budget_steps``/``budget_frames``, with a
    terminal on life loss as in those papers' (dopamine) configurations. ``machado`` is Machado et al.
    (2018)'s recommended protocol: sticky actions (p=0.25) as the only stochasticity (so no no-op starts),
    the full 18-action set, episodes end only at game over.

    ``terminal_on_life_loss`` applies to training only: the evaluation copy (``evaluation=True``) always plays
    to the real game over. A lost life ends the training episode (``terminated=True``, ``info["life_loss"]``)
    but not the game: the next ``reset`` continues the same game with one no-op step (the DQN convention,
    baselines' ``EpisodicLifeEnv``), ignoring its seed; only a real game over (or the frame cap) resets the
    emulator. ``reset(seed=s)`` otherwise reseeds the whole emulator (ALE random seed, sticky actions and
    no-op count), so the same seed gives the same episode.

    Args:
        game: ``pong``, ``breakout``, ``mspacman``... (see above).
        seed: seeds the first ``reset`` when it is given no seed; the evaluation copy uses ``seed + 10000``.
        evaluation: the evaluation copy: never ends an episode on a lost life.
        protocol: ``atari100k`` or ``machado``: presets for the settings left ``None``.
        frame_skip: emulator frames per agent step (the action repeats; the observation is the max of the
            last two frames).
        frame_stack: observations stacked along the channel axis.
        screen_size: side of the square observation.
        grayscale: grayscale (1 channel per frame) or RGB (3).
        noop_max: no-op starts: with ``starts=gymnasium`` 1…noop_max no-op frames after a reset, with
            ``starts=dopamine`` 0…noop_max−1 no-op steps; 0 for none.
        max_episode_frames: episodes are truncated after this many emulator frames (0: no cap).
        terminal_on_life_loss: training episodes end when a life is lost.
        sticky_actions: the ALE's repeat_action_probability.
        full_action_space: all 18 actions instead of the game's minimal set.
        mode, difficulty: ALE game mode and difficulty (None: the game's default).
        num_envs: training collects from this many games at once in ale-py's ``AtariVectorEnv``
            (``ML.envs.atari_vector``; the driver builds it, this env gives the spec and evaluates); recorded
            in ``task_spec.info`` when above 1.
        starts: ``gymnasium`` or ``dopamine`` (above).
    """

    def __init__(self, game: str = "pong", seed: int = 0, evaluation: bool = False,
                 protocol: str | None = None, frame_skip: int | None = None, frame_stack: int = 4,
                 screen_size: int = 84, grayscale: bool = True, noop_max: int | None = None,
                 max_episode_frames: int | None = None, terminal_on_life_loss: bool | None = None,
                 sticky_actions: float | None = None, full_action_space: bool | None = None,
                 mode: int | None = None, difficulty: int | None = None, num_envs: int = 1,
                 starts: str | None = None):
        name, rom, ale_id = _game(game)
        s = _settings(protocol, {"frame_skip": frame_skip, "sticky_actions": sticky_actions,
                                 "full_action_space": full_action_space,
                                 "terminal_on_life_loss": terminal_on_life_loss, "noop_max": noop_max,
                                 "max_episode_frames": max_episode_frames, "starts": starts})
        frame_stack, screen_size, grayscale = int(frame_stack), int(screen_size), bool(grayscale)
        if frame_stack < 1 or screen_size < 1:
            raise UserError(f"Atari frame_stack={frame_stack} and screen_size={screen_size} must be >= 1")

        from gymnasium.wrappers import AtariPreprocessing
        kwargs: dict[str, Any] = {"frameskip": 1, "repeat_action_probability": s["sticky_actions"],
                                  "full_action_space": s["full_action_space"],
                                  "max_num_frames_per_episode": s["max_episode_frames"],
                                  "obs_type": "grayscale" if grayscale else "rgb"}
        if mode is not None:
            kwargs["mode"] = int(mode)
        if difficulty is not None:
            kwargs["difficulty"] = int(difficulty)
        try:
            base = gymnasium.make(ale_id, **kwargs)
            self.dopamine = s["starts"] == "dopamine"  # its no-ops are steps, done in reset() here
            env = AtariPreprocessing(base, noop_max=0 if self.dopamine else s["noop_max"],
                                     frame_skip=s["frame_skip"],
                                     screen_size=screen_size, terminal_on_life_loss=False,
                                     grayscale_obs=grayscale, scale_obs=False)
        except gymnasium.error.DependencyNotInstalled as e:
            raise UserError(f"Env=Atari needs a package that is not installed ({str(e).splitlines()[0]}); "
                            "pip install opencv-python-headless") from None
        except (gymnasium.error.Error, ValueError, RuntimeError) as e:  # the ALE rejects a mode, difficulty...
            if isinstance(e, RuntimeError) and not str(e).startswith("Invalid"):
                raise  # not the ALE refusing a setting: a bug, with its traceback
            raise UserError(f"could not build Atari game {name!r}: {str(e).splitlines()[0]}; "
                            "fix the env.* settings") from None
        super().__init__(env)

        shape = ((1 if grayscale else 3) * frame_stack, screen_size, screen_size)
        self.observation_space = spaces.Box(0, 255, shape, np.uint8)
        self.frame_stack = frame_stack
        self.evaluation = bool(evaluation)
        self.life_loss = s["terminal_on_life_loss"] and not self.evaluation
        self.terminal_on_life_loss = s["terminal_on_life_loss"]
        self._life_break = self.dopamine and self.terminal_on_life_loss  # dopamine's frame skip stops at one
        self.noop_max = s["noop_max"]
        self.base_seed = int(seed) + (EVAL_SEED_OFFSET if evaluation else 0)
        self.action_space.seed(self.base_seed)
        ale_env: Any = base.unwrapped  # ale_py's AtariEnv: gymnasium's Env type lacks its ALE attributes
        self._ale = ale_env.ale
        # step() runs AtariPreprocessing.step over AtariEnv.step (frameskip 1) itself, straight on the ALE:
        # the same calls in the same order, without the per-frame observation copies, info dicts and
        # wrapper layers (the engine's collection runs at raw ale-py speed; benchmarks/atari.py).
        self._pre = env
        self._action_set = list(ale_env._action_set)
        self._grab = self._ale.getScreenGrayscale if grayscale else self._ale.getScreenRGB
        self._seeded = False
        self._continue = False  # the last episode ended on a lost life: the next reset continues the game
        self._lives = 0
        self._frames = np.zeros(shape, np.uint8)
        self._last = np.zeros(shape[1:], np.uint8)  # the newest frame, where a lost life's next episode starts

        info = {"game": name, "rom": rom, "ale_id": ale_id,
                "protocol": None if protocol is None else str(protocol).strip().lower(), **s,
                "frame_stack": frame_stack, "screen_size": screen_size, "grayscale": grayscale,
                "max_pool": s["frame_skip"] > 1, "mode": mode, "difficulty": difficulty,
                "reward_clipping": False}
        if int(num_envs) > 1:
            info["num_envs"] = int(num_envs)
        self.task_spec = TaskSpec(suite="Atari", task=name, obs_shape=shape, discrete=True,
                                  num_actions=int(cast(spaces.Discrete, self.action_space).n),
                                  action_repeat=s["frame_skip"], info=info)

    def _frame(self, obs: np.ndarray) -> np.ndarray:
        return obs[None] if obs.ndim == 2 else obs.transpose(2, 0, 1)

    # self._frames is never written in place (each step makes a new array), so it is returned as is.
    def _start(self, obs: np.ndarray) -> np.ndarray:
        self._lives = self._ale.lives()
        frame = self._frame(obs)
        if self.dopamine:  # the agent's reset_all/reset_one: zeros, then the newest frame
            self._frames = np.concatenate([np.zeros_like(frame)] * (self.frame_stack - 1) + [frame])
        else:
            self._frames = np.concatenate([frame] * self.frame_stack)
        return self._frames

    def _noop_steps(self, obs: np.ndarray, info: dict[str, Any]) -> tuple[np.ndarray, dict[str, Any]]:
        """dopamine's ``_initialize_episode``: 0…noop_max−1 no-op steps (``randint(0, max_noops)``); a terminal
        among them (a lost life under ``terminal_on_life_loss``, or the game's end) resets the game again."""
        if self.noop_max <= 0:
            return obs, info
        for _ in range(int(self.env.unwrapped.np_random.integers(0, self.noop_max))):
            lives = self._ale.lives()
            obs, _, terminated, truncated, info = self._step(0)
            if terminated or truncated or (self.terminal_on_life_loss and info["lives"] < lives):
                obs, info = self.env.reset()
        return obs, info

    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None):
        if self._continue:
            self._continue = False
            if self.dopamine:  # the game goes on from the screen where the life was lost, the agent acting
                return self._start(self._last), {}
            obs, _, terminated, truncated, info = self.env.step(0)  # action 0 is NOOP in every action set
            if not (terminated or truncated):
                return self._start(obs), info
        if seed is None and not self._seeded:
            seed = self.base_seed
        self._seeded = True
        obs, info = self.env.reset(seed=None if seed is None else int(seed) % 2**32, options=options)
        if self.dopamine:
            obs, info = self._noop_steps(obs, info)
        return self._start(obs), info

    def _step(self, action: int) -> tuple[np.ndarray, float, bool, bool, dict[str, Any]]:
        """``AtariPreprocessing.step`` (``terminal_on_life_loss=False``) over ``AtariEnv.step`` at frameskip 1
        (dopamine's with ``starts=dopamine``: ``_step_dopamine``)."""
        if self._life_break:
            return self._step_dopamine(action)
        pre, ale, grab, skip = self._pre, self._ale, self._grab, self._pre.frame_skip
        ale_action = self._action_set[action]
        reward, terminated, truncated = 0.0, False, False
        for t in range(skip):
            reward += ale.act(ale_action, 1.0)
            if ale.game_over():  # with truncation; which of the two it was is asked only when it happens
                terminated = ale.game_over(with_truncation=False)
                truncated = not terminated and ale.game_truncated()
                break
            if t == skip - 2:
                grab(pre.obs_buffer[1])
            elif t == skip - 1:
                grab(pre.obs_buffer[0])
        pre.game_over = terminated
        return pre._get_obs(), reward, terminated, truncated, {"lives": ale.lives()}

    def _step_dopamine(self, action: int) -> tuple[np.ndarray, float, bool, bool, dict[str, Any]]:
        """dopamine's ``AtariPreprocessing.step`` with ``terminal_on_life_loss``: each frame grabs the screen
        when it is one of the last two, then a lost life (or the game's end) stops the action's repeats,
        so that step plays fewer frames; its max-pool then holds whatever the buffers last grabbed."""
        pre, ale, grab, skip = self._pre, self._ale, self._grab, self._pre.frame_skip
        ale_action = self._action_set[action]
        reward, terminated, truncated = 0.0, False, False
        lives = ale.lives()
        for t in range(skip):
            reward += ale.act(ale_action, 1.0)
            if t == skip - 2:
                grab(pre.obs_buffer[1])
            elif t == skip - 1:
                grab(pre.obs_buffer[0])
            if ale.game_over():
                terminated = ale.game_over(with_truncation=False)
                truncated = not terminated and ale.game_truncated()
                break
            if ale.lives() < lives:
                break
        pre.game_over = terminated
        return pre._get_obs(), reward, terminated, truncated, {"lives": ale.lives()}

    def step(self, action: Any):
        obs, reward, terminated, truncated, info = self._step(int(action))
        frame = self._frame(obs)
        self._frames = np.concatenate([self._frames[frame.shape[0]:], frame])
        lives = info["lives"]
        if self.life_loss and lives < self._lives and not (terminated or truncated):
            terminated = self._continue = True
            info = {**info, "life_loss": True}
            self._last = obs
        elif self.dopamine and self.terminal_on_life_loss and lives < self._lives and not (terminated or truncated):
            self._frames = self._start(obs)  # evaluation: dopamine's runner zeroes the stack at every terminal
        self._lives = lives
        return self._frames, float(reward), bool(terminated), bool(truncated), info
