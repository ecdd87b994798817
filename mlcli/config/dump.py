"""Write a resolved config back as YAML (for run directories and `mlcli config show`)."""

from __future__ import annotations

import yaml


def dump_config(config_dict: dict) -> str:
    """YAML text of a plain config dict, keys in schema order."""
    return yaml.safe_dump(config_dict, sort_keys=False, default_flow_style=False)
