"""Configs: the pydantic schema (`schema.Config`, assembled from the sections in `data_schema`, `model_schema`,
`train_schema` on the strict base of `fields`), the strict YAML reader (`yaml_reader`), loading with `--set`
overrides and error messages that name file:line:col and the field (`load`), and writing configs back (`dump`).

Only this package imports pydantic and yaml.
"""
