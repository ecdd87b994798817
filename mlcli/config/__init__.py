"""Configs: the pydantic schema (`schema`), the strict YAML reader (`yaml_reader`), loading with `--set`
overrides and error messages that name file:line:col and the field (`load`), and writing configs back (`dump`).

Only this package imports pydantic and yaml.
"""
