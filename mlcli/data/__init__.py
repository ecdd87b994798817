"""Data: loaders (synthetic, bundled scikit-learn sets, npz/csv files, MNIST IDX, CIFAR-10), checks, splits,
standardization with train statistics, augmentation, downloads; `pipeline.prepare` runs them for a config.
"""
