"""Run directories (`rundir`), atomic writes (`atomic`), the safe checkpoint format (`checkpoint`) and saving /
rebuilding models from checkpoints (`snapshot`).
"""
