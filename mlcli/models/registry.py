"""The fixed registry of model types: config `type` -> builder. No names are ever resolved from files.

    model = build_model(cfg, ctx)   # a NetworkModel (trained by the trainer) or a ClassicalModel (fitted)

The keys equal the `type` literals of `mlcli.config.model_schema.ModelConfig` and of its `MODEL_FACTS` (task,
losses, fitted or trained), which the schema's rules and `n_outputs` read; a test checks it. Adding a model type:
its section in the `ModelConfig` union and its row in `MODEL_FACTS` (config/model_schema.py), its builder module
here in models/ and its row in `MODEL_BUILDERS`.

A builder that finds the config impossible for the data (a conv stack that does not fit the images) raises a
`ConfigError` starting with the field path; `build_model` prefixes it with the config file and line.
"""

from __future__ import annotations

from mlcli.config.load import located
from mlcli.errors import ConfigError
from mlcli.models.autoencoder import build_autoencoder
from mlcli.models.cnn import build_cnn
from mlcli.models.context import BuildContext
from mlcli.models.linear import build_linear_regression
from mlcli.models.mlp import build_mlp
from mlcli.models.multitask import build_multitask
from mlcli.models.softmax import build_softmax


def _knn(cfg, ctx):
    from mlcli.models.classical import ClassicalModel
    from mlcli.models.knn import KNNClassifier

    return ClassicalModel(KNNClassifier(k=cfg.k, metric=cfg.metric, weights=cfg.weights,
                                        max_memory_mb=cfg.max_memory_mb), task="classification",
                          n_classes=ctx.n_outputs)


def _gaussian(cfg, ctx):
    from mlcli.models.classical import ClassicalModel
    from mlcli.models.gaussian import GaussianClassifier

    return ClassicalModel(GaussianClassifier(priors=cfg.priors, covariance=cfg.covariance, reg=cfg.reg),
                          task="classification", n_classes=ctx.n_outputs)


def _classifier(builder):
    def build(cfg, ctx, loss_cfg):
        return builder(cfg, ctx, loss=loss_cfg.type, label_smoothing=getattr(loss_cfg, "label_smoothing", 0.0))

    return build


MODEL_BUILDERS = {
    "softmax": _classifier(build_softmax),
    "mlp": _classifier(build_mlp),
    "autoencoder": lambda cfg, ctx, loss_cfg: build_autoencoder(cfg, ctx),
    "linear_regression": lambda cfg, ctx, loss_cfg: build_linear_regression(cfg, ctx),
    "knn": lambda cfg, ctx, loss_cfg: _knn(cfg, ctx),
    "gaussian": lambda cfg, ctx, loss_cfg: _gaussian(cfg, ctx),
    "cnn": _classifier(build_cnn),
    "lenet5": _classifier(build_cnn),
    "vgg": _classifier(build_cnn),
    "alexnet": _classifier(build_cnn),
    "zfnet": _classifier(build_cnn),
    "multitask": lambda cfg, ctx, loss_cfg: build_multitask(cfg, ctx),
}


def n_outputs(config, n_classes: int, n_targets: int, n_features: int) -> int:
    """Width of the network's output layer for this config and data."""
    task = config.task()
    if task == "multitask":
        return 0  # per head: `BuildContext.head_outputs`
    if task == "reconstruction":
        return n_features
    if task == "regression":
        return n_targets
    loss = config.loss_config()
    if loss is not None and loss.type == "sigmoid_bce":
        return 1
    return n_classes


def build_model(config, ctx: BuildContext):
    """Build the model a validated `Config` describes; a ConfigError names the config file and the field's line.

    For a config with `model.ensemble` this is one member (the architecture every member shares, which `mlcli
    summary`, `gradcheck` and `doctor` describe and each member's run trains); `build_ensemble_model` builds all
    of them (the checkpoint reader)."""
    try:
        member = config if config.model.ensemble is None else member_config(config)
        return MODEL_BUILDERS[member.model.type](member.model, ctx, member.loss_config())
    except ConfigError as err:
        raise ConfigError(located(config, str(err))) from None


def build_ensemble_model(config, ctx: BuildContext, member_configs=None):
    """The `EnsembleModel` (`mlcli.models.ensemble`) of a config with `model.ensemble`: its members each the
    config's model without the ensemble section, or, given `member_configs` (validated Configs, e.g. of the sweep
    trials an ensemble was built from), one member per config."""
    try:
        return _ensemble(config, ctx, member_configs)
    except ConfigError as err:
        raise ConfigError(located(config, str(err))) from None


def member_config(config):
    """The config of one member of `config`'s ensemble: its model section without `ensemble`."""
    return config.model_copy(update={"model": config.model.model_copy(update={"ensemble": None})})


def _ensemble(config, ctx: BuildContext, member_configs):
    from mlcli.config.model_schema import MODEL_FACTS
    from mlcli.models.ensemble import EnsembleModel, ensemble_size

    ens = config.model.ensemble
    members = list(member_configs) if member_configs is not None else [member_config(config)] * ensemble_size(config)
    built = [MODEL_BUILDERS[m.model.type](m.model, ctx, m.loss_config()) for m in members]
    return EnsembleModel(built, vote=ens.vote, has_loss=all(MODEL_FACTS[m.model.type].has_loss for m in members))
