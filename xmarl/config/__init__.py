"""Typed config schema and YAML loading."""

from xmarl.config.loader import load_config, parse_overrides, save_config

__all__ = ["load_config", "parse_overrides", "save_config"]
