"""Train briefly in torch, then load the checkpoint into TensorFlow and MindSpore and check
that all three pick the same greedy actions."""

import numpy as np

import xmarl
from xmarl import registry
from xmarl.core.maddpg import MADDPG as core
from xmarl.training.checkpoint import load_weights

result = xmarl.run("maddpg", "torch", "target", progress=False)
cfg = xmarl.load_config(config=result.config_path)
spec = result.learner.spec
weights = load_weights(result.checkpoint_dir)
obs = np.random.default_rng(0).random((50, spec.n_agents, spec.obs_dim)).astype(np.float32)
for backend in ("torch", "tensorflow", "mindspore"):
    learner = registry.get("learner", "maddpg", backend)(spec, cfg.maddpg, core.init_weights(spec, cfg.maddpg, 1))
    learner.set_weights(weights)
    actions, _ = learner.policy.act(obs)
    print(backend, actions[:3].tolist())
