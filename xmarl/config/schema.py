"""The typed config schema. Defaults live in ``configs/defaults.yaml``, not here, so that
there is one place to read them; every field below is therefore required and the merged
YAML must provide it.

Each method adds its own section (``maddpg:``, ...) through its :class:`MethodSpec`; the run
model is assembled from the registered methods, so a plugin method gets validation too.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, Field, PositiveInt, create_model, field_validator

from xmarl.core.config import AdamConfig, COMAConfig, CommNetConfig, MADDPGConfig, Section
from xmarl.core.device import parse_device


class WandbConfig(Section):
    """Weights & Biases, for ``train.loggers: [..., wandb]``."""

    project: str = Field(description="W&B project.")
    entity: str | None = Field(description="W&B entity (team or user; None: the account's default).")
    group: str | None = Field(description="W&B group, e.g. one per compare (None: no group).")
    tags: list[str] = Field(description="W&B tags of the run.")
    mode: Literal["offline", "online", "disabled"] = Field(
        description="offline (written under the run folder, no network or account needed; `wandb sync` uploads "
        "it), online (logged live) or disabled.")


class MlflowConfig(Section):
    """MLflow, for ``train.loggers: [..., mlflow]``."""

    tracking_uri: str | None = Field(description="Where runs are stored: None for a SQLite store "
                                     "<out_dir>/mlflow.db, or an MLflow URI (sqlite:///..., http://...).")
    experiment: str = Field(description="MLflow experiment name.")


class TrainConfig(Section):
    """The training loop, shared by every method."""

    steps: PositiveInt = Field(description="Total environment steps (summed over parallel envs).")
    num_envs: PositiveInt = Field(description="Environment copies stepped together.")
    env_workers: PositiveInt = Field(description="Processes the copies are stepped in (1: in the training process; "
                                     "more: each steps its share, through shared memory).")
    eval_interval: PositiveInt = Field(description="Env steps between greedy evaluations.")
    eval_episodes: PositiveInt = Field(description="Episodes per greedy evaluation.")
    checkpoint_interval: PositiveInt = Field(description="Env steps between checkpoints.")
    log_interval: PositiveInt = Field(description="Env steps between metric log lines.")
    threads: PositiveInt = Field(description="Intra-op threads of the deep-learning framework.")
    progress: bool = Field(description="Show a progress bar.")
    tensorboard: bool = Field(description="Also write TensorBoard logs when tensorboardX is installed (false: "
                              "leave tensorboard out of loggers).")
    loggers: list[str] = Field(min_length=1, description="Where metrics go: jsonl (always), tensorboard, csv, wandb, "
                               "mlflow, or a plugin's logger.")
    wandb: WandbConfig
    mlflow: MlflowConfig
    gif_every: int = Field(ge=0, description="Save a greedy-episode GIF every this many evaluations (0: never).")


class GroupConfig(Section):
    """One group of agents (see :mod:`xmarl.training.groups`)."""

    agents: list[str] = Field(min_length=1, description="Agent-name patterns of the group, shell-style "
                              "(e.g. 'adversary_*'); every agent must match exactly one group.")
    policy: Literal["learn", "random", "frozen", "heuristic"] = Field(
        default="learn", description="'learn': trained by the group's method; 'random': uniformly random "
        "(available) actions in training and evaluation; 'frozen': the greedy policy of a checkpoint of the group's "
        "method and networks; 'heuristic': the scripted policy the env ships (e.g. mpe-fast simple_tag's chase "
        "and flee). While one learner trains every agent, all but 'learn' need share_parameters: false.")
    method: str | None = Field(
        default=None, description="The method this group learns (or, frozen, acts) with; default: the run's "
        "'method'. Learning groups that share method and config train as one learner over every agent (MADDPG's "
        "critics see all groups, as in the paper); once a learning group has its own method or config, each "
        "learning group trains a learner of its own over its own agents, the other groups being part of its "
        "environment.")
    config: dict[str, Any] = Field(
        default_factory=dict, description="Keys of the group's method section (e.g. {lr_actor: 0.001}) that "
        "differ for this group; the rest come from that section.")
    checkpoint: str | None = Field(
        default=None, description="For policy 'frozen': a run folder, checkpoints/step_* folder or weights.npz "
        "whose weights the group acts with (the newest intact checkpoint of a run folder).")


class RunBase(Section):
    """Top-level keys shared by every run."""

    method: str = Field(description="Registered method name, e.g. 'maddpg'.")
    backend: str = Field(description="Backend name.")
    env: str = Field(description="Environment name, e.g. 'mpe/simple_spread_v3'.")
    env_kwargs: dict[str, Any] = Field(description="Keyword arguments for the environment constructor.")
    env_impl: Literal["auto", "reference"] = Field(
        description="Which implementation of the env steps: auto (its transition-identical vectorised twin when "
        "xmarl ships one, e.g. mpe-fast/<task> for mpe/<task>, else the env itself) or reference (always the "
        "env's own package, e.g. mpe2). The run's summary, config.yaml and result.json say which ran.")
    device: str = Field(description="Where the networks, optimiser state and compiled steps live: auto (the "
                        "backend's accelerator when it sees one, else the CPU), cpu, cuda, cuda:N, gpu, gpu:N, "
                        "ascend or ascend:N.")
    seed: int = Field(description="Seed of weights, environments and sampling.")
    out_dir: str = Field(description="Folder under which each run writes its results.")
    name: str | None = Field(description="Run folder name (default: <method>-<env>-<backend>-s<seed>).")
    groups: dict[str, GroupConfig] = Field(
        description="Named agent groups: evaluation reports each group's return; a group may learn with a "
        "method of its own, or act at random, frozen or scripted instead. Empty: every agent in one learning "
        "group.")
    train: TrainConfig

    @field_validator("device")
    @classmethod
    def _known_device(cls, value: str) -> str:
        parse_device(value)
        return value


def run_model(method_models: dict[str, type[BaseModel]], selected: str | None = None) -> type[RunBase]:
    """The run schema with one section per registered method; only the selected method's
    section is required, the others are validated when present."""
    fields: dict[str, Any] = {
        m: (model, ...) if m == selected else (model | None, None) for m, model in sorted(method_models.items())
    }
    return create_model("RunConfig", __base__=RunBase, **fields)

#: the method sections are defined in :mod:`xmarl.core.config` and belong to this schema too
__all__ = ["Section", "TrainConfig", "WandbConfig", "MlflowConfig", "GroupConfig", "AdamConfig", "MADDPGConfig",
           "COMAConfig", "CommNetConfig", "RunBase", "run_model"]
