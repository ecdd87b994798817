"""Models: one builder per config `type` (softmax, mlp, autoencoder, linear, cnn), the classical estimators
(knn, least_squares, gaussian) and `registry.build_model`, the fixed map from `type` to builder.
"""
