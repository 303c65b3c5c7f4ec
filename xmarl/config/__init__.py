"""Typed config schema and YAML loading."""

from xmarl.config.loader import flatten, group_section, load_config, parse_overrides, save_config, separate_learners

__all__ = ["load_config", "parse_overrides", "save_config", "group_section", "separate_learners", "flatten"]
