"""Published agents a run can be compared with, and the comparison: run.json's protocol card (environment
and agent settings, ``ML.runinfo.protocol_card``) against each published configuration of the run's suite.

A run matches a published result only when every listed setting is the same, the agent's as much as the
environment's: network, n-step, update period, target update, ε schedule, augmentation, optimiser, replay,
evaluation. run.json records the nearest published configuration and every difference
(``protocol.reference``); the pipeline (``ML.benchmarking.references``) draws a published reference only
beside runs without any. Kept in the engine so that a run can record it without the pipeline.
"""

from __future__ import annotations

import inspect
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from ML.agents.base import AgentSettings
from ML.blocks.network import NetworkSettings
from ML.drivers.settings import InteractiveSettings, ReplaySettings
from ML.hyperparams import resolve

AGENT_KEYS = ("agent", "eyes", "model", "augmentation", "optimizer", "lr", "batch_size", "replay")  # + agent.*
# Published environment protocols (the card's environment fields).
ATARI100K_ENV: dict[str, Any] = {
    "sticky_actions": 0.0, "action_set": "minimal", "terminal_on_life_loss": True, "episode_starts": "dopamine",
    "noop_max": 30, "max_episode_frames": 108_000, "action_repeat": 4, "frame_stack": 4,
    "final_eval_episodes": 100, "eval_envs": 100, "frame_budget": 400_000,
}
DMC_DRQV2_ENV: dict[str, Any] = {"observation": "pixels 84x84", "action_repeat": 2, "frame_stack": 3,
                                 "eval_episodes": 10}


def environment_fields(card: dict[str, Any]) -> dict[str, Any]:
    """A protocol card without the agent's settings (``AGENT_KEYS``, ``agent.*``) and the published comparison:
    what two agents must share to be compared with each other."""
    return {k: v for k, v in card.items()
            if k not in AGENT_KEYS and not k.startswith("agent.") and k != "reference"}


@dataclass(frozen=True)
class Published:
    """One published configuration: its name (as the reference tables name it), suite, source, and the card
    values a run must share with it."""

    name: str
    suite: str
    source: str
    card: dict[str, Any]

    def differences(self, card: dict[str, Any] | None) -> list[str]:
        """What differs, as ``field value (published: value)``; empty when the run is this configuration."""
        if not card:
            return ["no protocol card in run.json"]
        out = []
        required = self.card
        if "agent" in required and "agent" not in card:  # a card written before agents were recorded
            out.append(f"agent settings not recorded (published: {required['agent']}, {self.source})")
            required = {k: v for k, v in required.items() if k not in AGENT_KEYS and not k.startswith("agent.")}
        for key, want in required.items():
            have = card.get(key)
            same = str(have).split(" ")[0] == want if key == "action_set" else have == want
            if not same:
                out.append(f"{key} {have} (published: {want})")
        return out


# DrQ(ε) as dopamine runs it (google/dopamine, Apache-2.0): labs/atari_100k/configs/DrQ_eps.gin,
# atari_100k_runner.py, atari_100k_rainbow_agent.py, jax/networks.py (the recipe atari100k is this).
DRQ_EPS = Published("DrQ(eps)", "Atari", "google/dopamine labs/atari_100k/configs/DrQ_eps.gin (Apache-2.0)", {
    **ATARI100K_ENV,
    "agent": "DQNAgent",
    "agent.gamma": 0.99, "agent.n_step": 10, "agent.double": True, "agent.dueling": False,
    "agent.target_update": 1, "agent.tau": 0.0, "agent.learn_start": 1600, "agent.update_every": 1,
    "agent.updates_per_step": 1, "agent.eps_start": 1.0, "agent.eps_end": 0.01, "agent.eps_hold_steps": 1599,
    "agent.eps_decay_steps": 5000, "agent.eval_eps": 0.001, "agent.huber": True, "agent.grad_clip": 0.0,
    "agent.reward_clip": 1.0, "agent.augment": True,
    "eyes": "Identity()",
    "model": "FullRainbowNetwork(distributional=False, dueling=True, hidden_dim=512, noisy=False, num_atoms=1, "
             "renormalize=False, sigma0=0.1, vmax=10.0, vmin=None)",
    "augmentation": "DrQAtariAug(pad=4, scale=0.05)",
    "optimizer": "Adam(eps=0.00015)", "lr": 0.0001, "batch_size": 32, "replay": "uniform",
})
# DrQ-v2 (facebookresearch/drqv2, MIT, cfgs/config.yaml): the settings every task shares; n-step, batch size,
# learning rate, feature_dim, std schedule and replay size are set per task by the drqv2 protocol file.
DRQV2 = Published("DrQ-v2", "DMC", "facebookresearch/drqv2 cfgs/config.yaml (MIT)", {
    **DMC_DRQV2_ENV,
    "agent": "DrQV2Agent", "agent.hidden_dim": 1024, "agent.critic_tau": 0.01, "agent.gamma": 0.99,
    "agent.update_every": 2, "agent.learn_start": 2000, "agent.num_expl_steps": 2000, "agent.stddev_clip": 0.3,
    "agent.augment": True, "eyes": "Encoder(channels=32, depth=4)", "augmentation": "RandomShiftsAug(pad=4)",
    "optimizer": "Adam()", "replay": "uniform",
})
# DER and SPR as dopamine runs them (google/dopamine, Apache-2.0): labs/atari_100k/configs/DER.gin, SPR.gin,
# spr_agent.py, spr_networks.py, jax/agents/full_rainbow (the recipes der and spr are these). The Rainbow
# settings both share: C51 on noisy dueling heads, double Q, 10-step returns, prioritized replay, no clipping.
_RAINBOW = {
    **ATARI100K_ENV,
    "agent.gamma": 0.99, "agent.n_step": 10, "agent.double": True, "agent.dueling": False, "agent.tau": 0.0,
    "agent.update_every": 1, "agent.eval_eps": 0.001, "agent.grad_clip": 0.0, "agent.reward_clip": 1.0,
    "agent.prioritized": True, "eyes": "Identity()", "optimizer": "Adam(eps=0.00015)", "lr": 0.0001,
    "batch_size": 32, "replay": "prioritized",
}
DER = Published("DER", "Atari", "google/dopamine labs/atari_100k/configs/DER.gin (Apache-2.0)", {
    **_RAINBOW,
    "agent": "RainbowAgent",
    "agent.target_update": 2000, "agent.learn_start": 1600, "agent.updates_per_step": 1,
    "agent.eps_start": 0.0, "agent.eps_end": 0.0, "agent.eps_hold_steps": 0, "agent.eps_decay_steps": 0,
    "agent.augment": False, "agent.stratified": False,
    "model": "FullRainbowNetwork(distributional=True, dueling=True, hidden_dim=512, noisy=True, num_atoms=51, "
             "renormalize=False, sigma0=0.1, vmax=10.0, vmin=None)",
    "augmentation": "none",
})
SPR = Published("SPR", "Atari", "google/dopamine labs/atari_100k/configs/SPR.gin, spr_agent.py (Apache-2.0)", {
    **_RAINBOW,
    "agent": "SPRAgent",
    "agent.target_update": 1, "agent.learn_start": 2000, "agent.updates_per_step": 2,
    "agent.eps_start": 1.0, "agent.eps_end": 0.0, "agent.eps_hold_steps": 1999, "agent.eps_decay_steps": 2001,
    "agent.augment": True, "agent.stratified": True, "agent.jumps": 5, "agent.spr_weight": 5.0,
    "model": "FullRainbowNetwork(distributional=True, dueling=True, hidden_dim=512, noisy=True, num_atoms=51, "
             "renormalize=True, sigma0=0.5, vmax=10.0, vmin=None)",
    "augmentation": "DrQAtariAug(pad=4, scale=0.05)",
})
PUBLISHED: tuple[Published, ...] = (DRQ_EPS, DER, SPR, DRQV2)


def compare(card: dict[str, Any] | None, suite: str) -> dict[str, Any] | None:
    """The published configuration of ``suite`` nearest to ``card`` (the fewest differences) and what differs:
    ``{"reference", "matches", "differences"}``; ``None`` when the suite has none."""
    candidates = [p for p in PUBLISHED if p.suite == suite]
    if not candidates:
        return None
    nearest = min(candidates, key=lambda p: len(p.differences(card)))
    differences = nearest.differences(card)
    return {"reference": nearest.name, "source": nearest.source, "matches": not differences,
            "differences": differences}


def _part(name: Any, args: Mapping[str, Any] | None, shape_args: tuple[str, ...]) -> str:
    """``Name(arg=value, ...)``: a part with every argument it takes (its defaults filled in), sorted."""
    if name is None or (isinstance(name, str) and name.strip() in ("", "null")):
        return "none"
    try:
        target = resolve(name, "part")
    except Exception:  # noqa: BLE001 - a name the card cannot resolve is still recorded as given
        return str(name)
    values: dict[str, Any] = {}
    try:
        for param in inspect.signature(target).parameters.values():
            if param.name not in shape_args and param.default is not inspect.Parameter.empty \
                    and param.kind is not param.VAR_KEYWORD:
                values[param.name] = param.default
    except (TypeError, ValueError):
        pass
    values.update(args or {})
    label = getattr(target, "__name__", str(name))
    return f"{label}({', '.join(f'{k}={values[k]!r}' for k in sorted(values))})"


_SHAPES = ("in_shape", "out_shape", "spec", "settings", "params", "lr")


def agent_card(config: Mapping[str, Any]) -> dict[str, Any]:
    """The learner's side of the card: the agent class and every constructor argument (defaults filled in),
    the network parts, augmentation, optimiser, learning rate, batch size and replay."""
    card: dict[str, Any] = {}
    chosen = AgentSettings.from_config(config)
    if chosen.Agent is None:
        return card
    net, replay = NetworkSettings.from_config(config), ReplaySettings.from_config(config)
    target = resolve(chosen.Agent, "Agent")
    card["agent"] = getattr(target, "__name__", str(chosen.Agent))
    args: dict[str, Any] = {}
    for klass in reversed(getattr(target, "__mro__", (target,))):  # a subclass passing **kwargs to its base's
        init = vars(klass).get("__init__") if isinstance(klass, type) else klass
        if init is None or klass is object:
            continue
        args.update({p.name: p.default for p in inspect.signature(init).parameters.values()
                     if p.name not in _SHAPES and p.default is not inspect.Parameter.empty})
    args.update(chosen.agent or {})
    card.update({f"agent.{k}": v for k, v in sorted(args.items())})
    card["eyes"] = _part(net.Eyes, net.eyes, _SHAPES)
    card["model"] = _part(net.Model, net.model, _SHAPES)
    augment = bool(args.get("augment", True))
    card["augmentation"] = _part(net.Aug, net.aug, _SHAPES) if augment else "none"
    given = dict(net.optim or {})
    arguments = ", ".join(f"{k}={given[k]!r}" for k in sorted(given))
    card["optimizer"] = f"{getattr(net.Optim, '__name__', net.Optim)}({arguments})"
    card["lr"] = net.lr
    card["batch_size"] = replay.batch_size
    stream = InteractiveSettings.from_config(config).stream
    card["replay"] = "stream" if stream else "prioritized" if args.get("prioritized") else "uniform"
    return card
