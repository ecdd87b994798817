"""Training: the loop as a generator of epoch records (`trainer`), early stopping and best tracking
(`callbacks`), metrics (`metrics`), and one run from config to run directory (`run.run_training`).
"""
