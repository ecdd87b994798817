"""What is built from runs: cross validation (`cv`), checkpoint evaluation (`evaluate`), gradient checks of a
config (`gradcheck`) and network summaries (`summary`).
"""
