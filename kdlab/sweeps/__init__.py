"""Many runs: the Hydra callback that reports a multirun, the W&B sweep-file check, and the comparison of runs."""
