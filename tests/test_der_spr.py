"""DER and SPR (RainbowAgent, SPRAgent) against a direct transcription of dopamine's update.

The transcription below is written from google/dopamine's JAX code (Apache-2.0), function by function, one
sample at a time where dopamine vmaps, in flax's layouts (HWC images, (in, out) kernels, HWC flattening):
``jax/networks.py`` (FullRainbowNetwork, NoisyNetwork), ``jax/agents/rainbow/rainbow_agent.py``
(project_distribution), ``jax/losses.py``, ``jax/agents/full_rainbow/full_rainbow_agent.py`` (train,
target_output), ``labs/atari_100k/atari_100k_rainbow_agent.py`` (the prioritized loss weights),
``labs/atari_100k/spr_networks.py`` (renormalize, ConvTMCell, SPRNetwork) and ``labs/atari_100k/spr_agent.py``
(train). The agent's weights are converted into those layouts; losses and every gradient must agree.
"""

from __future__ import annotations

import copy

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from ML.agents.rainbow import RainbowAgent
from ML.agents.spr import SPRAgent
from ML.blocks.rainbow import NoisyLinear
from ML.checkpoints import agent_settings
from ML.envs.base import TaskSpec
from ML.hyperparams import instantiate, resolve_config

B, A, K = 4, 3, 3  # K: prediction steps (the recipe's 5 cost the test time, not coverage)
OBS = (4, 84, 84)


# ---------------------------------------------------------------- the transcription (flax layouts) -----

def xla_same_pads(size: int, kernel: int, stride: int) -> tuple[int, int]:
    # lax.padtype_to_pads for 'SAME'
    out = (size + stride - 1) // stride
    pad = max(0, (out - 1) * stride + kernel - size)
    return pad // 2, pad - pad // 2


def nn_conv(x, kernel, bias, stride):
    """flax nn.Conv (padding SAME) on one HWC image with an HWIO kernel."""
    kh, kw = kernel.shape[:2]
    top, bottom = xla_same_pads(x.shape[0], kh, stride)
    left, right = xla_same_pads(x.shape[1], kw, stride)
    chw = F.pad(x.permute(2, 0, 1), (left, right, top, bottom))
    y = F.conv2d(chw[None], kernel.permute(3, 2, 0, 1), bias, stride=stride)[0]
    return y.permute(1, 2, 0)


def noisy_network(x, p, features, f_p, f_q, eval_mode=False):
    """dopamine's NoisyNetwork.__call__ given f(p), f(q) (the key's draws)."""
    if eval_mode:
        w_epsilon = torch.zeros(x.shape[0], features)
        b_epsilon = torch.zeros(features)
    else:
        w_epsilon = f_p[:, None] * f_q[None, :]
        b_epsilon = f_q
    w = p["kernel_mu"] + p["kernel_sigma"] * w_epsilon
    ret = x @ w
    b = p["bias_mu"] + p["bias_sigma"] * b_epsilon
    return ret + b


def renormalize(tensor):
    shape = tensor.shape
    tensor = tensor[None].reshape(1, -1)
    max_val = tensor.max(-1, keepdim=True).values
    min_val = tensor.min(-1, keepdim=True).values
    return ((tensor - min_val) / (max_val - min_val + 1e-5)).reshape(shape)


def encode(params, x, spr):
    for i, stride in enumerate((4, 2, 1)):
        x = torch.relu(nn_conv(x, params[f"conv{i}"]["kernel"], params[f"conv{i}"]["bias"], stride))
    return renormalize(x) if spr else x


def full_rainbow_network(params, x, support, noise, spr=False):
    """FullRainbowNetwork (spr: SPRNetwork's renormalized latent) on one HWC observation in [0, 1]."""
    latent = encode(params, x, spr)
    x = latent.reshape(-1)
    x = torch.relu(noisy_network(x, params["hidden"], 512, *noise["hidden"]))
    adv = noisy_network(x, params["advantage"], A * 51, *noise["advantage"])
    value = noisy_network(x, params["value"], 51, *noise["value"])
    adv = adv.reshape(A, 51)
    value = value.reshape(1, 51)
    logits = value + (adv - adv.mean(0, keepdim=True))
    probabilities = torch.softmax(logits, -1)
    q_values = (support * probabilities).sum(1)
    return q_values, logits, probabilities, latent


def project_distribution(supports, weights, target_support):
    v_min, v_max = target_support[0], target_support[-1]
    num_dims = target_support.shape[0]
    delta_z = (v_max - v_min) / (num_dims - 1)
    clipped_support = torch.clip(supports, v_min, v_max)
    numerator = torch.abs(clipped_support - target_support[:, None])
    quotient = 1 - (numerator / delta_z)
    clipped_quotient = torch.clip(quotient, 0, 1)
    inner_prod = clipped_quotient * weights
    return torch.squeeze(torch.sum(inner_prod, -1))


def softmax_cross_entropy_loss_with_logits(labels, logits):
    return -torch.sum(labels * torch.log_softmax(logits, -1))


def target_output(online, target, next_state, reward, terminal_discount, support, noise, spr):
    """full_rainbow_agent.target_output for one transition; ``terminal_discount`` is
    cumulative_gamma * (1 - terminal) (the replay's ``discount``)."""
    target_network_dist = full_rainbow_network(target, next_state, support, noise, spr)
    next_state_target_outputs = full_rainbow_network(online, next_state, support, noise, spr)  # double_dqn
    next_qt_argmax = torch.argmax(next_state_target_outputs[0])
    next_probabilities = target_network_dist[2][next_qt_argmax]
    target_support = reward + terminal_discount * support
    return project_distribution(target_support, next_probabilities, support).detach()


def transition_model(params, latent, actions):
    """spr_networks.TransitionModel: a scan of ConvTMCell over the actions (HWC latents)."""
    out = []
    for action in actions:
        onehot = F.one_hot(action, A).float()
        x = torch.cat([latent, onehot.expand(latent.shape[0], latent.shape[1], A)], -1)
        x = torch.relu(nn_conv(x, params["tm0"]["kernel"], params["tm0"]["bias"], 1))
        x = torch.relu(nn_conv(x, params["tm1"]["kernel"], params["tm1"]["bias"], 1))
        latent = renormalize(x)
        out.append(latent)
    return torch.stack(out)


def reference_update(online, target, batch, loss_noise, target_noise, spr_weight=0.0):
    """full_rainbow_agent.train / spr_agent.train's loss_fn: (mean_loss, per-sample loss, dqn loss)."""
    support = torch.linspace(-10.0, 10.0, 51)
    spr = spr_weight > 0
    states = batch["obs"].permute(0, 2, 3, 1).float() / 255.0
    next_states = batch["next_obs"].permute(0, 2, 3, 1).float() / 255.0
    probs = batch["probability"].double()
    loss_weights = 1.0 / torch.sqrt(probs + 1e-10)
    loss_weights = (loss_weights / loss_weights.max()).float()
    targets = [target_output(online, target, next_states[i], batch["reward"][i], batch["discount"][i],
                             support, target_noise, spr) for i in range(B)]
    dqn_loss, spr_loss = [], []
    for i in range(B):
        _, logits, _, latent = full_rainbow_network(online, states[i], support, loss_noise, spr)
        chosen_action_logits = logits[batch["action"][i]]
        dqn_loss.append(softmax_cross_entropy_loss_with_logits(targets[i], chosen_action_logits))
        if spr:
            pred_latents = transition_model(online, latent, batch["actions"][i])
            projected = torch.stack([noisy_network(p.reshape(-1), online["hidden"], 512, *loss_noise["hidden"],
                                                   eval_mode=True) for p in pred_latents])  # spr_predict's vmap
            predictions = projected @ online["predictor"]["kernel"] + online["predictor"]["bias"]
            future = batch["future_obs"][i].permute(0, 2, 3, 1).float() / 255.0
            with torch.no_grad():
                spr_targets = torch.stack([noisy_network(encode(target, f, True).reshape(-1), target["hidden"],
                                                         512, None, None, eval_mode=True) for f in future])
            predictions = predictions / torch.linalg.norm(predictions, 2, -1, keepdim=True)
            spr_targets = spr_targets / torch.linalg.norm(spr_targets, 2, -1, keepdim=True)
            per_step = torch.pow(predictions - spr_targets, 2).sum(-1)
            spr_loss.append((per_step * batch["same_episode"][i]).mean(0))
    dqn_loss = torch.stack(dqn_loss)
    loss = dqn_loss + spr_weight * torch.stack(spr_loss) if spr else dqn_loss
    return torch.mean(loss_weights * loss), loss, dqn_loss


# ---------------------------------------------------------------- the agent's weights in flax layouts -----

def to_flax(agent_q, transition=None, predictor=None):
    """The network's parameters as flax leaves (copies that require grad), and how to map grads back."""
    net = agent_q[-1]
    convs = [m for m in net.torso if isinstance(m, torch.nn.Conv2d)]
    c, h, w = net.latent_shape
    params, back = {}, {}

    def leaf(name, key, value, to_torch):
        leaf_tensor = value.detach().clone().requires_grad_(True)
        params.setdefault(name, {})[key] = leaf_tensor
        back[(name, key)] = to_torch
        return leaf_tensor

    for i, conv in enumerate(convs):
        leaf(f"conv{i}", "kernel", conv.weight.permute(2, 3, 1, 0), (conv.weight, lambda g: g.permute(3, 2, 0, 1)))
        leaf(f"conv{i}", "bias", conv.bias, (conv.bias, lambda g: g))

    def hwc_rows(weight):  # torch (out, C*H*W) → flax kernel (H*W*C, out)
        return weight.view(-1, c, h, w).permute(2, 3, 1, 0).reshape(h * w * c, -1)

    def chw_cols(grad):
        return grad.view(h, w, c, -1).permute(3, 2, 0, 1).reshape(-1, c * h * w)

    for name in ("hidden", "advantage", "value"):
        layer = getattr(net, name)
        first = name == "hidden"
        for key, param in (("kernel_mu", layer.weight_mu), ("kernel_sigma", layer.weight_sigma)):
            leaf(name, key, hwc_rows(param) if first else param.t(),
                 (param, chw_cols if first else (lambda g: g.t())))
        leaf(name, "bias_mu", layer.bias_mu, (layer.bias_mu, lambda g: g))
        leaf(name, "bias_sigma", layer.bias_sigma, (layer.bias_sigma, lambda g: g))
    if transition is not None:
        for i, conv in enumerate((transition.conv1, transition.conv2)):
            leaf(f"tm{i}", "kernel", conv.weight.permute(2, 3, 1, 0), (conv.weight, lambda g: g.permute(3, 2, 0, 1)))
            leaf(f"tm{i}", "bias", conv.bias, (conv.bias, lambda g: g))
        leaf("predictor", "kernel", predictor.weight.t(), (predictor.weight, lambda g: g.t()))
        leaf("predictor", "bias", predictor.bias, (predictor.bias, lambda g: g))
    return params, back


def noise_of(net):
    """The f(p), f(q) each noisy layer holds, in flax order (the shared layer's p in HWC order)."""
    c, h, w = net.latent_shape
    hidden = net.hidden
    return {"hidden": (hidden.eps_in.view(c, h, w).permute(1, 2, 0).reshape(-1).clone(), hidden.eps_out.clone()),
            "advantage": (net.advantage.eps_in.clone(), net.advantage.eps_out.clone()),
            "value": (net.value.eps_in.clone(), net.value.eps_out.clone())}


# ---------------------------------------------------------------- the tests -----

def _agent(task: str, **args):
    config = resolve_config((), {"task": task, "device": "cpu", "batch_size": B})
    spec = TaskSpec(suite="Atari", task="test", obs_shape=OBS, discrete=True, num_actions=A)
    return instantiate(config.Agent, {**config.agent, **args,
                                      "spec": spec, "settings": agent_settings(config)}, label="Agent")


def _batch(seed: int, spr: bool) -> dict[str, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    batch = {"obs": torch.randint(0, 256, (B, *OBS), generator=g, dtype=torch.uint8),
             "next_obs": torch.randint(0, 256, (B, *OBS), generator=g, dtype=torch.uint8),
             "action": torch.tensor([0, 2, 1, 2]),
             "reward": torch.tensor([1.0, 0.0, -1.0, 0.5]),
             "discount": torch.tensor([0.99 ** 10, 0.0, 0.99 ** 10, 0.99 ** 7]),  # one terminal, one cut short
             "probability": torch.tensor([0.1, 0.02, 0.3, 0.05]),
             "index": torch.arange(B)}
    if spr:
        batch["future_obs"] = torch.randint(0, 256, (B, K, *OBS), generator=g, dtype=torch.uint8)
        batch["actions"] = torch.randint(0, A, (B, K), generator=g)
        batch["same_episode"] = torch.tensor([[1.0, 1, 1], [1, 1, 0], [1, 1, 1], [1, 0, 0]])
    return batch


def _perturb_target(agent) -> None:
    """A target network unlike the online one, so that mixing them up shows."""
    with torch.no_grad():
        for p in agent.target.parameters():
            p.add_(0.01 * torch.randn_like(p))


@pytest.mark.parametrize("task", ["der", "spr"])
def test_one_update_equals_dopamines_transcription(task: str) -> None:
    torch.manual_seed(0)
    spr = task == "spr"
    # no augmentation: its draws are DrQAtariAug's, tested in tests/test_rainbow.py
    agent = _agent(task, augment=False, **({"jumps": K} if spr else {}))
    assert isinstance(agent, SPRAgent if spr else RainbowAgent)
    _perturb_target(agent)
    batch = _batch(1, spr)
    total, td_loss, _ = agent.losses(batch)  # fresh noise: one draw for the target, another for the loss
    weights = agent.loss_weights(batch)
    loss = (total * weights).mean()
    agent.optim.zero_grad()
    loss.backward()
    # dopamine's target gives one key to both networks; its loss, another
    target_noise, loss_noise = noise_of(agent.target_net), noise_of(agent.net)
    assert not torch.equal(target_noise["value"][1], loss_noise["value"][1])

    online, back = to_flax(agent.q, getattr(agent, "transition", None), getattr(agent, "predictor", None))
    target, _ = to_flax(agent.target)
    mean_loss, per_sample, dqn_loss = reference_update(online, target, batch, loss_noise, target_noise,
                                                       spr_weight=5.0 if spr else 0.0)
    mean_loss.backward()
    torch.testing.assert_close(loss, mean_loss, rtol=1e-5, atol=1e-6)
    torch.testing.assert_close(total, per_sample, rtol=1e-5, atol=1e-6)
    torch.testing.assert_close(td_loss, dqn_loss, rtol=1e-5, atol=1e-6)
    if spr:
        assert (per_sample - dqn_loss).abs().min() > 1e-3  # the SPR term is there
    checked = 0
    for (name, key), (param, to_torch) in back.items():
        expected = to_torch(online[name][key].grad)
        torch.testing.assert_close(param.grad, expected, rtol=1e-4, atol=1e-5 * float(expected.abs().max()),
                                   msg=lambda m, n=name, k=key: f"{n}.{k}: {m}")
        checked += 1
    assert checked == len(agent.params) == (24 if spr else 18)
    assert all(p.grad is None for p in agent.target.parameters())  # the target network takes no gradient


def test_priorities_and_weights_follow_dopamine() -> None:
    """Loss weights 1/√(p + 1e-10) over the batch's largest; new priorities √(loss + 1e-10)."""
    torch.manual_seed(0)
    agent = _agent("der")
    batch = _batch(2, False)
    weights = agent.loss_weights(batch)
    expected = 1 / np.sqrt(np.array([0.1, 0.02, 0.3, 0.05]) + 1e-10)
    np.testing.assert_allclose(weights.numpy(), expected / expected.max(), rtol=1e-6)
    metrics, td_loss = agent.learn_td(batch)
    assert np.isfinite(metrics["loss"]) and td_loss.shape == (B,) and (td_loss > 0).all()


def test_copy_of_the_target_counts_environment_steps() -> None:
    agent = _agent("der", target_update=3)
    agent.learn_start = 0
    from ML.replay import Replay

    replay = Replay(None, 100, OBS, np.uint8, (), np.int64, frame_stack=4)
    frame = np.zeros(OBS, np.uint8)
    replay.start(frame)
    for t in range(40):
        replay.add(t % A, 1.0, frame, False, False)
    with torch.no_grad():
        agent.net.value.bias_mu.add_(1.0)  # online differs from target
    synced = []
    for step in range(1, 7):
        agent.update(replay, step)
        synced.append(torch.equal(agent.target_net.value.bias_mu, agent.net.value.bias_mu))
    assert synced == [False, False, True, False, False, True]
    assert agent.updates == 6


def test_spr_agent_trains_transition_model_and_predictor_with_the_network() -> None:
    agent = _agent("spr")
    optimised = {id(p) for group in agent.optim.param_groups for p in group["params"]}
    for module in (agent.q, agent.transition, agent.predictor):
        assert all(id(p) in optimised for p in module.parameters())
    assert agent.net.renormalize and isinstance(agent.net.hidden, NoisyLinear)
    assert agent.net.hidden.weight_sigma[0, 0].item() == pytest.approx(0.5 / np.sqrt(64 * 11 * 11))
    assert copy.deepcopy(agent.transition).conv1.in_channels == 64 + A


def test_noisy_layer_acts_on_one_row_as_on_a_batch() -> None:
    """Acting takes the factorised product (no noisy weight built); it is the same layer."""
    torch.manual_seed(0)
    layer = NoisyLinear(64, 8, sigma0=0.5)
    layer.reset_noise()
    x = torch.randn(3, 64)
    batched = layer(x)
    torch.testing.assert_close(torch.cat([layer(row[None]) for row in x]), batched)
    torch.testing.assert_close(layer(x[0]), batched[0])
    assert not torch.allclose(batched, layer.mean(x))  # the noise is in both


def test_an_ema_target_moves_tau_of_the_way_after_every_update() -> None:
    agent = _agent("spr", tau=0.25, jumps=2, augment=False, updates_per_step=1)
    agent.learn_start = 0
    from ML.replay import Replay

    replay = Replay(None, 100, OBS, np.uint8, (), np.int64, frame_stack=4)
    frame = np.zeros(OBS, np.uint8)
    replay.start(frame)
    for t in range(40):
        replay.add(t % A, 1.0, frame, False, False)
    before = agent.target_net.value.bias_mu.clone()
    agent.update(replay, 1)
    after = agent.net.value.bias_mu.detach()
    assert not torch.equal(after, before)
    torch.testing.assert_close(agent.target_net.value.bias_mu, before + 0.25 * (after - before))
