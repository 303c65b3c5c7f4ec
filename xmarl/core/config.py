"""The config sections of the methods, beside the method code that reads them (the core imports
nothing from :mod:`xmarl.config`, which assembles the run schema from these sections). Defaults
live in ``configs/defaults.yaml``, not here, so every field is required and the merged YAML
must provide it."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import AllowInfNan, BaseModel, ConfigDict, Field, PositiveFloat, PositiveInt

_FiniteGain = Annotated[PositiveFloat, AllowInfNan(False)]  # an init gain: finite and > 0


def _lr_decay_steps() -> Any:
    return Field(
        description="Decay every learning rate of the section linearly over this many env steps, from its value "
        "to lr_final_fraction times it, and hold it there (None: constant, the paper's setting). Linear decay "
        "over the run is CleanRL's anneal_lr and one of the on-policy choices studied by Andrychowicz et al. "
        "2021 (What matters in on-policy RL); the rate is set from the env step before each batch's updates, "
        "so a resumed run continues it exactly."
    )


def _lr_final_fraction() -> Any:
    return Field(ge=0.0, le=1.0, description="The learning rates at and after lr_decay_steps, as a fraction of "
                 "their initial values (0: decay to zero, as CleanRL does; used only with lr_decay_steps).")


class Section(BaseModel):
    """Base of every config section: unknown keys are errors, assignments are validated."""

    model_config = ConfigDict(extra="forbid", validate_assignment=True, frozen=False)

    def contradictions(self, name: str, run: Any) -> list[tuple[str, str, str]]:
        """``(key, other key, why)`` for each pair of values, valid alone, that contradict each
        other; ``name`` is this section's key in the run config, ``run`` the whole config."""
        return []


class AdamConfig(Section):
    """One Adam definition for every backend: ``w -= lr * m_hat / (sqrt(v_hat) + eps)``."""

    betas: tuple[float, float] = Field(description="Decay rates of the first and second moments.")
    eps: PositiveFloat = Field(description="Added to sqrt(v_hat), after bias correction.")


class OffPolicySection(Section):
    """What every off-policy method's section has (the replay loop reads these): discounting,
    target networks, optimisers, replay and update schedule. A batch must fit in the replay."""

    gamma: float = Field(ge=0.0, le=1.0, description="Discount factor.")
    tau: float = Field(gt=0.0, le=1.0, description="Soft target update rate.")
    lr_actor: PositiveFloat = Field(description="Actor learning rate.")
    lr_critic: PositiveFloat = Field(description="Critic learning rate.")
    adam: AdamConfig = Field(description="Optimiser constants shared by every backend.")
    grad_clip: PositiveFloat | None = Field(description="Max global gradient norm per agent network (None: off).")
    batch_size: PositiveInt = Field(description="Transitions per update.")
    buffer_size: PositiveInt = Field(description="Replay capacity in transitions.")
    warmup_steps: int = Field(ge=0, description="Env steps of uniform-random actions before learning.")
    update_every: PositiveInt = Field(description="Env steps between update rounds.")
    updates_per_round: PositiveInt = Field(description="Gradient updates per round.")

    def contradictions(self, name: str, run: Any) -> list[tuple[str, str, str]]:
        if self.batch_size > self.buffer_size:
            return [(f"{name}.batch_size", f"{name}.buffer_size",
                     f"a batch of {self.batch_size} cannot be drawn from a replay of {self.buffer_size}; "
                     "lower the batch or raise the buffer")]
        return []


class MADDPGConfig(OffPolicySection):
    """MADDPG (Lowe et al. 2017) hyper-parameters."""

    hidden_sizes: list[PositiveInt] = Field(description="Hidden layer widths of actor and critic MLPs.")
    share_parameters: bool = Field(
        description="One actor and one critic for all agents, with an agent-id one-hot input; "
        "otherwise per-agent weights held as one batched tensor."
    )
    policy_reg: float = Field(ge=0.0, description="Weight of the mean squared pre-activation penalty on the actor.")
    gumbel_temperature: PositiveFloat = Field(description="Gumbel-softmax temperature (discrete actions).")
    exploration_noise: float = Field(
        ge=0.0, description="Gaussian action noise, as a fraction of the action range (continuous)."
    )


class COMAConfig(Section):
    """COMA (Foerster et al. 2018) hyper-parameters."""

    gamma: float = Field(ge=0.0, le=1.0, description="Discount factor.")
    td_lambda: float = Field(ge=0.0, le=1.0, description="lambda of the critic's TD(lambda) targets.")
    lr_actor: PositiveFloat = Field(description="Actor learning rate.")
    lr_critic: PositiveFloat = Field(description="Critic learning rate.")
    adam: AdamConfig = Field(description="Optimiser constants shared by every backend.")
    grad_clip: PositiveFloat | None = Field(description="Max global gradient norm per network group (None: off).")
    batch_episodes: PositiveInt = Field(description="Completed episodes per batch (on-policy).")
    update_epochs: PositiveInt = Field(
        description="Updates on each batch; 1 is the paper's algorithm, more reuse the batch (each recomputes "
        "targets and advantages at the current weights)."
    )
    hidden_sizes: list[PositiveInt] = Field(description="Hidden layer widths of the feed-forward actor.")
    recurrent: bool = Field(description="GRU actor trained over whole padded episodes (update_recurrent).")
    rnn_hidden_dim: PositiveInt = Field(description="Width of the recurrent actor's dense layer and GRU.")
    critic_hidden_sizes: list[PositiveInt] = Field(description="Hidden layer widths of the centralised critic.")
    share_parameters: bool = Field(
        description="One actor and one critic for all agents, with an agent-id one-hot input; "
        "otherwise per-agent weights held as one batched tensor."
    )
    target_update_interval: PositiveInt = Field(description="Updates between hard copies of the critic to its target.")
    epsilon_start: float = Field(ge=0.0, le=1.0,
                                 description="Exploration floor at the start: pi = (1-e) softmax + e/|avail|.")
    epsilon_finish: float = Field(ge=0.0, le=1.0, description="Exploration floor after annealing.")
    epsilon_anneal_steps: int = Field(ge=0, description="Env steps over which the floor decays linearly.")
    entropy_coef: float = Field(
        ge=0.0,
        description="Weight of a policy-entropy bonus: the actor loss gets -entropy_coef H(pi_a(.|tau_a)) per "
        "agent-step, weighted and normalised as the policy-gradient term (0: none, the paper's COMA; an entropy "
        "bonus as in A3C, Mnih et al. 2016, used by XuanCe's COMA and EPyMARL's actor-critic methods)."
    )
    advantage_norm: bool = Field(
        description="Normalise the counterfactual advantages to zero mean and unit std over the batch's weighted "
        "agent-steps (real steps of agents in the episode) before they weigh log pi (off: the paper's COMA; as "
        "in PPO implementations, e.g. CleanRL, and XuanCe's COMA)."
    )
    actor_output_gain: _FiniteGain | None = Field(
        description="Initialise the actor's logits layer (feed-forward and recurrent) with an orthogonal kernel "
        "scaled by this gain and a zero bias, so the initial policy is near uniform (None: the uniform fan-in "
        "rule of every other layer, the paper's setting). A small last-layer gain such as 0.01 helps "
        "on-policy learning (Andrychowicz et al. 2021, What matters in on-policy RL); CleanRL's PPO initialises "
        "its policy's last layer so (orthogonal, gain 0.01) and XuanCe's COMA configs use orthogonal init with "
        "gain 0.01."
    )
    lr_decay_steps: PositiveInt | None = _lr_decay_steps()
    lr_final_fraction: float = _lr_final_fraction()


class CommNetConfig(Section):
    """CommNet (Sukhbaatar et al. 2016) hyper-parameters."""

    gamma: float = Field(ge=0.0, le=1.0, description="Discount factor of the returns (multi-step tasks).")
    actor_critic: bool = Field(
        description="Advantage from TD(lambda) targets bootstrapped from the value head (multi-step tasks); "
        "otherwise REINFORCE with the learned baseline, R - b(s), as in the paper."
    )
    td_lambda: float = Field(ge=0.0, le=1.0, description="lambda of the actor-critic targets.")
    lr: PositiveFloat = Field(description="Learning rate of the one network (policy and baseline together).")
    adam: AdamConfig = Field(description="Optimiser constants shared by every backend.")
    grad_clip: PositiveFloat | None = Field(description="Max global gradient norm per weight group (None: off).")
    batch_episodes: PositiveInt = Field(description="Completed episodes per batch (on-policy).")
    update_epochs: PositiveInt = Field(
        description="Updates on each batch; 1 is the paper's algorithm, more reuse the batch (each recomputes "
        "targets and advantages at the current weights)."
    )
    value_coef: float = Field(ge=0.0, description="alpha: weight of the baseline's squared error (paper: 0.03).")
    entropy_coef: float = Field(ge=0.0, description="Weight of the policy-entropy bonus (0: none, as in the paper).")
    policy_output_gain: _FiniteGain | None = Field(
        description="Initialise the policy head with an orthogonal kernel scaled by this gain and a zero bias, "
        "so the initial policy is near uniform (None: the uniform fan-in rule of every other layer). A small "
        "last-layer gain such as 0.01 helps on-policy learning (Andrychowicz et al. 2021, What matters in "
        "on-policy RL); CleanRL's PPO initialises its policy's last layer so (orthogonal, gain 0.01) and "
        "XuanCe's COMA configs use orthogonal init with gain 0.01."
    )
    lr_decay_steps: PositiveInt | None = _lr_decay_steps()
    lr_final_fraction: float = _lr_final_fraction()
    value_norm: bool = Field(
        description="Normalise the baseline's targets by running statistics of the returns (the value head "
        "predicts (R - mu) / sigma). Without it, returns far from 0 saturate the network the baseline shares "
        "with the policy."
    )
    hidden_size: PositiveInt = Field(description="Width of the hidden state h and the communication vector c.")
    comm_steps: PositiveInt = Field(
        description="K, the number of modules f^0..f^(K-1); c^0 = 0, so K=2 gives one round of communication "
        "(a recurrent net communicates at every step)."
    )
    activation: Literal["tanh", "relu"] = Field(description="sigma, the non-linearity of the encoder and modules.")
    encoder: Literal["linear", "embedding"] = Field(
        description="h^0 = sigma(s W + b) (linear), or a lookup table of the agent's integer id given as its "
        "one observation entry (embedding, e.g. levers)."
    )
    n_ids: PositiveInt | None = Field(description="Rows of the embedding table (the id pool size); embedding only.")
    skip_connection: bool = Field(description="Feed h^0 into every module: h^(i+1) = sigma(H h^i + C c^i + B h^0).")
    recurrent: bool = Field(
        description="Temporal recurrence: h carries over env steps, the encoding enters every module through "
        "the skip weights, and c^0 is the mean of the carried hidden states."
    )
    share_parameters: bool = Field(
        description="One set of module weights for all agents (the paper's choice); otherwise per-agent weights "
        "held as one batched tensor."
    )
    communicate: bool = Field(
        description="Off: every c is zero and no C weights exist (the no-communication ablation)."
    )
    comm_mask: list[list[int]] | None = Field(
        description="Static adjacency [A, A]: row j lists with 1 the agents j hears (the diagonal is ignored)."
    )
    comm_range: PositiveFloat | None = Field(
        description="Agents hear only agents within this distance, from positions read off the observations."
    )
    position_dims: list[int] = Field(
        description="Observation entries holding the agent's own position (for comm_range; MPE: [2, 3])."
    )

    def contradictions(self, name: str, run: Any) -> list[tuple[str, str, str]]:
        out = []
        if self.encoder == "embedding" and self.n_ids is None:
            out.append((f"{name}.encoder", f"{name}.n_ids",
                        "the embedding encoder needs the size of the id pool; set n_ids (e.g. 500)"))
        for key in ("comm_mask", "comm_range"):
            if not self.communicate and getattr(self, key) is not None:
                out.append((f"{name}.{key}", f"{name}.communicate",
                            f"{key} restricts communication, which communicate: false turns off; drop one"))
        if self.comm_mask is not None and self.comm_range is not None:
            out.append((f"{name}.comm_mask", f"{name}.comm_range",
                        "agents hear either a fixed set (comm_mask) or those in range (comm_range); drop one"))
        if self.comm_range is not None and len(self.position_dims) == 0:
            out.append((f"{name}.comm_range", f"{name}.position_dims",
                        "hearing by distance needs the observation entries of each agent's position"))
        return out


class BiCNetConfig(OffPolicySection):
    """BiCNet (Peng et al. 2017) hyper-parameters."""

    grad_clip: PositiveFloat | None = Field(
        description="Max global gradient norm of each network, actor and critic (one norm over all its weights: "
        "the agents are coupled through the recurrence; None: off)."
    )
    hidden_size: PositiveInt = Field(
        description="Width H of each agent's encoder and of both GRUs over the agent axis (the heads read 2H)."
    )
    share_parameters: bool = Field(
        description="One encoder and one head for all agents (the paper's choice); otherwise per-agent encoders "
        "and heads held as one batched tensor. The two GRUs across the agent axis are one cell each either way."
    )
    policy_reg: float = Field(ge=0.0, description="Weight of the mean squared pre-activation penalty on the actor.")
    gumbel_temperature: PositiveFloat = Field(description="Gumbel-softmax temperature (discrete actions).")
    exploration_noise: float = Field(
        ge=0.0, description="Gaussian action noise, as a fraction of the action range (continuous)."
    )
