"""The typed config schema. Defaults live in ``configs/defaults.yaml``, not here, so that
there is one place to read them; every field below is therefore required and the merged
YAML must provide it.

Each method adds its own section (``maddpg:``, ...) through its :class:`MethodSpec`; the run
model is assembled from the registered methods, so a plugin method gets validation too.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field, PositiveFloat, PositiveInt, create_model


class Section(BaseModel):
    """Base of every config section: unknown keys are errors, assignments are validated."""

    model_config = ConfigDict(extra="forbid", validate_assignment=True, frozen=False)


class TrainConfig(Section):
    """The training loop, shared by every method."""

    steps: PositiveInt = Field(description="Total environment steps (summed over parallel envs).")
    num_envs: PositiveInt = Field(description="Environment copies stepped together.")
    eval_interval: PositiveInt = Field(description="Env steps between greedy evaluations.")
    eval_episodes: PositiveInt = Field(description="Episodes per greedy evaluation.")
    checkpoint_interval: PositiveInt = Field(description="Env steps between checkpoints.")
    log_interval: PositiveInt = Field(description="Env steps between metric log lines.")
    threads: PositiveInt = Field(description="Intra-op threads of the deep-learning framework.")
    progress: bool = Field(description="Show a progress bar.")
    tensorboard: bool = Field(description="Also write TensorBoard logs when tensorboardX is installed.")
    gif_every: int = Field(ge=0, description="Save a greedy-episode GIF every this many evaluations (0: never).")


class AdamConfig(Section):
    """One Adam definition for every backend: ``w -= lr * m_hat / (sqrt(v_hat) + eps)``."""

    betas: tuple[float, float] = Field(description="Decay rates of the first and second moments.")
    eps: PositiveFloat = Field(description="Added to sqrt(v_hat), after bias correction.")


class MADDPGConfig(Section):
    """MADDPG (Lowe et al. 2017) hyper-parameters."""

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
    batch_episodes: PositiveInt = Field(description="Completed episodes per update (on-policy).")
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


class RunBase(Section):
    """Top-level keys shared by every run."""

    method: str = Field(description="Registered method name, e.g. 'maddpg'.")
    backend: str = Field(description="Backend name.")
    env: str = Field(description="Environment name, e.g. 'mpe/simple_spread_v3'.")
    env_kwargs: dict[str, Any] = Field(description="Keyword arguments for the environment constructor.")
    seed: int = Field(description="Seed of weights, environments and sampling.")
    out_dir: str = Field(description="Folder under which each run writes its results.")
    name: str | None = Field(description="Run folder name (default: <method>-<env>-<backend>-s<seed>).")
    train: TrainConfig


def run_model(method_models: dict[str, type[BaseModel]], selected: str | None = None) -> type[RunBase]:
    """The run schema with one section per registered method; only the selected method's
    section is required, the others are validated when present."""
    fields: dict[str, Any] = {
        m: (model, ...) if m == selected else (model | None, None) for m, model in sorted(method_models.items())
    }
    return create_model("RunConfig", __base__=RunBase, **fields)
