"""Agents: what learns. Each is an ``nn.Module`` satisfying ``ML.agents.base.Agent``, named by ``Agent=``."""
